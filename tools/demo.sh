#!/bin/sh
# make demo: a real context from the built-in busybox template, looked at from inside.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
        echo "vserver: demo: run as root (contexts need namespaces and cgroups)" >&2
        exit 1
fi
root=build/demo-rootfs
[ -x "$root/bin/busybox" ] || tools/mkrootfs.sh "$root"
# keep the demo's cgroup below our own, and take it away afterwards
export VSERVER_CGROUP_PARENT=vserver-demo
cleanup() {
        find /sys/fs/cgroup -maxdepth 6 -type d -name vserver-demo 2>/dev/null |
                while read -r d; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "+ vserver run --hostname demo.example.org --rootfs $root -- /bin/sh -c '...; exit 7'"
rc=0
./build/vserver run --hostname demo.example.org --rootfs "$root" -- /bin/sh -c '
echo "inside:  PID $$, hostname $(hostname), up $(cut -d" " -f1 /proc/uptime) s"
echo "inside:  processes: $(ls -d /proc/[0-9]* | wc -l), interfaces: $(ls /sys/class/net)"
grep -E "^(CapBnd|NoNewPrivs|Seccomp):" /proc/self/status | sed "s/^/inside:  /"
mount -t tmpfs none /mnt 2>&1 | sed "s/^/inside:  /"
exit 7' || rc=$?
echo "outside: exit code $rc; host uptime $(cut -d' ' -f1 /proc/uptime) s; $(ls /sys/class/net | wc -l) interfaces"
