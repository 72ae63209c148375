#!/bin/sh
# Test-only early-boot hook of the boot-test image (ec2sr-test-hooks.service,
# before cloud-init): reads ec2sr.* switches from the kernel command line,
# which the harness sets per scenario.
#   ec2sr.runner=none   remove the pre-installed runner in /opt/actions-runner,
#                       so the bootstrap downloads one
# shellcheck disable=SC2013 # words, not lines: the kernel command line
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	ec2sr.runner=none)
		rm -rf /opt/actions-runner
		echo "ec2sr-test: no pre-installed runner on this boot" >/dev/console
		;;
	esac
done
exit 0
