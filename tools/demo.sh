#!/bin/sh
# make demo: a real guest from the built-in busybox template: build, start,
# look inside and outside, stop, delete.  Kept apart from any real installation.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
        echo "vserver: demo: run as root (guests need namespaces and cgroups)" >&2
        exit 1
fi
VSERVER_ROOT=$(mktemp -d /var/tmp/vserver-demo.XXXXXX)
export VSERVER_ROOT
# keep the demo's cgroups below our own, and take them away afterwards
export VSERVER_CGROUP_PARENT=vserver-demo
vs=./build/vserver
cleanup() {
        $vs delete --force demo >/dev/null 2>&1 || true
        rm -rf "$VSERVER_ROOT"
        find /sys/fs/cgroup -maxdepth 6 -type d -name vserver-demo 2>/dev/null |
                while read -r d; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
run() { echo "+ vserver $*"; $vs "$@"; }

run build demo --hostname demo.example.org --memory 128M
run start demo
run exec demo -- /bin/sh -c '
echo "inside:  PID 1 is $(cat /proc/1/comm), hostname $(hostname), up $(cut -d" " -f1 /proc/uptime) s"
echo "inside:  processes: $(ps -o comm | tail -n +2 | tr "\n" " ")"
echo "inside:  interfaces: $(ls /sys/class/net)"
grep -E "^(CapBnd|NoNewPrivs|Seccomp):" /proc/self/status | sed "s/^/inside:  /"
echo "inside:  root is uid $(id -u); uid_map: $(cat /proc/self/uid_map | tr -s " ")"
mount -t tmpfs none /mnt && echo "inside:  mounted a tmpfs on /mnt (in its own mount namespace)"
exit 7' || echo "outside: exec passed its exit code back: $?"
init=$($vs status demo --json | sed -n 's/.*"init_pid": *\([0-9]*\).*/\1/p')
echo "outside: its PID 1 is host pid $init, running as host uid $(ps -o uid= -p "$init" | tr -d " ")"
grep -q " /mnt " /proc/self/mountinfo || echo "outside: no /mnt mount on the host"
run list
run ps -eo pid,comm | grep -E "CONTEXT| demo" || true
run status demo
echo "+ cat $VSERVER_ROOT/var/log/vserver/demo.log"
cat "$VSERVER_ROOT/var/log/vserver/demo.log"
run stop demo
run status demo || echo "outside: status exits $? for a stopped guest"
