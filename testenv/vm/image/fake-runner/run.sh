#!/bin/bash
# Stand-in for actions/runner's run.sh in the boot tests (testenv/vm), baked
# into the image at /opt/actions-runner. Shaped like the real one (run.sh
# copies run-helper.sh.template to run-helper.sh and runs it; that runs
# bin/Runner.Listener, which starts bin/Runner.Worker for a job), so the
# process tree a job sees is the real runner's. It reports how it was started
# on stdout (the console, through the bootstrap's unit), never the JIT config
# itself: its SHA-256.
# First, with builtins only: the moment of exec, for the boot timeline.
echo "ec2sr-fake-runner: run.sh exec"
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sum=none
if [ -n "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" ]; then
	sum=$(printf '%s' "$ACTIONS_RUNNER_INPUT_JITCONFIG" | sha256sum)
	sum=${sum%% *}
fi
argsums=""
for a in "$@"; do
	s=$(printf '%s' "$a" | sha256sum)
	argsums+="${s:0:12},"
done
echo "ec2sr-fake-runner: run.sh started at $(date +%s.%N) user=$(id -un) uid=$(id -u) groups=$(id -nG | tr ' ' ,) cwd=$PWD argc=$# argv_sha256_12=${argsums%,} jit_env_sha256=$sum"
echo "ec2sr-fake-runner: environment names: $(env -0 | tr '\0\n' '\n ' | cut -d= -f1 | sort | tr '\n' ' ')"
cp -f "$DIR/run-helper.sh.template" "$DIR/run-helper.sh"
"$DIR/run-helper.sh" "$@"
code=$?
echo "ec2sr-fake-runner: run.sh exits with $code"
exit "$code"
