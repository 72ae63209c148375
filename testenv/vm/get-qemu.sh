#!/usr/bin/env bash
# Puts Debian bookworm's qemu-system-x86 (7.2) into a cache folder, without
# installing it: `apt-get install qemu-system-x86` would also swap this
# machine's qemu-utils for 7.2's. The packages are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`; the libraries the
# machine lacks come along the same way. Prints the folder on its last line;
# run QEMU as
#   LD_LIBRARY_PATH=DIR/root/usr/lib/x86_64-linux-gnu:DIR/root/lib/x86_64-linux-gnu \
#   DIR/root/usr/bin/qemu-system-x86_64 -L DIR/root/usr/share/qemu -L DIR/root/usr/share/seabios ...
set -euo pipefail
dir=${EC2SR_QEMU_CACHE:-$HOME/.cache/ec2-spot-runner/qemu}
# qemu-system-x86 and what it needs that a plain Debian machine may lack.
packages=(qemu-system-x86 qemu-system-common qemu-system-data seabios
	libcapstone4 libfdt1 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2
	libndctl6 libdaxctl1 libnl-3-200 libnl-route-3-200)
key=$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-12)
qemu=$dir/root/usr/bin/qemu-system-x86_64
libs=$dir/root/usr/lib/x86_64-linux-gnu:$dir/root/lib/x86_64-linux-gnu
if [ -x "$qemu" ] && [ "$(cat "$dir/packages.key" 2>/dev/null)" = "$key" ] &&
	LD_LIBRARY_PATH=$libs "$qemu" --version >/dev/null 2>&1; then
	echo "$dir"
	exit 0
fi
mkdir -p "$dir"
rm -rf "$dir/debs" "$dir/root"
mkdir -p "$dir/debs" "$dir/root"
apt-get update -qq >&2 || true
# apt-get download writes into the current directory; as root it warns that
# the _apt user cannot write there, which is harmless.
(cd "$dir/debs" && apt-get download "${packages[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
for deb in "$dir"/debs/*.deb; do
	dpkg-deb -x "$deb" "$dir/root"
done
missing=$(LD_LIBRARY_PATH=$libs ldd "$qemu" | grep 'not found' || true)
if [ -n "$missing" ]; then
	echo "get-qemu.sh: libraries still missing:" >&2
	echo "$missing" >&2
	exit 1
fi
LD_LIBRARY_PATH=$libs "$qemu" --version | head -n 1 >&2
echo "$key" >"$dir/packages.key"
echo "$dir"
