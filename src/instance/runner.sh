#!/bin/bash
# ec2-spot-runner: first-boot bootstrap of an ephemeral GitHub Actions runner.
#
# cloud-init runs this script once, as root, at the first boot of an instance
# launched by ec2-spot-runner. It starts a just-in-time runner that takes
# exactly one job, then powers the machine off. The instance is launched with
# "terminate" as its instance-initiated shutdown behaviour, so powering off
# deletes it. Every way out of this script ends in a power-off: a machine
# that cannot run its job must not sit there costing money.
#
# Steps, in order:
#   1. log       every step goes to LOG_FILE, the console and stderr
#   2. reboot    a unit that powers the machine off at once should it ever
#                boot again (cloud-init runs this script only once)
#   3. watchdogs max lifetime and idle timeout, armed before anything that
#                could hang
#   4. spot      a background watch for a spot interruption notice (IMDSv2)
#   5. user      the unprivileged user that runs the runner, with
#                passwordless sudo when RUNNER_SUDO is set
#   6. runner    RUNNER_DIR, else a pre-installed runner, else a download
#                verified against its SHA-256 checksum; a pre-installed
#                runner older than RUNNER_VERSION is replaced by that
#                download when RUNNER_UPDATE is set
#   7. disks     NVMe instance store, when there is one, as the work folder
#                (and Docker's data root after step 9)
#      libicu    installed with the system's package manager when missing,
#                else the runner runs with invariant globalization
#   8. hand over the rest runs in a systemd unit of its own, so that
#                cloud-init is done before the pre-runner script (which may
#                wait for it) and while the job runs
#   9. pre-run   the optional PRE_RUNNER_SCRIPT, as root
#  10. run       run.sh as the runner user, the JIT config in its environment
#  11. power off once run.sh has exited
#
# The script runs again from its own file (cloud-init keeps it, root-only,
# under /var/lib/cloud/instance/scripts): with --unit as that systemd unit
# (steps 9-11, from the state steps 5-7 left in STATE_DIR/runner.state),
# with --rebooted from the reboot unit.
#
# The renderer replaces the settings line below by `readonly NAME='value'`
# lines. Values are single-quoted data; the code below only reads them, and
# always inside double quotes. Durations are whole seconds.
#
# The only variable read from the environment is EC2SR_IMDS_ENDPOINT, an
# override of the instance metadata endpoint for tests (cloud-init runs user
# data with a clean environment).
#
# Comment lines, blank lines and indentation are dropped when the script is
# rendered: EC2 caps user data at 16 KiB, and the JIT config takes a good
# part of that. Nothing here may depend on leading whitespace (no heredocs).
#
# shellcheck disable=SC2329 # run by traps or from the watchdog file

# @@SETTINGS@@

