#!/bin/bash
# ec2-spot-runner bake: turns this builder into a runner image.
#
# EC2 hands this script to cloud-init as a plain user-data script, which
# cloud-init runs once, as root, in its final stage: the builder boots
# fully first, as every machine made from the image will. The script
# first masks the image's package timers for good (a runner machine lives
# for one job, and its own package installs must find no lock held; the
# bake's own must not race them either), then installs the actions/runner
# release the bake chose into /opt/actions-runner (where a start's script
# looks first), checked against its SHA-256 before anything of it is
# unpacked; the runner's dependencies, by the runner's own
# bin/installdependencies.sh; optionally Docker; the user's bake script; and
# creates the runner user, so a start has nothing to install.
#
# Then, once cloud-init has finished, a second process (a transient unit,
# so that cloud-init's own bookkeeping is done before it is wiped) cleans
# what belongs to this one machine, so that every machine made from the
# image boots as a new instance: cloud-init's state and logs, the machine
# id, the SSH host keys, shell histories, this script's logs. Its last line
# on the console is the verdict the bake reads with GetConsoleOutput:
#   ec2-spot-runner-bake: done runner=VERSION
#   ec2-spot-runner-bake: FAILED <what failed>
# and the builder powers off. The builder is launched with "stop" as its
# instance-initiated shutdown behaviour: the stopped instance's volume
# becomes the image. Every way out powers off.
#
# The renderer replaces the settings line below by `readonly NAME='value'`
# lines. Comment lines, blank lines and indentation are dropped when the
# script is rendered (no heredocs here).

# @@SETTINGS@@

set -uo pipefail
umask 022
export TZ=UTC0
export PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export DEBIAN_FRONTEND=noninteractive
RUNNER_DIR=/opt/actions-runner
RUNNER_USER=runner
STATE_DIR=/run/ec2-spot-runner-bake
SELF=$(readlink -f -- "$0")
# While the bake installs: apt waits for a lock the image's own package
# runs hold instead of failing at once (apt 1.9.11 and later read this).
APT_WAIT=/etc/apt/apt.conf.d/90ec2-spot-runner-bake
PACKAGE_UNITS=(apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
	unattended-upgrades.service dnf-makecache.timer dnf-makecache.service dnf-automatic.timer
	dnf-automatic-install.timer packagekit.service)

