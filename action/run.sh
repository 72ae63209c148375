#!/usr/bin/env bash
# Runs the installed ec2-spot-runner in the mode the action's `mode` input
# names. Every other input is already in the environment as INPUT_<NAME>,
# where the binary reads it; nothing is passed on a command line.
#
#   EC2SR_BIN     the executable install.sh chose
#   INPUT_MODE    start, stop, cleanup, rerun or bake
set -euo pipefail

fail() {
    local message=${1//%/%25}
    message=${message//$'\r'/%0D}
    message=${message//$'\n'/%0A}
    printf '::error title=ec2-spot-runner::%s\n' "$message"
    exit 2
}

mode=${INPUT_MODE:-}
case "$mode" in
    start | stop | cleanup | rerun | bake) ;;
    "") fail "input \`mode\` is missing; set it to start, stop, cleanup, rerun or bake" ;;
    *) fail "input \`mode\`: '$mode' is not a mode; use start, stop, cleanup, rerun or bake" ;;
esac

if [[ -z "${EC2SR_BIN:-}" || ! -x "${EC2SR_BIN}" ]]; then
    printf '::error title=ec2-spot-runner::the install step did not provide an executable (EC2SR_BIN=%s)\n' "${EC2SR_BIN:-}"
    exit 1
fi

# The API of a GitHub Enterprise Server, when the input overrides the runner's.
if [[ -n "${INPUT_GITHUB_API_URL:-}" ]]; then
    export GITHUB_API_URL="$INPUT_GITHUB_API_URL"
fi
unset INPUT_GITHUB_API_URL

exec "$EC2SR_BIN" "$mode"
