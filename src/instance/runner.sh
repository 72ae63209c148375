#!/bin/bash
# ec2-spot-runner: the bootstrap of an ephemeral GitHub Actions runner.
#
# EC2 hands this script to cloud-init as a boothook (the user data starts
# with "#cloud-boothook"; cloud-init strips that line and runs the rest as
# root from its own file). Boothooks run in cloud-init's network stage, as
# soon as the user data has been read, long before the final stage in which
# a plain user-data script would run (on Debian and Ubuntu that stage waits
# for multi-user.target). The script starts a just-in-time runner that takes
# exactly one job, then powers the machine off. The instance is launched
# with "terminate" as its instance-initiated shutdown behaviour, so powering
# off deletes it. Every way out ends in a power-off: a machine that cannot
# run its job must not sit there costing money.
#
# It runs in three roles, one process each:
#   boothook    (no argument) every boot. The first boot of an instance
#               marks it on the disk, writes the reboot unit, arms the
#               watchdogs, locates the runner, hands over to the runner's
#               unit, then readies the instance store and stops the image's
#               package timers while the unit runs. A later boot of the same
#               instance powers off.
#   --unit      ec2-spot-runner.service, a transient systemd unit without
#               default dependencies, so it starts at once, not after
#               sysinit.target (which waits for cloud-init's network
#               stage): the runner download first, in the background, when
#               one is needed (nothing of it is unpacked before its SHA-256
#               matched, and a mismatch leaves nothing behind); the runner
#               user, the runner, its environment, the work folder on the
#               instance store, the optional pre-runner script, then run.sh,
#               then the power-off.
#   --rebooted  the reboot unit, early in any later boot: powers off.
# Without systemd (or should systemd-run fail) the boothook runs the unit's
# part itself.
#
# The renderer replaces the settings line below by `readonly NAME='value'`
# lines. Values are single-quoted data; the code below only reads them, and
# always inside double quotes. Durations are whole seconds.
#
# Read from the environment: INSTANCE_ID, which cloud-init gives a boothook,
# and EC2SR_IMDS_ENDPOINT, an override of the metadata endpoint for tests.
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