log() {
	local msg="$*" line
	msg=${msg//$'\n'/\\n}
	msg=${msg//[[:cntrl:]]/?}
	printf -v line '%(%Y-%m-%dT%H:%M:%SZ)T ec2-spot-runner-bake: %s' -1 "$msg"
	printf '%s\n' "$line" 2>/dev/null >>"$LOG_FILE"
	[ -w /dev/console ] && printf '%s\n' "$line" 2>/dev/null >>/dev/console
	printf '%s\n' "$line" >&2
}

have() { command -v "$1" >/dev/null 2>&1; }

# The verdict, alone on its console line so that the bake finds it in any
# console, then the power-off.
verdict() {
	local line="ec2-spot-runner-bake: $*"
	[ -w /dev/console ] && printf '\n%s\n' "$line" 2>/dev/null >>/dev/console
	printf '\n%s\n' "$line" >&2
	sync
	if have systemctl; then
		systemctl --no-block poweroff || poweroff
	else
		poweroff
	fi
	exit 0
}

fail() {
	log "ERROR: $*"
	verdict "FAILED $*"
}

fetch() {
	local retry=()
	if have curl; then
		if curl --help all 2>/dev/null | grep -q -- --retry-all-errors; then
			retry=(--retry-all-errors)
		fi
		curl --fail --silent --show-error --location --proto '=https,http' \
			--retry 5 ${retry[@]+"${retry[@]}"} --connect-timeout 20 \
			--speed-limit 1024 --speed-time 60 --output "$2" --url "$1"
	elif have wget; then
		wget --quiet --tries=5 --retry-connrefused --waitretry=2 --timeout=60 \
			--output-document="$2" -- "$1"
	else
		log "neither curl nor wget is installed"
		return 1
	fi
}

# The runner, checked before anything of it is unpacked; a mismatch
# leaves nothing behind.
install_runner() {
	local arch sum url work got
	case "$(uname -m)" in
	x86_64 | amd64) arch=x64 sum=$RUNNER_SHA256_X64 ;;
	aarch64 | arm64) arch=arm64 sum=$RUNNER_SHA256_ARM64 ;;
	*) fail "unsupported architecture $(uname -m)" ;;
	esac
	sum=${sum,,}
	[[ $sum =~ ^[0-9a-f]{64}$ ]] || fail "no checksum for the $arch runner $RUNNER_VERSION"
	url=${RUNNER_DOWNLOAD_URL//'{version}'/"$RUNNER_VERSION"}
	url=${url//'{arch}'/"$arch"}
	{ mkdir -p /opt && work=$(mktemp -d /opt/.ec2-spot-runner-bake.XXXXXX); } || fail "cannot write to /opt"
	log "downloading runner $RUNNER_VERSION ($arch) from ${url%%\?*}"
	if ! fetch "$url" "$work/r.tgz"; then
		rm -rf -- "$work"
		fail "the runner download failed"
	fi
	got=$(sha256sum -- "$work/r.tgz")
	got=${got%% *}
	if [ "$got" != "$sum" ]; then
		rm -rf -- "$work"
		fail "runner checksum mismatch: expected $sum, got $got"
	fi
	log "runner checksum verified"
	if ! { mkdir -- "$work/r" && tar -xzf "$work/r.tgz" -C "$work/r" --no-same-owner && [ -f "$work/r/run.sh" ]; }; then
		rm -rf -- "$work"
		fail "could not extract run.sh from the runner archive"
	fi
	{ rm -rf -- "$RUNNER_DIR" && mv -- "$work/r" "$RUNNER_DIR" && rm -rf -- "$work"; } || fail "could not place the runner in $RUNNER_DIR"
	log "runner $RUNNER_VERSION installed in $RUNNER_DIR"
}

install_dependencies() {
	if [ -x "$RUNNER_DIR/bin/installdependencies.sh" ]; then
		log "installing the runner's dependencies (bin/installdependencies.sh)"
		"$RUNNER_DIR/bin/installdependencies.sh" >>"$LOG_FILE" 2>&1 || fail "the runner's bin/installdependencies.sh failed (see $LOG_FILE)"
	else
		log "the runner has no bin/installdependencies.sh"
	fi
}

install_docker() {
	[ -n "$INSTALL_DOCKER" ] || return 0
	if have docker; then
		log "Docker is there already"
	elif have apt-get; then
		log "installing Docker (docker.io)"
		{ apt-get update && apt-get install -y --no-install-recommends docker.io; } >>"$LOG_FILE" 2>&1 || fail "could not install docker.io"
	elif have dnf; then
		log "installing Docker (docker)"
		dnf install -y docker >>"$LOG_FILE" 2>&1 || fail "could not install docker"
	elif have zypper; then
		zypper --non-interactive install docker >>"$LOG_FILE" 2>&1 || fail "could not install docker"
	else
		fail "no apt-get, dnf or zypper to install Docker with"
	fi
	if [ -d /run/systemd/system ] && have systemctl; then
		systemctl enable docker.service >/dev/null 2>&1 || log "WARNING: could not enable docker.service"
	fi
}

run_bake_script() {
	[ -n "$BAKE_SCRIPT" ] || return 0
	{ printf '%s\n' "$BAKE_SCRIPT" >"$STATE_DIR/bake-script.sh" && chmod 700 -- "$STATE_DIR/bake-script.sh"; } || fail "could not write the bake script"
	log "running the bake script"
	/bin/bash "$STATE_DIR/bake-script.sh" >>"$LOG_FILE" 2>&1 || fail "the bake script exited with status $? (see $LOG_FILE)"
}

prepare_user() {
	if ! getent passwd "$RUNNER_USER" >/dev/null 2>&1; then
		useradd --system --create-home --user-group --shell /bin/bash -- "$RUNNER_USER" || fail "could not create the runner user $RUNNER_USER"
	fi
	getent group docker >/dev/null 2>&1 && usermod -aG docker -- "$RUNNER_USER"
	chown -R -- "$RUNNER_USER:" "$RUNNER_DIR" || fail "could not hand $RUNNER_DIR to $RUNNER_USER"
	printf '%s\n' "$RUNNER_VERSION" >"$RUNNER_DIR/.ec2-spot-runner-baked" || fail "could not mark the runner as baked"
}

# First of all, so that no package run of the image's own competes with the
# bake's installs for the package manager's lock; a run already under way
# is waited for (APT_WAIT).
mask_package_timers() {
	local units=() unit rest
	if [ -d /etc/apt/apt.conf.d ]; then
		printf 'DPkg::Lock::Timeout "600";\n' >"$APT_WAIT" || log "WARNING: could not write $APT_WAIT"
	fi
	[ -d /run/systemd/system ] && have systemctl || return 0
	while read -r unit rest; do
		[ -n "$unit" ] && units+=("$unit")
	done < <(systemctl list-unit-files --no-legend -- "${PACKAGE_UNITS[@]}" 2>/dev/null)
	((${#units[@]})) || return 0
	systemctl disable --now -- "${units[@]}" >/dev/null 2>&1
	systemctl mask -- "${units[@]}" >/dev/null 2>&1 || fail "could not mask ${units[*]}"
	log "masked for good: ${units[*]}"
}

# After cloud-init: what belongs to this machine only goes, so that every
# machine made from the image is a new instance to cloud-init, with its own
# machine id and host keys.
finish() {
	local status
	if have cloud-init; then
		cloud-init status --wait >/dev/null 2>&1
		status=$?
		# 2: done with recoverable errors (cloud-init 23.4 and later).
		[ "$status" = 0 ] || [ "$status" = 2 ] || fail "cloud-init status --wait exited with $status"
		cloud-init clean --logs --seed >/dev/null 2>&1 || fail "cloud-init clean failed"
	fi
	rm -f /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub
	if [ -e /etc/machine-id ]; then
		: >/etc/machine-id || fail "could not empty /etc/machine-id"
	fi
	rm -f /var/lib/dbus/machine-id /root/.bash_history /home/*/.bash_history "$APT_WAIT"
	if have journalctl; then
		journalctl --rotate >/dev/null 2>&1
		journalctl --vacuum-time=1s >/dev/null 2>&1
	fi
	rm -rf -- /var/lib/ec2-spot-runner "$STATE_DIR"
	rm -f -- "$LOG_FILE" "$SELF"
	verdict "done runner=$RUNNER_VERSION"
}

main() {
	{ mkdir -p -- "$STATE_DIR" && chmod 700 -- "$STATE_DIR"; } || fail "cannot write $STATE_DIR"
	log "bake started: runner $RUNNER_VERSION$([ -n "$INSTALL_DOCKER" ] && printf ', Docker')$([ -n "$BAKE_SCRIPT" ] && printf ', a bake script')"
	mask_package_timers
	install_runner
	install_dependencies
	install_docker
	run_bake_script
	prepare_user
	cp -- "$0" "$STATE_DIR/bake.sh" || fail "could not keep the script for its last step"
	if have systemd-run && [ -d /run/systemd/system ]; then
		systemd-run --unit ec2-spot-runner-bake-finish --description "ec2-spot-runner bake: clean and power off" \
			--no-block -- /bin/bash "$STATE_DIR/bake.sh" --finish >/dev/null 2>&1 || fail "could not start the last step"
		log "everything is installed; cleaning and powering off once cloud-init has finished"
		exit 0
	fi
	finish
}

case "${1:-}" in
--finish) finish ;;
*) main ;;
esac
