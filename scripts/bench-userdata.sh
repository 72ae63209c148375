#!/usr/bin/env bash
# Measures the user-data script from its start to the exec of run.sh, in the
# sandbox of testenv/sandbox (the real script, as root, in private mount and
# PID namespaces), for two ways of getting the runner:
#   preinstalled  a runner already in /opt/actions-runner (no download)
#   download      the runner archive fetched from 127.0.0.1, checksummed and
#                 extracted
# and prints the median and the 95th percentile (nearest rank) of each.
#
# Usage: scripts/bench-userdata.sh [-n RUNS] [-p PAD_MIB]
#   -n RUNS     runs per variant (default 20)
#   -p PAD_MIB  make the fake runner archive this many MiB bigger, with
#               incompressible bytes, to move a realistically sized download
#               (the real linux-x64 archive is about 230 MB); default 0
#
# Needs root, unshare (util-linux) and python3. Scripts are rendered with
# testenv/sandbox/render.py, which matches src/instance/userdata.rs byte for byte.
set -euo pipefail

runs=20
pad=0
while getopts 'n:p:h' opt; do
	case "$opt" in
	n) runs=$OPTARG ;;
	p) pad=$OPTARG ;;
	h)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) exit 2 ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ && $pad =~ ^[0-9]+$ ]] || {
	echo "bench-userdata: -n takes a positive number, -p a number of MiB" >&2
	exit 2
}
[ "$(id -u)" = 0 ] || {
	echo "bench-userdata: needs root (the sandbox unshares mount and PID namespaces)" >&2
	exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
harness=$root/testenv/sandbox/run.py
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-userdata.XXXXXX")
trap 'rm -rf "$work"' EXIT

# variant name, then the sandbox scenario that measures it
variants=("preinstalled preinstalled" "download job-runs")

for entry in "${variants[@]}"; do
	read -r name scenario <<<"$entry"
	dir=$work/$name
	python3 "$harness" settings --scenario "$scenario" --out "$dir" --pad-mb "$pad" >/dev/null
	for ((i = 1; i <= runs; i++)); do
		if ! python3 "$harness" --script "$dir/reference.sh" --scenario "$scenario" \
			--out "$dir/run-$i" --pad-mb "$pad" >"$dir/run-$i.json"; then
			echo "bench-userdata: $name run $i failed; see $dir/run-$i.json" >&2
			trap - EXIT
			exit 1
		fi
		printf '.' >&2
	done
	printf ' %s\n' "$name" >&2
done

python3 - "$work" "$runs" "$pad" <<'EOF'
import json, math, statistics, sys
from pathlib import Path

work, runs, pad = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"user-data start -> run.sh exec, {runs} runs each"
      + (f", runner archive padded by {pad} MiB" if pad else ""))
print(f"{'variant':<14}{'median':>10}{'p95':>10}{'min':>10}{'max':>10}")
for name in ("preinstalled", "download"):
    times = sorted(json.loads((work / name / f"run-{i}.json").read_text())["elapsed_to_exec"]
                   for i in range(1, runs + 1))
    p95 = times[math.ceil(0.95 * len(times)) - 1]
    cells = [statistics.median(times), p95, times[0], times[-1]]
    print(f"{name:<14}" + "".join(f"{t * 1000:>8.0f}ms" for t in cells))
EOF
