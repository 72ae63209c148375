#!/bin/sh
# Test-only early-boot hook of the boot-test image (ec2sr-test-hooks.service,
# before cloud-init): reads ec2sr.* switches from the kernel command line,
# which the harness sets per scenario.
#   ec2sr.runner=none   remove the pre-installed runner in /opt/actions-runner,
#                       so the bootstrap downloads one
#   ec2sr.runner=old    make the pre-installed runner an old release (2.300.0),
#                       with a .env of the image's own
#   ec2sr.libicu=none   remove libicu, as on Amazon Linux 2023 images
#   ec2sr.docker=fake   a Docker 29 install with the containerd image store:
#                       its data root, containerd's root, its group, and the
#                       docker service and socket and containerd's service
#                       (stand-ins that only write to their roots and wait)
# shellcheck disable=SC2013 # words, not lines: the kernel command line
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	ec2sr.runner=none)
		rm -rf /opt/actions-runner
		echo "ec2sr-test: no pre-installed runner on this boot" >/dev/console
		;;
	ec2sr.runner=old)
		sed -i 's#"Runner.Listener/[0-9.]*"#"Runner.Listener/2.300.0"#g' /opt/actions-runner/bin/Runner.Listener.deps.json
		printf 'LANG=C.UTF-8\nIMAGE_SETTING=kept\n' >/opt/actions-runner/.env
		echo "ec2sr-test: the pre-installed runner is 2.300.0 on this boot" >/dev/console
		;;
	ec2sr.docker=fake)
		mkdir -p /var/lib/docker /var/lib/containerd
		chmod 710 /var/lib/docker
		chmod 711 /var/lib/containerd
		groupadd --system docker
		echo "ec2sr-test: Docker 29 (a stand-in: dockerd and containerd) is installed on this boot" >/dev/console
		;;
	ec2sr.libicu=none)
		rm -f /usr/lib/x86_64-linux-gnu/libicu*.so.* /usr/lib/aarch64-linux-gnu/libicu*.so.*
		echo "ec2sr-test: no libicu on this boot" >/dev/console
		;;
	esac
done
exit 0