set -uo pipefail
umask 022
# Log timestamps are UTC; bash's own clock (printf %()T) follows TZ.
export TZ=UTC0
export PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Root-only scratch space on tmpfs: watchdog code, the pre-runner script, the
# runner directory for the idle watchdog, and the power-off marker.
STATE_DIR=/run/ec2-spot-runner
DOWNLOAD_DIR=/opt/actions-runner
IMDS="${EC2SR_IMDS_ENDPOINT:-http://169.254.169.254}"
IMDS=${IMDS%/}
PRE_LOG="${LOG_FILE%.log}.pre-runner.log"
PKG_LOG="${LOG_FILE%.log}.packages.log"
SUDOERS=/etc/sudoers.d/90-ec2-spot-runner
STORE_MOUNT=/mnt/ec2-spot-runner
printf -v START '%(%s)T' -1
MAX_LIFETIME=$MAX_LIFETIME_SECONDS
IDLE_TIMEOUT=$IDLE_TIMEOUT_SECONDS
RUNNER_PATH=""
RUNNER_HOME=""
RUNNER_UID=""
RUNNER_GID=""
FOUND_VERSION=""
ICU_INVARIANT=""
STORE_READY=""
# cloud-init runs the script by its absolute path.
case $0 in
/*) SELF=$0 ;;
*) SELF=$PWD/$0 ;;
esac
REBOOT_UNIT=/etc/systemd/system/ec2-spot-runner-rebooted.service

# One log line: "YYYY-MM-DDTHH:MM:SSZ ec2-spot-runner: message". Newlines and
# other control characters in a message (a runner name can hold anything) are
# escaped so that one call is always one line. Nothing here ever logs
# JIT_CONFIG.
log() {
	local msg="$*" line
	msg=${msg//$'\n'/\\n}
	msg=${msg//[[:cntrl:]]/?}
	printf -v line '%(%Y-%m-%dT%H:%M:%SZ)T ec2-spot-runner: %s' -1 "$msg"
	printf '%s\n' "$line" 2>/dev/null >>"$LOG_FILE"
	[ -w /dev/console ] && printf '%s\n' "$line" 2>/dev/null >>/dev/console
	printf '%s\n' "$line" >&2
}

# The one way this machine goes down. The marker file lets a second caller
# (a watchdog racing the main script, or a signal during shutdown) stay quiet.
power_off() {
	[ -e "$STATE_DIR/powering-off" ] && return 0
	: 2>/dev/null >"$STATE_DIR/powering-off"
	log "powering off: $*"
	sync
	shutdown -h now || poweroff || systemctl poweroff || log "ERROR: could not power off"
}

# An executable on PATH (not merely a file of that name).
have() {
	[ -x "$(command -v "$1")" ]
}

fatal() {
	log "ERROR: $*"
	power_off "$*"
	exit 1
}

# Has the runner started a job? Either sign is enough:
#  - a Worker_*.log in the runner's _diag directory: the worker process writes
#    it as soon as it takes a job, and it outlives the job;
#  - a process named Runner.Worker: covers a runner whose diagnostics go
#    elsewhere, and the moments before the log file is created.
job_started() {
	local dir="" f comm
	IFS= read -r dir 2>/dev/null <"$STATE_DIR/runner-dir"
	for f in "${dir:-/nonexistent}"/_diag/Worker_*.log; do
		[ -e "$f" ] && return 0
	done
	for f in /proc/[0-9]*/comm; do
		IFS= read -r comm 2>/dev/null <"$f" || continue
		[ "$comm" = Runner.Worker ] && return 0
	done
	return 1
}

# Watchdogs measure time from the start of this script, a few tens of seconds
# after launch. They run detached (see spawn_watchdog) and power off from
# there, whatever the main script is doing.
watch_max_lifetime() {
	local now left
	while :; do
		printf -v now '%(%s)T' -1
		left=$((START + MAX_LIFETIME - now))
		if ((left <= 0)); then
			power_off "max lifetime of ${MAX_LIFETIME}s reached"
			exit 0
		fi
		sleep "$((left > 10 ? 10 : left))"
	done
}

# The idle clock also starts with this script, so IDLE_TIMEOUT_SECONDS covers
# setup (download, pre-runner script) as well as the wait for a job.
watch_idle() {
	local now
	while :; do
		[ -e "$STATE_DIR/powering-off" ] && exit 0
		if job_started; then
			log "a job has started; the idle watchdog stands down"
			exit 0
		fi
		printf -v now '%(%s)T' -1
		if ((now - START >= IDLE_TIMEOUT)); then
			power_off "no job started within the idle timeout of ${IDLE_TIMEOUT}s"
			exit 0
		fi
		sleep 1
	done
}

