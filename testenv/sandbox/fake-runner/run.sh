#!/bin/bash
# Stand-in for actions/runner's run.sh in the sandbox tests. It records how it
# was started (argv, user, groups, working directory, environment, time),
# then does what /run/ec2sr-test/fake-runner.conf asks:
#   job=none     never takes a job (the idle watchdog should fire)
#   job=diag     takes a job: writes _diag/Worker_*.log, as the real worker does
#   job=process  takes a job: runs a process named Runner.Worker meanwhile
#   seconds=N    how long it runs (inf: until the machine goes down)
#   exit_code=N  its exit status
started="$(date +%s.%N)"
rec=/run/ec2sr-test/record
printf '%s\n' "$started" >"$rec/exec-time"
# printf would write one empty argument for none.
if [ "$#" -gt 0 ]; then printf '%s\0' "$@"; fi >"$rec/argv"
id -un >"$rec/user"
id -u >"$rec/uid"
id -nG >"$rec/groups"
pwd >"$rec/cwd"
env -0 >"$rec/env"
sed -n 's/^SigIgn:[[:space:]]*//p' /proc/self/status >"$rec/sigign"

job=diag
seconds=0.2
exit_code=0
# shellcheck source=/dev/null
[ -r /run/ec2sr-test/fake-runner.conf ] && . /run/ec2sr-test/fake-runner.conf

dir=$(cd "$(dirname "$0")" && pwd)
case "$job" in
diag)
	mkdir -p "$dir/_diag"
	: >"$dir/_diag/Worker_20261128-000000-utc.log"
	sleep "$seconds"
	;;
process)
	# comm of a copied binary is its file name, like the real worker's.
	cp /bin/sleep "$dir/bin/Runner.Worker"
	"$dir/bin/Runner.Worker" "$seconds"
	;;
*)
	sleep "$seconds"
	;;
esac
printf '%s\n' "$exit_code" >"$rec/exit-code"
exit "$exit_code"
