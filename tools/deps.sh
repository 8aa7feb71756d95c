#!/bin/sh
# Install the Debian packages vserver builds, tests and demos with, when missing.
set -eu
pkgs="build-essential pkg-config libseccomp-dev libcap-dev libmnl-dev libjson-c-dev \
libinih-dev libfuse3-dev libarchive-dev libxxhash-dev libbpf-dev libnftables-dev clang libclang-rt-14-dev bpftool libcmocka-dev python3 python3-pytest \
busybox-static debootstrap procps scdoc iproute2 nftables util-linux btrfs-progs time jdupes rdfind duperemove hyperfine crun runc bubblewrap \
lxc systemd-container gnuplot-nox e2fsprogs xfsprogs qemu-system-x86 kmod cpio \
podman conmon containerd"
missing=""
for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
        echo "vserver: missing packages:$missing (run as root, or: apt-get install$missing)" >&2
        exit 1
fi
echo "== installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