# Polls the spot instance-action every 5 s; a 200 means EC2 is about to
# reclaim the machine (the job will be lost). Logged once per notice.
# IMDSv2 only: each poll takes a fresh short-lived session token (PUT), then
# reads with it; curl -f makes a 404 (no notice) a failure.
watch_spot() {
	local token body last="" action=unknown time=unknown re
	have curl || exit 0
	while :; do
		if token=$(curl -sf -m 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$IMDS/latest/api/token") &&
			body=$(curl -sf -m 3 -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/spot/instance-action") &&
			[ "$body" != "$last" ]; then
			last=$body
			re='"action" *: *"([^"]*)"'
			[[ $body =~ $re ]] && action=${BASH_REMATCH[1]}
			re='"time" *: *"([^"]*)"'
			[[ $body =~ $re ]] && time=${BASH_REMATCH[1]}
			log "WARNING: SPOT INTERRUPTION NOTICE: action=$action time=$time: EC2 is reclaiming this instance, the job will be lost"
		fi
		sleep 5
	done
}

# Watchdogs run from a file of their own, started with setsid: they are not
# in the main script's process group or session, so they outlive it and
# anything that kills it. The file holds only what they need (no JIT_CONFIG).
# Their pids are in $STATE_DIR/NAME.pid.
write_watchdogs() {
	{
		printf '#!/bin/bash\nset -uo pipefail\n'
		# shellcheck disable=SC2090 # variable names, not expansions
		declare -p TZ PATH LOG_FILE STATE_DIR IMDS START MAX_LIFETIME IDLE_TIMEOUT
		declare -f log have power_off job_started watch_max_lifetime watch_idle watch_spot
		# shellcheck disable=SC2016 # the dispatch line of the watchdog file
		printf '%s\n' 'watch_"$1"'
	} >"$STATE_DIR/watchdog.sh"
}

# At a lower priority: they mostly sleep, and at boot the runner's start
# comes first.
spawn_watchdog() {
	setsid nice -n 10 bash "$STATE_DIR/watchdog.sh" "$1" </dev/null >/dev/null 2>&1 &
	printf '%s\n' "$!" >"$STATE_DIR/$1.pid"
}

# Runs a command as the runner user: setpriv, else runuser (both util-linux,
# on Ubuntu, Debian and Amazon Linux alike). setpriv only changes the
# credentials; runuser also opens a PAM session, which costs a few process
# starts and adds nothing here (the environment is set by the caller).
as_runner() {
	if have setpriv; then
		setpriv --reuid="$RUNNER_UID" --regid="$RUNNER_GID" --init-groups -- "$@"
	else
		runuser -u "$RUNNER_USER" -- "$@"
	fi
}

# RUNNER_UID, RUNNER_GID and RUNNER_HOME from the user's passwd entry (one
# process start: name:password:uid:gid:gecos:home:shell).
read_user() {
	local entry rest
	entry=$(getent passwd "$RUNNER_USER") || return 1
	rest=${entry#*:*:}
	RUNNER_UID=${rest%%:*} rest=${rest#*:}
	RUNNER_GID=${rest%%:*} rest=${rest#*:*:}
	RUNNER_HOME=${rest%%:*}
	RUNNER_HOME=${RUNNER_HOME:-/home/$RUNNER_USER}
}

ensure_user() {
	if ! read_user; then
		log "creating the runner user $RUNNER_USER"
		if ! { useradd --system --create-home --user-group --shell /bin/bash -- "$RUNNER_USER" && read_user; }; then
			fatal "could not create the runner user $RUNNER_USER"
		fi
	fi
	[ "$RUNNER_UID" != 0 ] || fatal "the runner user $RUNNER_USER is root"
	[ -d "$RUNNER_HOME" ] || { mkdir -p -- "$RUNNER_HOME" && chown -- "$RUNNER_USER:" "$RUNNER_HOME"; }
	grant_sudo
}

# Passwordless sudo, as on GitHub-hosted runners: most jobs install
# packages. sudo reads /etc/sudoers.d on every distribution this runs on;
# without sudo installed the file does nothing.
grant_sudo() {
	[ -n "$RUNNER_SUDO" ] || return 0
	if [ ! -d /etc/sudoers.d ]; then
		log "WARNING: no /etc/sudoers.d, so $RUNNER_USER gets no sudo"
		return 0
	fi
	if ! { printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$RUNNER_USER" >"$SUDOERS.tmp" && chmod 440 -- "$SUDOERS.tmp" &&
		mv -f -- "$SUDOERS.tmp" "$SUDOERS"; }; then
		fatal "could not write $SUDOERS"
	fi
	log "$RUNNER_USER may use sudo without a password (runner-sudo: false turns this off)"
}

# Called right before the runner starts: the pre-runner script may have
# installed Docker.
add_docker_group() {
	getent group docker >/dev/null 2>&1 || return 0
	[[ " $(id -nG -- "$RUNNER_USER") " == *" docker "* ]] && return 0
	usermod -aG docker -- "$RUNNER_USER" && log "added $RUNNER_USER to the docker group"
}

# The runner's directory becomes the runner user's. A runner in another
# user's home (Ubuntu makes homes 0750) is out of reach: its parents get
# search permission for others, not listing. One stat reads the owner and
# every parent's mode.
use_runner() {
	local dir parents=() facts i changed=""
	RUNNER_PATH=$1
	printf '%s\n' "$RUNNER_PATH" >"$STATE_DIR/runner-dir"
	dir=$RUNNER_PATH
	while [ -n "${dir%/*}" ]; do
		dir=${dir%/*}
		parents+=("$dir")
	done
	# shellcheck disable=SC2207 # "user:mode" words, one per path
	facts=($(stat -L -c '%U:%a' -- "$RUNNER_PATH" "${parents[@]}")) || fatal "cannot stat $RUNNER_PATH"
	if [ "${facts[0]%:*}" != "$RUNNER_USER" ]; then
		log "handing $RUNNER_PATH over to $RUNNER_USER"
		chown -R -- "$RUNNER_USER:" "$RUNNER_PATH" || fatal "could not chown $RUNNER_PATH to $RUNNER_USER"
	fi
	for i in "${!parents[@]}"; do
		if (((${facts[i + 1]: -1} & 1) == 0)); then
			chmod o+x -- "${parents[i]}" && changed=1
		fi
	done
	if [ -n "$changed" ]; then
		as_runner test -x "$RUNNER_PATH/run.sh" || fatal "$RUNNER_USER cannot run $RUNNER_PATH/run.sh"
	fi
}

fetch() {
	local retry=()
	if have curl; then
		# --retry-all-errors came with curl 7.71; older ones reject it.
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

# Downloads into a fresh directory next to /opt/actions-runner, then renames
# it into place (a leftover /opt/actions-runner without run.sh is replaced).
# Failures leave their mess behind: power-off deletes the machine anyway.
# With an older runner's directory as $1 (an update), a download that fails
# returns 1 so that runner can be used instead; a checksum mismatch is fatal
# either way. The older runner's .env and .path (the environment its
# image gave it) carry over.
download_runner() {
	local arch sum url work got old=${1:-} f
	[ -n "$RUNNER_VERSION" ] || fatal "no runner installed and no runner version to download"
	case "$(uname -m)" in
	x86_64 | amd64) arch=x64 sum=$RUNNER_SHA256_X64 ;;
	aarch64 | arm64) arch=arm64 sum=$RUNNER_SHA256_ARM64 ;;
	*) fatal "unsupported architecture $(uname -m)" ;;
	esac
	sum=${sum,,}
	[[ $sum =~ ^[0-9a-f]{64}$ ]] || fatal "no checksum for the $arch runner $RUNNER_VERSION"
	url=${RUNNER_DOWNLOAD_URL//'{version}'/"$RUNNER_VERSION"}
	url=${url//'{arch}'/"$arch"}
	mkdir -p /opt
	work=$(mktemp -d /opt/.ec2-spot-runner.XXXXXX) || fatal "cannot write to /opt"
	# A query string may carry a signature: keep it out of the log.
	log "downloading runner $RUNNER_VERSION ($arch) from ${url%%\?*}"
	if ! fetch "$url" "$work/r.tgz"; then
		[ -n "$old" ] && return 1
		fatal "runner download failed"
	fi
	got=$(sha256sum -- "$work/r.tgz")
	got=${got%% *}
	[ "$got" = "$sum" ] || fatal "runner checksum mismatch: expected $sum, got $got"
	log "runner checksum verified"
	mkdir -- "$work/r" && tar -xzf "$work/r.tgz" -C "$work/r" --no-same-owner && [ -f "$work/r/run.sh" ] ||
		fatal "could not extract run.sh from the runner archive"
	for f in .env .path; do
		[ -n "$old" ] && [ -f "$old/$f" ] && cp -p -- "$old/$f" "$work/r/$f"
	done
	rm -rf -- "$DOWNLOAD_DIR" "$work/r.tgz"
	mv -- "$work/r" "$DOWNLOAD_DIR" || fatal "could not move the runner into place"
	chmod 755 -- "$DOWNLOAD_DIR"
	rm -rf -- "$work"
	use_runner "$DOWNLOAD_DIR"
}

# The version of the runner in $1 into FOUND_VERSION, empty when it does
# not tell. Read without starting .NET: the runner's build stamps its
# version on its assemblies, and bin/Runner.Listener.deps.json names
# "Runner.Listener/VERSION" (actions/runner, src/dir.proj publishes with
# Version=$(RunnerVersion)); else `bin/Runner.Listener --version`, which
# prints it (src/Runner.Listener/CommandSettings.cs, the --version flag).
runner_version_of() {
	local deps="$1/bin/Runner.Listener.deps.json" text="" re='"Runner\.Listener/([0-9]+\.[0-9]+\.[0-9]+)"'
	FOUND_VERSION=""
	if [ -f "$deps" ]; then
		IFS= read -r -d '' text <"$deps"
		[[ $text =~ $re ]] && FOUND_VERSION=${BASH_REMATCH[1]} && return
	fi
	if [ -x "$1/bin/Runner.Listener" ]; then
		text=$(cd / && timeout 60 "$1/bin/Runner.Listener" --version 2>/dev/null </dev/null)
		[[ $text =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && FOUND_VERSION=$text
	fi
}

# Is version $1 older than version $2 (both MAJOR.MINOR.PATCH)?
version_older() {
	local a=$1. b=$2. x y
	while [ -n "$a$b" ]; do
		x=${a%%.*} y=${b%%.*}
		a=${a#*.} b=${b#*.}
		((10#${x:-0} < 10#${y:-0})) && return 0
		((10#${x:-0} > 10#${y:-0})) && return 1
	done
	return 1
}

# A runner found in $1: used as it is, or, when it is older than
# RUNNER_VERSION and RUNNER_UPDATE is set, replaced by that version's
# verified download. GitHub stops sending jobs to runners that fall behind;
# the runner's own self-update stays on either way.
found_runner() {
	if [ -n "$RUNNER_UPDATE" ] && [ -n "$RUNNER_VERSION" ]; then
		runner_version_of "$1"
		if [ -z "$FOUND_VERSION" ]; then
			log "the runner in $1 does not tell its version; using it as it is"
		elif version_older "$FOUND_VERSION" "$RUNNER_VERSION"; then
			log "the runner in $1 is $FOUND_VERSION, older than $RUNNER_VERSION: updating it (runner-update: false keeps it)"
			download_runner "$1" && return
			log "WARNING: the update download failed; using runner $FOUND_VERSION, which updates itself when GitHub asks it to"
		else
			log "the runner in $1 is $FOUND_VERSION, not older than $RUNNER_VERSION"
		fi
	fi
	use_runner "$1"
}

# Where the runner comes from: RUNNER_DIR if it holds run.sh; else a runner
# pre-installed in an image at one of the usual places below; else a
# download into /opt/actions-runner.
locate_runner() {
	local dir
	if [ -n "$RUNNER_DIR" ]; then
		if [ -f "$RUNNER_DIR/run.sh" ]; then
			log "using the runner in $RUNNER_DIR"
			found_runner "$RUNNER_DIR"
			return
		fi
		log "RUNNER_DIR $RUNNER_DIR has no run.sh; looking elsewhere"
	fi
	for dir in /opt/actions-runner "$RUNNER_HOME/actions-runner" /home/runner/actions-runner \
		/actions-runner /home/ubuntu/actions-runner /home/ec2-user/actions-runner; do
		if [ -f "$dir/run.sh" ]; then
			log "using the pre-installed runner in $dir"
			found_runner "$dir"
			return
		fi
	done
	download_runner
}

# Is ICU there? .NET, which the runner is built on, needs it unless
# globalization is invariant.
have_icu() {
	local f
	for f in /usr/lib64/libicuuc.so.* /usr/lib/libicuuc.so.* /usr/lib/*/libicuuc.so.* /lib64/libicuuc.so.* \
		/lib/*/libicuuc.so.*; do
		[ -s "$f" ] && return 0
	done
	return 1
}

# The package names are the runner's own (bin/installdependencies.sh):
# libicu on dnf, yum and zypper, libicuNN on apt, the newest there is.
install_icu() {
	local pkg
	if have dnf; then
		timeout 300 dnf install -y libicu
	elif have yum; then
		timeout 300 yum install -y libicu
	elif have zypper; then
		timeout 300 zypper --non-interactive install libicu
	elif have apt-get; then
		timeout 300 apt-get update || return 1
		pkg=$(apt-cache pkgnames libicu | grep -E '^libicu[0-9]+$' | sort -V | tail -n 1)
		[ -n "$pkg" ] || { echo "apt knows no libicuNN package"; return 1; }
		DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y --no-install-recommends "$pkg"
	else
		echo "no dnf, yum, zypper or apt-get"
		return 1
	fi
}

# Amazon Linux 2023 images, among others, come without ICU.
ensure_icu() {
	have_icu && return 0
	log "libicu, which the runner needs, is missing: installing it (output in $PKG_LOG)"
	if install_icu </dev/null >>"$PKG_LOG" 2>&1 && have_icu; then
		log "libicu installed"
		return 0
	fi
	ICU_INVARIANT=1
	log "WARNING: could not install libicu (see $PKG_LOG): the runner runs with invariant globalization" \
		"(DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1), so .NET programs in the job see no culture data;" \
		"install libicu in the image or in pre-runner-script"
}

# NVMe instance-store disks: every NVMe disk that is not an EBS volume (EBS
# shows the model "Amazon Elastic Block Store", instance store "Amazon EC2
# NVMe Instance Storage") and carries nothing yet: no partition, no holder,
# no file system. They are formatted (RAID 0 across several, with mdadm),
# mounted on STORE_MOUNT and bound onto the runner's work folder
# (RUNNER_PATH/_work, the JIT config's work folder). They start empty and
# die with the machine, like everything else here.
# NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ssd-instance-store.html
setup_instance_store() {
	local d name model devs=() dev sectors=0 size part
	[ -n "$INSTANCE_STORE" ] || return 0
	for d in /sys/block/nvme*n*; do
		[ -r "$d/device/model" ] || continue
		name=${d##*/}
		IFS= read -r model <"$d/device/model"
		model=${model%"${model##*[![:space:]]}"}
		[ "$model" = "Amazon Elastic Block Store" ] && continue
		for part in "$d/$name"p* "$d"/holders/*; do
			[ -e "$part" ] && continue 2
		done
		blkid -p "/dev/$name" >/dev/null 2>&1 && continue
		devs+=("/dev/$name")
		IFS= read -r size <"$d/size" && sectors=$((sectors + size))
	done
	((${#devs[@]})) || return 0
	dev=${devs[0]}
	if ((${#devs[@]} > 1)); then
		if have mdadm && mdadm --create /dev/md/ec2-spot-runner --run --level=0 --raid-devices="${#devs[@]}" \
			"${devs[@]}" </dev/null >>"$PKG_LOG" 2>&1; then
			dev=/dev/md/ec2-spot-runner
		else
			log "WARNING: no RAID 0 across the ${#devs[@]} instance-store disks (no mdadm, or it failed: see $PKG_LOG); using ${devs[0]} alone"
			IFS= read -r sectors <"/sys/block/${devs[0]##*/}/size"
			devs=("${devs[0]}")
		fi
	fi
	if ! { mkfs.ext4 -q -F -m 0 -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 -L ec2sr-store "$dev" \
		</dev/null >>"$PKG_LOG" 2>&1 && mkdir -p "$STORE_MOUNT" && mount -o noatime "$dev" "$STORE_MOUNT" &&
		mkdir -p "$STORE_MOUNT/work" "$RUNNER_PATH/_work" && chown -- "$RUNNER_USER:" "$STORE_MOUNT/work" &&
		mount --bind "$STORE_MOUNT/work" "$RUNNER_PATH/_work"; }; then
		log "WARNING: could not use the instance store on $dev (see $PKG_LOG); the work folder stays on the root volume"
		return 0
	fi
	STORE_READY=1
	log "instance store: ${#devs[@]} NVMe disk(s), $((sectors / 2097152)) GiB, is the work folder $RUNNER_PATH/_work (instance-store: off leaves it unused)"
}

# Docker's data root onto the instance store too, once the pre-runner script
# (which may install Docker) has run; not when it holds images already
# (pulled into the image ahead of time: they stay where they are).
store_docker() {
	local f active=""
	[ -n "$STORE_READY" ] && [ -d /var/lib/docker ] || return 0
	for f in /var/lib/docker/image/*/imagedb/content/sha256/*; do
		if [ -e "$f" ]; then
			log "Docker's data root holds images already: it stays on the root volume"
			return 0
		fi
	done
	systemctl is-active --quiet docker.service 2>/dev/null && active=1
	[ -n "$active" ] && systemctl stop docker.socket docker.service
	if mkdir -p "$STORE_MOUNT/docker" && mount --bind "$STORE_MOUNT/docker" /var/lib/docker; then
		log "Docker's data root /var/lib/docker is on the instance store"
	else
		log "WARNING: could not move Docker's data root to the instance store"
	fi
	[ -n "$active" ] && systemctl start docker.service
	return 0
}

# Root, bash, from a file; output goes to its own log (a daemon it starts may
# keep that open), and its tail to ours if it fails.
run_pre_script() {
	local file="$STATE_DIR/pre-runner.sh" status line
	[ -n "$PRE_RUNNER_SCRIPT" ] || return 0
	printf '%s\n' "$PRE_RUNNER_SCRIPT" >"$file" || fatal "could not write the pre-runner script"
	log "running the pre-runner script (output in $PRE_LOG)"
	(cd / && EC2SR_RUNNER_USER=$RUNNER_USER EC2SR_RUNNER_DIR=$RUNNER_PATH exec bash "$file") </dev/null >>"$PRE_LOG" 2>&1
	status=$?
	if [ "$status" != 0 ]; then
		while IFS= read -r line; do
			log "pre-runner: $line"
		done < <(tail -n 20 -- "$PRE_LOG")
		fatal "the pre-runner script failed with exit status $status"
	fi
}

# The JIT config goes to run.sh in its environment, never on a command line
# (`ps` shows every command line to every user): the runner takes each of its
# arguments from an ACTIONS_RUNNER_INPUT_<NAME> variable as well, and removes
# the variable from its environment, so the jobs it starts never inherit it
# (actions/runner, src/Runner.Listener/CommandSettings.cs, the constructor:
# "Store and remove any args passed via environment variables"). What stays:
# /proc/PID/environ of run.sh, run-helper.sh and Runner.Listener, as they
# were started, which only root and the runner user can read; the runner
# writes the same credentials into its directory anyway (Runner.cs).
# run.sh's stderr joins its stdout: the console, the journal.
start_runner() {
	local status name
	add_docker_group
	log "starting the runner in $RUNNER_PATH as $RUNNER_USER"
	(
		# A clean environment: nothing of cloud-init's or ours reaches jobs.
		while IFS= read -r name; do
			unset -v "$name" 2>/dev/null
		done < <(compgen -e)
		export HOME="$RUNNER_HOME" USER="$RUNNER_USER" LOGNAME="$RUNNER_USER" SHELL=/bin/bash LANG=C.UTF-8
		export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		[ -n "$ICU_INVARIANT" ] && export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
		export ACTIONS_RUNNER_INPUT_JITCONFIG="$JIT_CONFIG"
		cd -- "$RUNNER_PATH" || exit 1
		as_runner ./run.sh 2>&1
	) &
	wait "$!"
	status=$?
	log "the runner exited with status $status"
	power_off "runner finished (run.sh exit status $status)"
	exit "$status"
}

# cloud-init runs user data once per instance: a machine that boots again
# (a kernel panic, a reboot from a job or the pre-runner script, an EC2
# reboot) would come back with no runner and no watchdog, and live on. This
# unit, early in every later boot, powers it off at once (this script with
# --rebooted, which says so; then systemctl, should that fail). /run is empty
# after a reboot, so the condition keeps it from acting during this boot.
install_reboot_unit() {
	local exec=""
	[ -d /etc/systemd/system ] || return 0
	[[ $SELF =~ ^/[A-Za-z0-9/._-]+$ ]] && exec="ExecStart=-/bin/bash $SELF --rebooted"
	{
		printf '%s\n' '[Unit]' DefaultDependencies=no After=local-fs.target "ConditionPathExists=!$STATE_DIR" \
			'[Service]' Type=oneshot "$exec" 'ExecStart=/bin/systemctl --no-block poweroff' >"$REBOOT_UNIT" &&
			mkdir -p /etc/systemd/system/sysinit.target.wants &&
			ln -sf "$REBOOT_UNIT" /etc/systemd/system/sysinit.target.wants/ &&
			{ sync -- "$REBOOT_UNIT" /etc/systemd/system/sysinit.target.wants /etc/systemd/system || sync; }
	} 2>/dev/null || log "WARNING: could not install $REBOOT_UNIT"
}

# cloud-init waits for this script, and so does `cloud-init status --wait`
# (which images, pre-runner scripts and jobs use): with the runner started
# from here, cloud-init would be "running" until the job ends. So the rest
# runs as a systemd unit of its own and this script returns. The unit's
# output goes to the console and the journal, as cloud-final's does;
# FailureAction powers off should its main process die in a way no trap sees
# (SIGKILL). Its CPU weight is ten times the default: the runner is what this
# machine is for, and at boot it would otherwise share the CPU evenly with
# cloud-init's last stage and other late units. The watchdogs stay in
# cloud-final's unit, which lives on (RemainAfterExit). Without systemd, or
# should systemd-run fail, everything runs here.
hand_over() {
	local env=()
	if [ ! -d /run/systemd/system ] || ! have systemd-run; then
		return 1
	fi
	[ -n "${EC2SR_IMDS_ENDPOINT:-}" ] && env=(--setenv=EC2SR_IMDS_ENDPOINT="$EC2SR_IMDS_ENDPOINT")
	systemd-run --quiet --no-block --unit=ec2-spot-runner --property=StandardOutput=journal+console --property=StandardError=journal \
		--property=FailureAction=poweroff --property=CPUWeight=1000 ${env[@]+"${env[@]}"} -- /bin/bash "$SELF" --unit
}

# Any exit that did not power off first (a bug, a signal: 128 + its number)
# powers off here.
on_exit() {
	local status=$?
	[ -e "$STATE_DIR/powering-off" ] && return
	log "ERROR: bootstrap exited unexpectedly with status $status"
	power_off "bootstrap exited unexpectedly"
}

main() {
	mkdir -p -- "$STATE_DIR" && chmod 700 -- "$STATE_DIR"
	mkdir -p -- "${LOG_FILE%/*}"
	trap on_exit EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [ "${1:-}" = --rebooted ]; then
		power_off "the machine booted again: a runner machine runs one job only"
		exit 0
	fi
	if [ "${1:-}" != --unit ]; then
		log "bootstrap started for runner $RUNNER_NAME (label $RUNNER_LABEL)"
		install_reboot_unit
		# Bad durations fall back to the defaults; an idle timeout of 0 means none.
		[[ $MAX_LIFETIME =~ ^[1-9][0-9]{0,8}$ ]] || MAX_LIFETIME=21600
		[[ $IDLE_TIMEOUT =~ ^[0-9]{1,9}$ ]] || IDLE_TIMEOUT=900
		write_watchdogs || fatal "could not write $STATE_DIR/watchdog.sh"
		spawn_watchdog max_lifetime
		((IDLE_TIMEOUT > 0)) && spawn_watchdog idle
		log "watchdogs armed: max lifetime ${MAX_LIFETIME}s, idle timeout ${IDLE_TIMEOUT}s (0: none)"
		spawn_watchdog spot
		ensure_user
		locate_runner
		setup_instance_store
		ensure_icu
		if printf 'RUNNER_PATH=%q\nICU_INVARIANT=%q\nSTORE_READY=%q\n' "$RUNNER_PATH" "$ICU_INVARIANT" "$STORE_READY" \
			2>/dev/null >"$STATE_DIR/runner.state" && hand_over; then
			log "the runner goes on in ec2-spot-runner.service"
			trap - EXIT
			exit 0
		fi
	else
		# shellcheck source=/dev/null # written above, in root's own directory
		. "$STATE_DIR/runner.state" || fatal "the bootstrap left no $STATE_DIR/runner.state"
		read_user || fatal "the runner user $RUNNER_USER is gone"
	fi
	run_pre_script
	store_docker
	# The pre-runner script may have installed libicu itself.
	if [ -n "$ICU_INVARIANT" ] && have_icu; then
		ICU_INVARIANT=""
		log "libicu is there after the pre-runner script: the runner runs with full globalization"
	fi
	start_runner
}

main "$@"