# Root-only scratch space on tmpfs, gone at a reboot: watchdog code, the
# pre-runner script, what the roles tell each other, the power-off marker.
STATE_DIR=/run/ec2-spot-runner
# On the disk: one file per instance whose first boot this script has seen.
MARK_DIR=/var/lib/ec2-spot-runner
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
INSTANCE=""
DOWNLOAD=""
DOWNLOAD_PID=""
STORE_LOCK=""
RUNNER_PATH=""
OLD_RUNNER=""
OLD_VERSION=""
RUNNER_HOME=""
RUNNER_UID=""
RUNNER_GID=""
FOUND_VERSION=""
ICU_INVARIANT=""
STORE_READY=""
STORE_DISKS=0
STORE_GIB=0
ICU_NOTE="the runner runs with invariant globalization (DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1), so .NET programs in the job see no culture data; put libicu in the image"
# cloud-init runs the script by its absolute path.
case $0 in
/*) SELF=$0 ;;
*) SELF=$PWD/$0 ;;
esac
REBOOT_UNIT=/etc/systemd/system/ec2-spot-runner-rebooted.service
# The image's package timers and services: at boot they take the dpkg or
# rpm lock that a job's first `apt-get install` needs. The machine lives for
# one job, so they are stopped and masked for its life, as GitHub-hosted
# images do.
PACKAGE_UNITS=(apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
	unattended-upgrades.service dnf-makecache.timer dnf-makecache.service)

 One log line: "YYYY-MM-DDTHH:MM:SSZ ec2-spot-runner: message". Newlines and
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

# Writes "$2" to the state file $1 at once (a reader never sees half of it).
tell() {
	printf '%s\n' "$2" >"$STATE_DIR/$1.tmp" && mv -f -- "$STATE_DIR/$1.tmp" "$STATE_DIR/$1"
}

# The instance id, which cloud-init hands a boothook as INSTANCE_ID.
read_instance_id() {
	INSTANCE=${INSTANCE_ID:-}
	[[ $INSTANCE =~ ^[A-Za-z0-9-]{1,64}$ ]] || INSTANCE=unknown
}

# cloud-init runs a boothook at every boot; the runner runs once per
# instance. The first boot leaves MARK_DIR/<instance id> on the disk, so a
# boot that finds it is a later boot of the same instance (a kernel panic, a
# reboot from a job, an EC2 reboot), which would come back with no runner
# and must not live on.
first_boot() {
	local mark="$MARK_DIR/$INSTANCE"
	[ -e "$mark" ] && return 1
	if ! { mkdir -p -- "$MARK_DIR" && : >"$mark"; }; then
		log "WARNING: could not write $mark"
	fi
	sync -- "$mark" "$MARK_DIR" 2>/dev/null || sync
	return 0
}

# The boothook's side: the runner's unit is to download RUNNER_VERSION.
start_download() {
	[ -n "$RUNNER_VERSION" ] || fatal "no runner installed and no runner version to download"
	DOWNLOAD=1
}

# The download, a background job of the runner's unit (so it gets the unit's
# CPU weight while the boot goes on, and the unit waits for it without
# polling): RUNNER_VERSION into a fresh directory next to
# DOWNLOAD_DIR; unpacked only once its SHA-256 matched. It says how it went
# in STATE_DIR/download: "ok DIR" (DIR holds the unpacked runner), "failed
# REASON" (an update may fall back on the old runner) or "fatal REASON" (a
# checksum mismatch, no checksum, an unknown architecture). Whatever went
# wrong, nothing of the download is left behind.
download_runner() {
	local arch sum url work got
	case "$(uname -m)" in
	x86_64 | amd64) arch=x64 sum=$RUNNER_SHA256_X64 ;;
	aarch64 | arm64) arch=arm64 sum=$RUNNER_SHA256_ARM64 ;;
	*)
		tell download "fatal unsupported architecture $(uname -m)"
		return
		;;
	esac
	sum=${sum,,}
	if ! [[ $sum =~ ^[0-9a-f]{64}$ ]]; then
		tell download "fatal no checksum for the $arch runner $RUNNER_VERSION"
		return
	fi
	url=${RUNNER_DOWNLOAD_URL//'{version}'/"$RUNNER_VERSION"}
	url=${url//'{arch}'/"$arch"}
	mkdir -p /opt
	if ! work=$(mktemp -d /opt/.ec2-spot-runner.XXXXXX); then
		tell download "fatal cannot write to /opt"
		return
	fi
	# A query string may carry a signature: keep it out of the log.
	log "downloading runner $RUNNER_VERSION ($arch) from ${url%%\?*}"
	if ! fetch "$url" "$work/r.tgz"; then
		rm -rf -- "$work"
		tell download "failed runner download failed"
		return
	fi
	got=$(sha256sum -- "$work/r.tgz")
	got=${got%% *}
	if [ "$got" != "$sum" ]; then
		rm -rf -- "$work"
		tell download "fatal runner checksum mismatch: expected $sum, got $got"
		return
	fi
	log "runner checksum verified"
	if ! { mkdir -- "$work/r" && tar -xzf "$work/r.tgz" -C "$work/r" --no-same-owner && [ -f "$work/r/run.sh" ]; }; then
		rm -rf -- "$work"
		tell download "fatal could not extract run.sh from the runner archive"
		return
	fi
	rm -f -- "$work/r.tgz"
	tell download "ok $work"
}

# The unit's side of the download: waits for the job, then moves the verified
# runner into DOWNLOAD_DIR. When it replaces an older runner (OLD_RUNNER),
# that runner's .env and .path (the environment its image gave it) carry
# over, and a download that failed leaves the old runner in use.
place_download() {
	local status="" detail="" f
	wait "$DOWNLOAD_PID"
	[ -e "$STATE_DIR/download" ] && IFS=' ' read -r status detail <"$STATE_DIR/download"
	case $status in
	ok) ;;
	failed)
		if [ -n "$OLD_RUNNER" ]; then
			log "WARNING: the update download failed; using runner $OLD_VERSION, which updates itself when GitHub asks it to"
			use_runner "$OLD_RUNNER"
			return
		fi
		fatal "$detail"
		;;
	*) fatal "${detail:-the download ended without a word}" ;;
	esac
	for f in .env .path; do
		[ -n "$OLD_RUNNER" ] && [ -f "$OLD_RUNNER/$f" ] && cp -p -- "$OLD_RUNNER/$f" "$detail/r/$f"
	done
	rm -rf -- "$DOWNLOAD_DIR"
	mv -- "$detail/r" "$DOWNLOAD_DIR" || fatal "could not move the runner into place"
	chmod 755 -- "$DOWNLOAD_DIR"
	rm -rf -- "$detail"
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

# A runner found in $1 is used as it is or, when it is older than
# RUNNER_VERSION and RUNNER_UPDATE is set, replaced by that version's
# verified download (OLD_RUNNER is then the fallback). GitHub stops sending
# jobs to runners that fall behind; the runner's own self-update stays on
# either way.
found_runner() {
	if [ -n "$RUNNER_UPDATE" ] && [ -n "$RUNNER_VERSION" ]; then
		runner_version_of "$1"
		if [ -z "$FOUND_VERSION" ]; then
			log "the runner in $1 does not tell its version; using it as it is"
		elif version_older "$FOUND_VERSION" "$RUNNER_VERSION"; then
			log "the runner in $1 is $FOUND_VERSION, older than $RUNNER_VERSION: updating it (runner-update: false keeps it)"
			OLD_RUNNER=$1 OLD_VERSION=$FOUND_VERSION
			start_download
			return
		else
			log "the runner in $1 is $FOUND_VERSION, not older than $RUNNER_VERSION"
		fi
	fi
	RUNNER_PATH=$1
}

# Where the runner comes from: RUNNER_DIR if it holds run.sh; else a runner
# pre-installed in an image at one of the usual places below; else a
# download into /opt/actions-runner, started at once.
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
	for dir in /opt/actions-runner ${RUNNER_HOME:+"$RUNNER_HOME/actions-runner"} /home/runner/actions-runner \
		/actions-runner /home/ubuntu/actions-runner /home/ec2-user/actions-runner; do
		if [ -f "$dir/run.sh" ]; then
			log "using the pre-installed runner in $dir"
			found_runner "$dir"
			return
		fi
	done
	start_download
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

# The newest package of a name family the way apt-get and zypper list
# them: $1 is a regular expression for the whole name.
newest_of() {
	grep -E "^$1\$" | sort -V | tail -n 1
}

# The runner's own bin/installdependencies.sh names the packages: libicu on
# dnf and yum; libicuNN on apt; a versioned libicuNN_N on openSUSE and SLES,
# where no package provides a plain "libicu" (the runner's script pins
# libicu60_2, long gone from current releases, so the newest is looked up
# the way the apt branch does).
install_icu() {
	local pkg
	if have dnf; then
		timeout 300 dnf install -y libicu
	elif have yum; then
		timeout 300 yum install -y libicu
	elif have zypper; then
		pkg=$(timeout 300 zypper --non-interactive --quiet search --type package 'libicu*' |
			awk -F'|' '{gsub(/[[:space:]]/, "", $2); print $2}' | newest_of 'libicu[0-9]+(_[0-9]+)?')
		[ -n "$pkg" ] || { echo "zypper knows no libicuNN package"; return 1; }
		timeout 300 zypper --non-interactive install "$pkg"
	elif have apt-get; then
		timeout 300 apt-get update || return 1
		pkg=$(apt-cache pkgnames libicu | newest_of 'libicu[0-9]+')
		[ -n "$pkg" ] || { echo "apt knows no libicuNN package"; return 1; }
		DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y --no-install-recommends "$pkg"
	else
		echo "no dnf, yum, zypper or apt-get"
		return 1
	fi
}

# Amazon Linux 2023 images, among others, come without ICU. No package
# manager stands between the boot and the runner unless INSTALL_LIBICU asks
# for one (it reads its repositories first: seconds to tens of seconds):
# the runner's .NET runs without ICU when DOTNET_SYSTEM_GLOBALIZATION_INVARIANT
# is set.
ensure_icu() {
	have_icu && return 0
	if [ -n "$INSTALL_LIBICU" ]; then
		log "libicu, which the runner needs, is missing: installing it (output in $PKG_LOG)"
		if install_icu </dev/null >>"$PKG_LOG" 2>&1 && have_icu; then
			log "libicu installed"
			return 0
		fi
		log "WARNING: could not install libicu (see $PKG_LOG): $ICU_NOTE"
	else
		log "no libicu on this image: $ICU_NOTE; install-libicu: true installs it first"
	fi
	ICU_INVARIANT=1
}

# NVMe instance-store disks: every NVMe disk that is not an EBS volume (EBS
# shows the model "Amazon Elastic Block Store", instance store "Amazon EC2
# NVMe Instance Storage") and carries nothing yet: no partition, no holder,
# no file system. They are formatted (RAID 0 across several, with mdadm) and
# mounted on STORE_MOUNT, in the boothook: before cloud-init's network
# stage ends, so before Docker or containerd can start, whose data roots
# move there too (see store_data_roots). The unit makes it the runner's
# work folder. It starts empty and dies with the machine, like everything
# else here. STATE_DIR/store says "ready DISKS GIB" or "none".
# NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ssd-instance-store.html
prepare_store() {
	[ -n "$INSTANCE_STORE" ] || return 0
	format_store
	if [ -n "$STORE_READY" ]; then
		store_data_roots
		tell store "ready $STORE_DISKS $STORE_GIB"
	else
		tell store none
	fi
}

format_store() {
	local d name model devs=() dev sectors=0 size part
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
		</dev/null >>"$PKG_LOG" 2>&1 && mkdir -p "$STORE_MOUNT" && mount -o noatime "$dev" "$STORE_MOUNT"; }; then
		log "WARNING: could not use the instance store on $dev (see $PKG_LOG); the work folder stays on the root volume"
		return 0
	fi
	STORE_READY=1 STORE_DISKS=${#devs[@]} STORE_GIB=$((sectors / 2097152))
}

# Where Docker keeps what it pulls: /var/lib/docker (its data root: images
# of the classic store, containers, volumes) and, with the containerd image
# store, /var/lib/containerd (images and their snapshots: the default of
# fresh Docker Engine 29 installs, whose dockerd uses the system containerd;
# docs.docker.com, "containerd image store"). Each of the two that exists
# and holds no images yet (images pulled into the AMI stay where they are)
# goes onto the instance store. Called in the boothook, before either
# service can start, and again after the pre-runner script, which may have
# installed Docker; services already running are stopped for the move and
# started again.
store_data_roots() {
	local dir what held f units=() active=() unit
	[ -n "$STORE_READY" ] || return 0
	for dir in /var/lib/docker /var/lib/containerd; do
		[ -d "$dir" ] && [ ! -e "$STATE_DIR/stored${dir//\//-}" ] || continue
		if [ "$dir" = /var/lib/docker ]; then
			what="Docker's data root" held=("$dir"/image/*/imagedb/content/sha256/*)
			units=(docker.socket docker.service)
		else
			what="containerd's image store" held=("$dir"/io.containerd.content.v1.content/blobs/sha256/*)
			units=(docker.socket docker.service containerd.service)
		fi
		: >"$STATE_DIR/stored${dir//\//-}"
		for f in "${held[@]}"; do
			if [ -e "$f" ]; then
				log "$what $dir holds images already: it stays on the root volume"
				continue 2
			fi
		done
		active=()
		if [ -d /run/systemd/system ]; then
			for unit in "${units[@]}"; do
				systemctl is-active --quiet "$unit" 2>/dev/null && active+=("$unit")
			done
		fi
		((${#active[@]})) && systemctl stop "${active[@]}"
		if mkdir -p "$STORE_MOUNT/${dir##*/}" && mount --bind "$STORE_MOUNT/${dir##*/}" "$dir"; then
			log "$what $dir is on the instance store"
		else
			log "WARNING: could not move $what $dir to the instance store"
		fi
		((${#active[@]})) && systemctl start "${active[@]}"
	done
	return 0
}

# The unit's side: the instance store becomes the runner's work folder
# (RUNNER_PATH/_work, the JIT config's work folder). What the image keeps
# there (its tool cache, _work/_tool, which the runner uses unless
# RUNNER_TOOL_CACHE says otherwise) stays visible: an overlay takes the
# image's folder as its lower layer and puts every write on the instance
# store. An empty folder gets a plain bind mount.
use_store_for_work() {
	local work="$RUNNER_PATH/_work" state="" entries=() upper moved="" over=""
	[ -n "$INSTANCE_STORE" ] || return 0
	# The boothook holds this lock until the store is ready (no polling).
	flock -s "$STATE_DIR/store.lock" true 2>/dev/null
	[ -e "$STATE_DIR/store" ] && read -r state STORE_DISKS STORE_GIB <"$STATE_DIR/store"
	[ "$state" = ready ] || return 0
	STORE_READY=1
	mkdir -p -- "$work"
	shopt -s nullglob dotglob
	entries=("$work"/*)
	shopt -u nullglob dotglob
	upper=$STORE_MOUNT/work
	if ((${#entries[@]} == 0)); then
		mkdir -p "$upper" && chown -- "$RUNNER_USER:" "$upper" && mount --bind "$upper" "$work" && moved=1
	elif [[ $work != *[,:=]* ]] && mkdir -p "$upper" "$STORE_MOUNT/.overlay" && chown -- "$RUNNER_USER:" "$upper" &&
		mount -t overlay ec2-spot-runner -o "lowerdir=$work,upperdir=$upper,workdir=$STORE_MOUNT/.overlay" "$work"; then
		moved=1 over=", over what the image keeps there"
	fi
	if [ -n "$moved" ]; then
		log "instance store: $STORE_DISKS NVMe disk(s), $STORE_GIB GiB, is the work folder $work$over (instance-store: off leaves it unused)"
	else
		log "WARNING: could not make the instance store the work folder $work; it stays on the root volume"
	fi
}

# The job's environment is the image's, as a login would give it: the
# runner starts without a PAM session, and a JIT runner never ran
# the runner's configuration script, nor env.sh (actions/runner, src/Misc/layoutroot/env.sh), so nothing
# else reads /etc/environment, where images built the GitHub-hosted way
# (actions/runner-images) keep AGENT_TOOLSDIRECTORY, JAVA_HOME_* and their
# PATH, and Ubuntu adds /snap/bin. Its KEY=VALUE lines are read the way
# pam_env reads them (optional quotes, no expansion); the runner's own
# .path, where an image has one, is its PATH, as the runner's service
# wrapper (src/Misc/layoutbin/runsvc.sh) makes it; its .env the runner
# reads itself (Runner.Listener, Program.cs LoadAndSetEnv). Exported into
# the calling (sub)shell.
image_environment() {
	local line key value
	if [ -r /etc/environment ]; then
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line#"${line%%[![:space:]]*}"}
			line=${line#export }
			[[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
			key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
			value=${value%"${value##*[![:space:]]}"}
			if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
				value=${BASH_REMATCH[1]}
			fi
			export "$key=$value"
		done </etc/environment
	fi
	if [ -s "$RUNNER_PATH/.path" ]; then
		IFS= read -r value <"$RUNNER_PATH/.path" && [ -n "$value" ] && export PATH="$value"
	fi
}

# Root, bash, from a file; output goes to its own log (a daemon it starts may
# keep that open), and its tail to ours if it fails. It runs once the boot
# has finished (systemd's start-up, cloud-init's final stage included), as
# before the runner started early: it may rely on anything the image
# starts, and may itself wait for cloud-init.
run_pre_script() {
	local file="$STATE_DIR/pre-runner.sh" status line
	[ -n "$PRE_RUNNER_SCRIPT" ] || return 0
	printf '%s\n' "$PRE_RUNNER_SCRIPT" >"$file" || fatal "could not write the pre-runner script"
	if [ -d /run/systemd/system ]; then
		log "waiting for the boot to finish before the pre-runner script"
		systemctl is-system-running --wait >/dev/null 2>&1
	fi
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
#
# The runner and so the job's steps start with SIGINT and SIGQUIT at their
# defaults. A background command (`cmd &`) of a non-interactive shell starts
# with both ignored, .NET keeps an ignored signal ignored for the processes
# it starts (dotnet/runtime, pal_signal.c, InstallSignalHandler), and every
# step would then ignore the runner's SIGINT on a cancel and end only by
# SIGTERM, 7.5 s later. So run.sh runs in the foreground, and, should this
# script itself have been started with them ignored (which bash cannot
# undo), through `env --default-signal` (coreutils 8.31 and later).
#
# With ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1 (actions/runner
# 2.333.0 and later, src/Runner.Listener/Program.cs; run.sh and
# run-helper.sh pass the code on only for "1"), a runner that GitHub refuses
# as too old exits with 7 instead of a plain 1 (which run-helper.sh turns
# into 0). run.sh's stderr joins its stdout: the console, the journal.
start_runner() {
	local status name reset=()
	add_docker_group
	# shellcheck disable=SC2054 # env's option takes a list
	env --default-signal=INT,QUIT -- true 2>/dev/null && reset=(env --default-signal=INT,QUIT --)
	log "starting the runner in $RUNNER_PATH as $RUNNER_USER"
	(
		# A clean environment: nothing of cloud-init's or ours reaches jobs.
		while IFS= read -r name; do
			unset -v "$name" 2>/dev/null
		done < <(compgen -e)
		export LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		image_environment
		export HOME="$RUNNER_HOME" USER="$RUNNER_USER" LOGNAME="$RUNNER_USER" SHELL=/bin/bash
		[ -n "$ICU_INVARIANT" ] && export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
		export ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1
		export ACTIONS_RUNNER_INPUT_JITCONFIG="$JIT_CONFIG"
		cd -- "$RUNNER_PATH" || exit 1
		as_runner ${reset[@]+"${reset[@]}"} ./run.sh 2>&1
	)
	status=$?
	log "the runner exited with status $status"
	if [ "$status" = 7 ]; then
		runner_version_of "$RUNNER_PATH"
		log "ERROR: GitHub refused runner ${FOUND_VERSION:-of unknown version} in $RUNNER_PATH as too old:" \
			"leave runner-update on, set runner-version to a current release, or put a current runner in the image"
		power_off "GitHub refused the runner as outdated (run.sh exit status 7)"
		exit "$status"
	fi
	power_off "runner finished (run.sh exit status $status)"
	exit "$status"
}

# A machine that boots again must not live on. This unit, early in every
# later boot (before cloud-init, so before the boothook could notice),
# powers it off at once (this script with --rebooted, which says so; then
# systemctl, should that fail). /run is empty after a reboot, so the
# condition keeps it from acting during this boot. The unit and this
# script's own file are synced: a reset soon after the first boot would
# otherwise find them empty (ext4 allocates a new file's blocks late).
install_reboot_unit() {
	local exec=""
	[ -d /etc/systemd/system ] || return 0
	[[ $SELF =~ ^/[A-Za-z0-9/._-]+$ ]] && exec="ExecStart=-/bin/bash $SELF --rebooted"
	{
		printf '%s\n' '[Unit]' DefaultDependencies=no After=local-fs.target "ConditionPathExists=!$STATE_DIR" \
			'[Service]' Type=oneshot "$exec" 'ExecStart=/bin/systemctl --no-block poweroff' >"$REBOOT_UNIT" &&
			mkdir -p /etc/systemd/system/sysinit.target.wants &&
			ln -sf "$REBOOT_UNIT" /etc/systemd/system/sysinit.target.wants/ &&
			{ sync -- "$REBOOT_UNIT" /etc/systemd/system/sysinit.target.wants /etc/systemd/system "$SELF" || sync; }
	} 2>/dev/null || log "WARNING: could not install $REBOOT_UNIT"
}

# The runner's unit starts at once: without default dependencies it waits
# neither for sysinit.target (which, on Debian and Ubuntu, waits for the
# network stage this boothook runs in) nor for basic.target; cloud-init
# waits for the boothook only, and `cloud-init status --wait` does not wait
# for the unit. It stops at shutdown like any service, and is ordered after
# systemd-resolved where the image has it (DNS for the runner). Its output
# goes to the console and the journal; FailureAction powers off should its
# main process die in a way no trap sees (SIGKILL); its CPU weight is ten
# times the default, since the runner is what this machine is for and the
# boot goes on beside it. The watchdogs and the downloader stay in
# cloud-init's unit, which lives on (RemainAfterExit). Without systemd, or
# should systemd-run fail, the boothook runs the unit's part itself.
hand_over() {
	local env=()
	if [ ! -d /run/systemd/system ] || ! have systemd-run; then
		return 1
	fi
	[ -n "${EC2SR_IMDS_ENDPOINT:-}" ] && env=(--setenv=EC2SR_IMDS_ENDPOINT="$EC2SR_IMDS_ENDPOINT")
	systemd-run --quiet --no-block --unit=ec2-spot-runner --property=DefaultDependencies=no \
		--property=Conflicts=shutdown.target --property=Before=shutdown.target \
		--property=After=systemd-resolved.service --property=StandardOutput=journal+console \
		--property=StandardError=journal --property=FailureAction=poweroff --property=CPUWeight=1000 \
		${env[@]+"${env[@]}"} -- /bin/bash "$SELF" --unit
}

# Stops and masks, for this boot (--runtime: under /run), those of
# PACKAGE_UNITS the image has. Called from the boothook, before
# timers.target can start them; stopping also ends one that runs already.
quiet_package_timers() {
	local units=() unit rest
	[ -d /run/systemd/system ] && have systemctl || return 0
	while read -r unit rest; do
		[ -n "$unit" ] && units+=("$unit")
	done < <(systemctl list-unit-files --no-legend -- "${PACKAGE_UNITS[@]}" 2>/dev/null)
	((${#units[@]})) || return 0
	systemctl stop -- "${units[@]}" 2>/dev/null
	systemctl mask --runtime --no-reload -- "${units[@]}" >/dev/null 2>&1
	log "stopped and masked for this machine's life: ${units[*]} (a job's package installs find no lock held)"
}

# Any exit that did not power off first (a bug, a signal: 128 + its number)
# powers off here.
on_exit() {
	local status=$?
	[ -e "$STATE_DIR/powering-off" ] && return
	log "ERROR: bootstrap exited unexpectedly with status $status"
	power_off "bootstrap exited unexpectedly"
}

# The boothook: every boot, in cloud-init's network stage. cloud-init waits
# for it (and, before 23.4, for everything holding its output), so it hands
# over at once and its background processes never keep its output open.
boothook() {
	if [ -e "$STATE_DIR/started" ]; then
		log "the bootstrap has started already during this boot"
		return 0
	fi
	read_instance_id
	if ! first_boot; then
		power_off "the machine booted again (instance $INSTANCE): a runner machine runs one job only"
		exit 0
	fi
	: >"$STATE_DIR/started"
	log "bootstrap started for runner $RUNNER_NAME (label $RUNNER_LABEL) on instance $INSTANCE"
	install_reboot_unit
	# Bad durations fall back to the defaults; an idle timeout of 0 means none.
	[[ $MAX_LIFETIME =~ ^[1-9][0-9]{0,8}$ ]] || MAX_LIFETIME=21600
	[[ $IDLE_TIMEOUT =~ ^[0-9]{1,9}$ ]] || IDLE_TIMEOUT=900
	write_watchdogs || fatal "could not write $STATE_DIR/watchdog.sh"
	spawn_watchdog max_lifetime
	((IDLE_TIMEOUT > 0)) && spawn_watchdog idle
	log "watchdogs armed: max lifetime ${MAX_LIFETIME}s, idle timeout ${IDLE_TIMEOUT}s (0: none)"
	spawn_watchdog spot
	read_user
	locate_runner
	printf 'RUNNER_PATH=%q\nOLD_RUNNER=%q\nOLD_VERSION=%q\nDOWNLOAD=%q\n' "$RUNNER_PATH" "$OLD_RUNNER" \
		"$OLD_VERSION" "$DOWNLOAD" >"$STATE_DIR/runner.state" || fatal "could not write $STATE_DIR/runner.state"
	# Held until the instance store is ready: the unit waits on it. Taken
	# after the long-lived processes started, so that none of them holds it.
	if [ -n "$INSTANCE_STORE" ] && have flock; then
		exec {STORE_LOCK}>"$STATE_DIR/store.lock" && flock -x "$STORE_LOCK"
	fi
	if hand_over; then
		log "the runner goes on in ec2-spot-runner.service"
		prepare_store
		release_store
		quiet_package_timers
		return 0
	fi
	prepare_store
	release_store
	runner_unit
}

# Lets the unit, which waits on STORE_LOCK, go on.
release_store() {
	[ -n "$STORE_LOCK" ] || return 0
	exec {STORE_LOCK}>&-
	STORE_LOCK=""
}

# The runner's unit: the runner user, the runner, the work folder, the
# pre-runner script, run.sh.
runner_unit() {
	# shellcheck source=/dev/null # written by the boothook, in root's own directory
	. "$STATE_DIR/runner.state" || fatal "the bootstrap left no $STATE_DIR/runner.state"
	if [ -n "$DOWNLOAD" ]; then
		download_runner &
		DOWNLOAD_PID=$!
	fi
	ensure_user
	if [ -n "$RUNNER_PATH" ]; then
		use_runner "$RUNNER_PATH"
	else
		place_download
	fi
	use_store_for_work
	ensure_icu
	run_pre_script
	store_data_roots
	# The pre-runner script may have installed libicu itself.
	if [ -n "$ICU_INVARIANT" ] && have_icu; then
		ICU_INVARIANT=""
		log "libicu is there after the pre-runner script: the runner runs with full globalization"
	fi
	start_runner
}

main() {
	mkdir -p -- "$STATE_DIR" && chmod 700 -- "$STATE_DIR"
	mkdir -p -- "${LOG_FILE%/*}"
	trap on_exit EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	case ${1:-} in
	--rebooted)
		power_off "the machine booted again: a runner machine runs one job only"
		exit 0
		;;
	--unit) runner_unit ;;
	*) boothook ;;
	esac
	trap - EXIT
}

main "$@"
