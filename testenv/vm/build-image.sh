#!/usr/bin/env bash
# Builds the boot-test image: a small Debian bookworm with systemd, the
# distribution's kernel and cloud-init, from Debian's package registry only.
# Prints the image directory on its last line of output.
#
#     testenv/vm/build-image.sh            # build unless cached
#     EC2SR_VM_CACHE=DIR testenv/vm/build-image.sh
#     EC2SR_IMAGE_FLAVOR=stock testenv/vm/build-image.sh   # close to a stock cloud image
#
# Two flavors: "trimmed" (the default, for the tests: no getty, no timers
# but the apt-daily stand-in, cloud-init with only the modules the runner
# needs) and "stock" (for the benchmark: Debian's own cloud.cfg with all its
# modules, OpenSSH and its host keys, getty, the distribution's timers and
# unattended-upgrades, as on Debian's cloud images). Both carry the test
# hooks, the fake runner and the stand-ins.
#
# The image is cached under ~/.cache/ec2-spot-runner/vm/image-HASH, where
# HASH covers the recipe: this script and every file under testenv/vm/image/.
# A cached image is used as is; a changed recipe builds a new one (and the
# old ones are removed). Needs root (debootstrap, chroot); installs
# debootstrap, qemu-utils and openssl with apt-get when they are missing.
#
# The directory holds:
#   disk.qcow2     the root file system (ext4 on the whole disk, /dev/vda):
#                  the tests boot throw-away overlays of it, never it
#   vmlinuz, initrd.img   the image's own kernel and initrd, for -kernel/-initrd
#   ca.pem         a test CA the image trusts (in its ca-certificates)
#   github.pem, github.key   a certificate for github.com from that CA, for
#                  the download stand-in (the image maps github.com to the
#                  address the tests forward to 127.0.0.1; see README.md)
#   packages.txt   what got installed, with versions
#   recipe.sha256  the recipe hash
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${EC2SR_VM_CACHE:-$HOME/.cache/ec2-spot-runner/vm}
suite=bookworm
mirror=http://deb.debian.org/debian

# What goes into the image beyond debootstrap's minbase, installed with apt
# in the new root (without recommends). cloud-init brings python3,
# isc-dhcp-client (its EC2 datasource takes a DHCP lease in the local stage)
# and iproute2; systemd-networkd (part of systemd) applies the network
# configuration cloud-init renders. libicu72 is the runner's .NET
# dependency, which images with a runner carry (a scenario removes it);
# mdadm builds the RAID 0 across instance-store disks, as on Ubuntu's images.
packages=(systemd systemd-sysv udev linux-image-amd64 initramfs-tools kmod cloud-init
	isc-dhcp-client iproute2 netbase curl ca-certificates sudo procps e2fsprogs tar gzip zstd libicu72 mdadm)

flavor=${EC2SR_IMAGE_FLAVOR:-trimmed}
case $flavor in
trimmed) prefix=image ;;
stock)
	prefix=image-stock
	packages+=(openssh-server unattended-upgrades systemd-timesyncd)
	;;
trixie)
	# Debian 13: cloud-init 25.x, which runs every stage in one process
	# (cloud-init-main.service) and no longer holds a boothook's output.
	# D-Bus too: its `cloud-init status --wait` asks systemctl, which a user
	# other than root reaches through the bus only (every real image has it).
	prefix=image-trixie suite=trixie
	packages=("${packages[@]/libicu72/libicu76}" dbus)
	;;
*)
	echo "build-image.sh: EC2SR_IMAGE_FLAVOR is trimmed, stock or trixie, not $flavor" >&2
	exit 2
	;;
esac
recipe=$( (
	echo "$flavor"
	cat "$0"
	cd "$here/image" && find . -type f ! -path '*/__pycache__/*' | LC_ALL=C sort | while read -r f; do
		printf '%s\n' "$f"
		stat -c '%a' "$f"
		cat "$f"
	done
) | sha256sum | cut -c1-16)
out=$cache/$prefix-$recipe
if [ -f "$out/done" ]; then
	echo "build-image.sh: cached image $out" >&2
	echo "$out"
	exit 0
fi

