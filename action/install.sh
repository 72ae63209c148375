#!/usr/bin/env bash
# Picks the ec2-spot-runner executable the action runs and hands its path to
# the next step as the step output `path`.
#
#   1. `binary-path` given: that file, which must be executable.
#   2. dist/checksums.txt lists this version and platform: the release binary,
#      from the tool cache when a copy there still has the listed SHA-256,
#      else downloaded over https and checked against that SHA-256.
#   3. Otherwise (the action is used from a branch or a commit, not from a
#      release): built from source with cargo.
#
# Inputs arrive as environment variables only:
#   INPUT_BINARY_PATH, INPUT_DOWNLOAD_BASE_URL   the action's inputs
#   EC2SR_ACTION_REPOSITORY                      github.action_repository
# and the runner's own: GITHUB_ACTION_PATH, RUNNER_OS, RUNNER_ARCH,
# RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_SERVER_URL, GITHUB_OUTPUT.
#
# Written for bash 3.2 too (the /bin/bash of macOS).
set -euo pipefail

readonly tool=ec2-spot-runner

# Escapes a message for a workflow command, so it stays on one line.
escape() {
    local s=${1//%/%25}
    s=${s//$'\r'/%0D}
    s=${s//$'\n'/%0A}
    printf '%s' "$s"
}

fail() {
    printf '::error title=ec2-spot-runner::%s\n' "$(escape "$1")"
    exit 1
}

notice() {
    printf '::notice title=ec2-spot-runner::%s\n' "$(escape "$1")"
}

# Milliseconds since the epoch (whole seconds where neither bash 5 nor GNU date can do better).
now_ms() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        local us=${EPOCHREALTIME/[.,]/}
        printf '%s' "$((10#$us / 1000))"
    else
        local ns
        ns=$(date +%s%N 2>/dev/null || true)
        if [[ "$ns" =~ ^[0-9]+$ ]]; then
            printf '%s' "$((ns / 1000000))"
        else
            printf '%s' "$(($(date +%s) * 1000))"
        fi
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    else
        shasum -a 256 "$1" | cut -d ' ' -f 1
    fi
}

# Hands the chosen executable to the run step.
emit() {
    local bin=$1
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
        printf 'path=%s\n' "$bin" >>"$GITHUB_OUTPUT"
    else
        printf 'path=%s\n' "$bin"
    fi
}

action_dir=${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# --- 1. an executable the workflow provides
if [[ -n "${INPUT_BINARY_PATH:-}" ]]; then
    bin=$INPUT_BINARY_PATH
    if [[ "$bin" == *$'\n'* || ! -f "$bin" || ! -x "$bin" ]]; then
        fail "input \`binary-path\`: '$bin' is not an executable file; give the path of an ec2-spot-runner binary, or leave binary-path empty to use the released one"
    fi
    if [[ "$bin" != /* ]]; then
        bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
    fi
    echo "Using $bin (input binary-path)"
    emit "$bin"
    exit 0
fi

# --- which release asset fits this runner
os=${RUNNER_OS:-}
arch=${RUNNER_ARCH:-}
if [[ -z "$os" ]]; then
    case "$(uname -s)" in
        Linux) os=Linux ;;
        Darwin) os=macOS ;;
        *) os=$(uname -s) ;;
    esac
fi
if [[ -z "$arch" ]]; then
    case "$(uname -m)" in
        x86_64 | amd64) arch=X64 ;;
        aarch64 | arm64) arch=ARM64 ;;
        *) arch=$(uname -m) ;;
    esac
fi
case "$os/$arch" in
    Linux/X64) target=x86_64-unknown-linux-musl ;;
    Linux/ARM64) target=aarch64-unknown-linux-musl ;;
    macOS/X64) target=x86_64-apple-darwin ;;
    macOS/ARM64) target=aarch64-apple-darwin ;;
    Windows/*) fail "Windows runners are not supported; run the start, stop and cleanup steps on a Linux or macOS runner (e.g. ubuntu-latest)" ;;
    *) fail "no ec2-spot-runner build for $os on $arch; supported are Linux and macOS on X64 and ARM64 (or pass binary-path)" ;;
esac

version=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && $1 == "version" && $2 == "=" { gsub(/"/, "", $3); print $3; exit }
' "$action_dir/Cargo.toml" 2>/dev/null || true)
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; then
    fail "cannot read the version of the action from $action_dir/Cargo.toml"
fi
asset="v$version/$tool-$target"

expected=""
if [[ -f "$action_dir/dist/checksums.txt" ]]; then
    expected=$(awk -v want="$asset" '$1 !~ /^#/ && $2 == want { print tolower($1); exit }' "$action_dir/dist/checksums.txt")
fi

# --- 3. no release of this version: build it
if [[ -z "$expected" ]]; then
    notice "no released binary of v$version for $target is listed in dist/checksums.txt (the action is used from a branch or commit, not a release); building it from source with cargo"
    if ! command -v cargo >/dev/null 2>&1; then
        fail "building ec2-spot-runner from source needs a Rust toolchain, but cargo is not on PATH; install Rust before this step (e.g. rustup), use a released version of the action, or pass binary-path"
    fi
    target_dir=${CARGO_TARGET_DIR:-$action_dir/target}
    started=$(now_ms)
    if ! (cd "$action_dir" && cargo build --release --locked --target-dir "$target_dir" >&2); then
        fail "cargo build --release --locked failed in $action_dir (see the log above)"
    fi
    bin="$target_dir/release/$tool"
    [[ -x "$bin" ]] || fail "cargo build succeeded but $bin is missing"
    echo "Built $bin from source in $(($(now_ms) - started)) ms"
    emit "$bin"
    exit 0
fi

if [[ ! "$expected" =~ ^[0-9a-f]{64}$ ]]; then
    fail "dist/checksums.txt has a malformed SHA-256 for $asset: '$expected'"
fi

# --- 2. the release binary, verified
cache_root=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}
cache_dir="$cache_root/$tool/$version/$target"
bin="$cache_dir/$tool"

if [[ -f "$bin" ]]; then
    started=$(now_ms)
    actual=$(sha256_of "$bin")
    if [[ "$actual" == "$expected" && -x "$bin" ]]; then
        echo "Using cached $bin (v$version, $target; SHA-256 verified in $(($(now_ms) - started)) ms)"
        emit "$bin"
        exit 0
    fi
    echo "Cached $bin does not match dist/checksums.txt; downloading it again"
    rm -f "$bin"
fi

base=${INPUT_DOWNLOAD_BASE_URL:-}
if [[ -z "$base" ]]; then
    repo=${EC2SR_ACTION_REPOSITORY:-}
    if [[ -z "$repo" && "$action_dir" == */_actions/*/*/* ]]; then
        # A remote action is checked out at …/_actions/OWNER/REPO/REF.
        rest=${action_dir##*/_actions/}
        owner=${rest%%/*}
        rest=${rest#*/}
        repo="$owner/${rest%%/*}"
    fi
    # `uses: ./` in the action's own repository.
    repo=${repo:-${GITHUB_REPOSITORY:-}}
    [[ -n "$repo" ]] || fail "cannot tell which repository this action comes from; set download-base-url"
    base="${GITHUB_SERVER_URL:-https://github.com}/$repo/releases/download"
fi
base=${base%/}
if [[ "$base" != https://* ]]; then
    fail "input \`download-base-url\`: '$base' is not an https URL; binaries are only downloaded over https"
fi
url="$base/$asset"

mkdir -p "$cache_dir"
partial="$cache_dir/.$tool.download.$$"
trap 'rm -f "$partial"' EXIT
# The runner cancels a step with SIGINT (then SIGTERM) to this process only:
# stop the download and leave nothing half-written in the tool cache.
curl_pid=""
cancelled() {
    [[ -n "$curl_pid" ]] && kill "$curl_pid" 2>/dev/null
    rm -f "$partial"
    printf '::warning title=ec2-spot-runner::%s\n' "$(escape "install cancelled by $1; nothing was installed")"
    exit "$2"
}
trap 'cancelled SIGINT 130' INT
trap 'cancelled SIGTERM 143' TERM

echo "Downloading $url"
started=$(now_ms)
# In the background, so that a signal is handled at once rather than after
# the download (bash runs a trap only when the foreground command ends).
curl --proto '=https' --tlsv1.2 -fsSL --retry 3 --retry-all-errors -o "$partial" "$url" &
curl_pid=$!
if ! wait "$curl_pid"; then
    fail "download of $url failed; check download-base-url and that release v$version has the asset $tool-$target"
fi
curl_pid=""
downloaded=$(now_ms)
actual=$(sha256_of "$partial")
verified=$(now_ms)
if [[ "$actual" != "$expected" ]]; then
    rm -f "$partial"
    fail "SHA-256 mismatch for $url: expected $expected (dist/checksums.txt), got $actual; the file was deleted and is not run"
fi
chmod 0755 "$partial"
mv -f "$partial" "$bin"
trap - EXIT
size=$(wc -c <"$bin" | tr -d ' ')
echo "Downloaded $size bytes in $((downloaded - started)) ms, SHA-256 verified in $((verified - downloaded)) ms: $bin"
emit "$bin"
