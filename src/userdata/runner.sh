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
#   5. hand over the rest runs in a systemd unit of its own, so that
#                cloud-init is done while the job runs
#   6. user      the unprivileged user that runs the runner
#   7. runner    RUNNER_DIR, else a pre-installed runner, else a download
#                verified against its SHA-256 checksum
#   8. pre-run   the optional PRE_RUNNER_SCRIPT, as root
#   9. run       run.sh as the runner user, the JIT config in its environment
#  10. power off once run.sh has exited
#
# The script runs again from its own file (cloud-init keeps it, root-only,
# under /var/lib/cloud/instance/scripts): with --unit as that systemd unit
# (steps 6-10), with --rebooted from the reboot unit.
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
printf -v START '%(%s)T' -1
MAX_LIFETIME=$MAX_LIFETIME_SECONDS
IDLE_TIMEOUT=$IDLE_TIMEOUT_SECONDS
RUNNER_PATH=""
RUNNER_HOME=""
SELF=$(readlink -f -- "$0")
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

spawn_watchdog() {
	setsid bash "$STATE_DIR/watchdog.sh" "$1" </dev/null >/dev/null 2>&1 &
	printf '%s\n' "$!" >"$STATE_DIR/$1.pid"
}

# Runs a command as the runner user: runuser, else setpriv (both util-linux,
# on Ubuntu, Debian and Amazon Linux alike).
as_runner() {
	if have runuser; then
		runuser -u "$RUNNER_USER" -- "$@"
	else
		setpriv --reuid="$RUNNER_USER" --regid="$(id -g -- "$RUNNER_USER")" --init-groups -- "$@"
	fi
}

ensure_user() {
	if ! id -u -- "$RUNNER_USER" >/dev/null 2>&1; then
		log "creating the runner user $RUNNER_USER"
		useradd --system --create-home --user-group --shell /bin/bash -- "$RUNNER_USER" ||
			fatal "could not create the runner user $RUNNER_USER"
	fi
	[ "$(id -u -- "$RUNNER_USER")" != 0 ] || fatal "the runner user $RUNNER_USER is root"
	RUNNER_HOME=$(getent passwd "$RUNNER_USER" | cut -d: -f6)
	RUNNER_HOME=${RUNNER_HOME:-/home/$RUNNER_USER}
	[ -d "$RUNNER_HOME" ] || { mkdir -p -- "$RUNNER_HOME" && chown -- "$RUNNER_USER:" "$RUNNER_HOME"; }
	add_docker_group
}

# Called again right before the runner starts: the pre-runner script may
# have installed Docker.
add_docker_group() {
	getent group docker >/dev/null 2>&1 || return 0
	[[ " $(id -nG -- "$RUNNER_USER") " == *" docker "* ]] && return 0
	usermod -aG docker -- "$RUNNER_USER" && log "added $RUNNER_USER to the docker group"
}

use_runner() {
	local dir
	RUNNER_PATH=$1
	printf '%s\n' "$RUNNER_PATH" >"$STATE_DIR/runner-dir"
	if [ "$(stat -c %U -- "$RUNNER_PATH")" != "$RUNNER_USER" ]; then
		log "handing $RUNNER_PATH over to $RUNNER_USER"
		chown -R -- "$RUNNER_USER:" "$RUNNER_PATH" || fatal "could not chown $RUNNER_PATH to $RUNNER_USER"
	fi
	as_runner test -x "$RUNNER_PATH/run.sh" && return
	# A runner in another user's home (Ubuntu makes homes 0750) is out of
	# reach: grant search permission, not listing, on each parent.
	dir=$RUNNER_PATH
	while [ -n "${dir%/*}" ]; do
		dir=${dir%/*}
		chmod o+x -- "$dir"
	done
	as_runner test -x "$RUNNER_PATH/run.sh" || fatal "$RUNNER_USER cannot run $RUNNER_PATH/run.sh"
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
download_runner() {
	local arch sum url work got
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
	fetch "$url" "$work/r.tgz" || fatal "runner download failed"
	got=$(sha256sum -- "$work/r.tgz")
	got=${got%% *}
	[ "$got" = "$sum" ] || fatal "runner checksum mismatch: expected $sum, got $got"
	log "runner checksum verified"
	mkdir -- "$work/r" && tar -xzf "$work/r.tgz" -C "$work/r" --no-same-owner && [ -f "$work/r/run.sh" ] ||
		fatal "could not extract run.sh from the runner archive"
	rm -rf -- "$DOWNLOAD_DIR" "$work/r.tgz"
	mv -- "$work/r" "$DOWNLOAD_DIR" || fatal "could not move the runner into place"
	chmod 755 -- "$DOWNLOAD_DIR"
	rm -rf -- "$work"
	use_runner "$DOWNLOAD_DIR"
}

# Where the runner comes from: RUNNER_DIR if it holds run.sh; else a runner
# pre-installed in an image at one of the usual places below; else a
# download into /opt/actions-runner.
locate_runner() {
	local dir
	if [ -n "$RUNNER_DIR" ]; then
		if [ -f "$RUNNER_DIR/run.sh" ]; then
			log "using the runner in $RUNNER_DIR"
			use_runner "$RUNNER_DIR"
			return
		fi
		log "RUNNER_DIR $RUNNER_DIR has no run.sh; looking elsewhere"
	fi
	for dir in /opt/actions-runner "$RUNNER_HOME/actions-runner" /home/runner/actions-runner \
		/actions-runner /home/ubuntu/actions-runner /home/ec2-user/actions-runner; do
		if [ -f "$dir/run.sh" ]; then
			log "using the pre-installed runner in $dir"
			use_runner "$dir"
			return
		fi
	done
	download_runner
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
			sync
	} 2>/dev/null || log "WARNING: could not install $REBOOT_UNIT"
}

# cloud-init waits for this script, and so does `cloud-init status --wait`
# (which images and jobs use): with the runner started from here, cloud-init
# would be "running" until the job ends. So the rest runs as a systemd unit of
# its own and this script returns. The unit's output goes to the console and
# the journal, as cloud-final's does; FailureAction powers off should its
# main process die in a way no trap sees (SIGKILL). The watchdogs stay in
# cloud-final's unit, which lives on (RemainAfterExit). Without systemd, or
# should systemd-run fail, everything runs here.
hand_over() {
	local env=()
	if [ ! -d /run/systemd/system ] || ! have systemd-run; then
		return 1
	fi
	[ -n "${EC2SR_IMDS_ENDPOINT:-}" ] && env=(--setenv=EC2SR_IMDS_ENDPOINT="$EC2SR_IMDS_ENDPOINT")
	systemd-run --quiet --unit=ec2-spot-runner --property=StandardOutput=journal+console --property=StandardError=journal \
		--property=FailureAction=poweroff ${env[@]+"${env[@]}"} -- /bin/bash "$SELF" --unit
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
	mkdir -p -- "$(dirname -- "$LOG_FILE")"
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
		if hand_over; then
			log "the runner goes on in ec2-spot-runner.service"
			trap - EXIT
			exit 0
		fi
	fi
	ensure_user
	locate_runner
	run_pre_script
	start_runner
}

main "$@"