[ "$(id -u)" = 0 ] || {
	echo "build-image.sh: needs root (debootstrap, chroot)" >&2
	exit 2
}
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v openssl >/dev/null || missing+=(openssl)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
if ((${#missing[@]})); then
	echo "build-image.sh: installing ${missing[*]}" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

# Downloaded packages, kept per suite (two builds may run side by side).
debs=$cache/debs
[ "$suite" = bookworm ] || debs=$cache/debs-$suite
mkdir -p "$debs/partial"
work=$(mktemp -d "$cache/.build.XXXXXX")
root=$work/root
cleanup() {
	for m in "$root/var/cache/apt/archives" "$root/proc" "$root/sys" "$root/dev"; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m"
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
started=$(date +%s)

echo "build-image.sh: debootstrap $suite, then ${packages[*]}" >&2
debootstrap --variant=minbase --cache-dir="$debs" \
	"$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -n 30 "$work/debootstrap.log" "$root/debootstrap/debootstrap.log" >&2
	exit 1
}

in_root() {
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mkdir -p "$root/var/cache/apt/archives"
mount --bind "$debs" "$root/var/cache/apt/archives"
# Nothing starts in the build root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
{
	in_root apt-get update -qq &&
		in_root apt-get install -y -qq --no-install-recommends "${packages[@]}"
} >"$work/apt.log" 2>&1 || {
	tail -n 30 "$work/apt.log" >&2
	exit 1
}
rm -f "$root/usr/sbin/policy-rc.d"

# The disk is the whole virtio disk, no partition table.
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
printf 'localhost\n' >"$root/etc/hostname"
# github.com is the download stand-in's forwarded address (boot_tests.py
# DOWNLOAD_ADDR); nothing else resolves, the guest has no DNS.
printf '127.0.0.1 localhost\n169.254.170.2 github.com\n' >"$root/etc/hosts"

if [ "$flavor" = trimmed ]; then
	install -D -m 644 "$here/image/cloud.cfg" "$root/etc/cloud/cloud.cfg.d/99-ec2sr-boot-test.cfg"
else
	# Only the datasource settings: Debian's module lists stay.
	sed -n '/^datasource_list:/,/^    max_wait:/p' "$here/image/cloud.cfg" >"$root/etc/cloud/cloud.cfg.d/99-ec2sr-boot-test.cfg"
fi
install -D -m 755 "$here/image/hooks.sh" "$root/usr/local/lib/ec2sr-test/hooks.sh"
install -D -m 644 "$here/image/jobs/probe.py" "$root/usr/local/lib/ec2sr-test/jobs/probe.py"
install -D -m 644 "$here/image/ec2sr-test-hooks.service" "$root/etc/systemd/system/ec2sr-test-hooks.service"
# Docker stand-ins, enabled, that start only where ec2sr.docker=fake made
# /var/lib/docker (ConditionPathIsDirectory).
install -D -m 644 "$here/image/fake-docker.service" "$root/etc/systemd/system/docker.service"
install -D -m 644 "$here/image/fake-docker.socket" "$root/etc/systemd/system/docker.socket"
install -D -m 644 "$here/image/fake-containerd.service" "$root/etc/systemd/system/containerd.service"
ln -sf ../containerd.service "$root/etc/systemd/system/multi-user.target.wants/containerd.service"
# The image's own package timer, as on every Debian and Ubuntu image: a
# stand-in of apt-daily that fires at boot and holds the dpkg lock (the
# real one would fail at once here, the guest having no DNS). The stock
# flavor keeps the real ones.
if [ "$flavor" = trimmed ]; then
	install -D -m 644 "$here/image/apt-daily.service" "$root/etc/systemd/system/apt-daily.service"
	install -D -m 644 "$here/image/apt-daily.timer" "$root/etc/systemd/system/apt-daily.timer"
	mkdir -p "$root/etc/systemd/system/timers.target.wants"
	ln -sf ../apt-daily.timer "$root/etc/systemd/system/timers.target.wants/apt-daily.timer"
fi
# The image's environment, the way images built like GitHub's keep it.
install -m 644 "$here/image/environment" "$root/etc/environment"
# A package for a job to install (apt-get install ./FILE.deb works offline).
deb=$work/deb
mkdir -p "$deb/DEBIAN" "$deb/usr/bin"
printf 'Package: ec2sr-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: boot tests <none@example.invalid>\nDescription: a package a job installs in the boot tests\n' >"$deb/DEBIAN/control"
printf '#!/bin/sh\necho hello from a package\n' >"$deb/usr/bin/ec2sr-hello"
chmod 755 "$deb/usr/bin/ec2sr-hello"
dpkg-deb --root-owner-group --build "$deb" "$root/usr/local/lib/ec2sr-test/ec2sr-hello_1.0_all.deb" >/dev/null
mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/sockets.target.wants"
ln -sf ../docker.service "$root/etc/systemd/system/multi-user.target.wants/docker.service"
ln -sf ../docker.socket "$root/etc/systemd/system/sockets.target.wants/docker.socket"
# The pre-installed runner, root-owned as an image would ship it.
mkdir -p "$root/opt"
cp -r "$here/image/fake-runner" "$root/opt/actions-runner"
chown -R 0:0 "$root/opt/actions-runner"
# (with what the image keeps in its work folder: a tool in _work/_tool)
chmod -R go-w "$root/opt/actions-runner"

# A test CA the guest trusts, and github.com's certificate from it.
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ec2-spot-runner boot-test CA" \
	-keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=github.com" \
	-keyout "$work/github.key" -out "$work/github.csr" 2>/dev/null
printf 'subjectAltName=DNS:github.com\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/github.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
	-days 3650 -extfile "$work/ext.cnf" -out "$work/github.pem" 2>/dev/null
install -D -m 644 "$work/ca.pem" "$root/usr/local/share/ca-certificates/ec2sr-boot-test-ca.crt"
in_root update-ca-certificates >/dev/null 2>&1

# Trim: no login prompts, no timers, no hotplug daemon; networkd on (it
# applies the configuration cloud-init writes for the EC2 network metadata).
in_root systemctl enable systemd-networkd.service ec2sr-test-hooks.service >/dev/null 2>&1
[ "$flavor" = stock ] || for unit in getty@tty1.service serial-getty@ttyS0.service getty.target \
	apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer \
	cloud-init-hotplugd.socket systemd-pstore.service mdmonitor.service mdmonitor-oneshot.timer \
	mdcheck_start.timer mdcheck_continue.timer; do
	in_root systemctl mask "$unit" >/dev/null 2>&1 || true
done
# A small initrd (unpacked under emulation at every boot): virtio and ext4.
printf 'MODULES=list\nCOMPRESS=zstd\n' >"$root/etc/initramfs-tools/conf.d/ec2sr-boot-test.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >>"$root/etc/initramfs-tools/modules"
in_root update-initramfs -u -k all >"$work/initramfs.log" 2>&1 || {
	tail -n 20 "$work/initramfs.log" >&2
	exit 1
}
# shellcheck disable=SC2016 # dpkg-query's format, not shell
in_root dpkg-query -W -f '${Package} ${Version}\n' >"$work/packages.txt"
umount -l "$root/var/cache/apt/archives" "$root/dev" "$root/sys" "$root/proc"
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
	"$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*
# A machine-id is made at first boot, as on an AMI.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

cp -L "$root/vmlinuz" "$work/vmlinuz"
cp -L "$root/initrd.img" "$work/initrd.img"
size_mb=$(($(du -sm "$root" | cut -f1) * 13 / 10 + 1024))
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw" "${size_mb}M" >&2
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -f "$work/disk.raw"
echo "$recipe" >"$work/recipe.sha256"

final=$work/final
mkdir "$final"
mv "$work"/{disk.qcow2,vmlinuz,initrd.img,ca.pem,github.pem,github.key,packages.txt,recipe.sha256} "$final/"
: >"$final/done"
rm -rf "$out"
mv "$final" "$out"
for old in "$cache/$prefix"-*; do
	[ "$prefix" = image ] && [[ $old == */image-stock-* || $old == */image-trixie-* ]] && continue
	[ "$old" = "$out" ] || rm -rf "$old"
done
echo "build-image.sh: built $out in $(($(date +%s) - started)) s" >&2
echo "$out"
