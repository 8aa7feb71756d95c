#!/bin/bash
# How close the limits come to what they promise, on this machine:
#   the token bucket (fill-rate 1 / interval 4, hard) against a CPU hog,
#   and weights 100:300 on one pinned CPU; plus what `vserver stats` and
#   `vserver set` cost.  (The kernel mechanism is CFS for any runtime; what
#   is ours is the mapping from VServer's terms, so no peer runs here.)
# No assertions: figures go to bench/results/limits.{md,json}.
#   bench/limits.sh [--quick|--smoke]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=10 out=bench/results
case "${1:-}" in
--quick) secs=3 ;;
--smoke) secs=1 out=${VS_BENCH_OUT:-$(mktemp -d)} ;;
esac
v=$PWD/build/vserver
work=$(mktemp -d /tmp/vs-bench-limits.XXXXXX)
export VSERVER_ROOT=$work/inst VSERVER_CGROUP_PARENT=vs-bench-limits
cleanup() {
        $v stop --all --timeout 0 >/dev/null 2>&1 || true
        for g in tb wa wb; do $v delete "$g" >/dev/null 2>&1 || true; done
        rm -rf "$work"
        find /sys/fs/cgroup -maxdepth 6 -type d -name vs-bench-limits 2>/dev/null |
                while read -r d; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
gcc -static -O2 -o "$work/hog" tests/integration/helpers/hog.c
mkdir -p "$out"

guest() {  # NAME OPTIONS...: a started guest with the hog running in it
        local name=$1; shift
        $v build "$name" --init none "$@" >/dev/null 2>&1
        cp "$work/hog" "$VSERVER_ROOT/var/lib/vserver/guests/$name/rootfs/bin/vs-hog"
        $v start "$name"
        $v exec "$name" -- /bin/sh -c '/bin/vs-hog cpu 0 >/dev/null 2>&1 &'
}
usage() { $v stats "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cpu_usage_us"])'; }

guest tb --set limits.cpu.fill-rate=1 --set limits.cpu.interval=4 --set limits.cpu.hard=yes
guest wa --cpuset 0 --cpu-weight 100
guest wb --cpuset 0 --cpu-weight 300
sleep 0.5
t0=$(date +%s.%N); tb0=$(usage tb); wa0=$(usage wa); wb0=$(usage wb)
sleep "$secs"
t1=$(date +%s.%N); tb1=$(usage tb); wa1=$(usage wa); wb1=$(usage wb)

# what reading stats and changing a limit cost
hyperfine -N -w 3 -r 30 --export-json "$work/cost.json" \
  -n "vserver stats (one guest, --json)" "$v stats tb --json" \
  -n "vserver set limits.memory (live)" "$v set tb limits.memory=512M" >/dev/null
$v stop --all --timeout 0 >/dev/null

python3 - "$work/cost.json" "$out" "$secs" "$t0" "$t1" "$tb0" "$tb1" "$wa0" "$wa1" "$wb0" "$wb1" <<'PY'
import json, os, platform, sys
cost, out, secs = json.load(open(sys.argv[1]))["results"], sys.argv[2], float(sys.argv[3])
t0, t1, tb0, tb1, wa0, wa1, wb0, wb1 = map(float, sys.argv[4:12])
wall = t1 - t0
share = (tb1 - tb0) / 1e6 / wall
ratio = (wb1 - wb0) / max(wa1 - wa0, 1)
res = {"seconds": wall, "token_bucket_1_4_hard_share": share, "token_bucket_target": 0.25,
       "weights_100_300_ratio": ratio, "weights_target": 3.0,
       "cost": [{"command": r["command"], "median_ms": r["median"] * 1000} for r in cost]}
json.dump(res, open(f"{out}/limits.json", "w"), indent=1)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = ["# Limits: what they promise and what the kernel delivered", "",
         f"Machine: {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}). "
         f"A CPU hog (tests/integration/helpers/hog.c) in each busybox guest, measured over {wall:.1f} s "
         "from the guests' own cgroup counters (`vserver stats`).", "",
         "| limit | promise | measured |", "|---|---:|---:|",
         f"| token bucket: fill-rate 1, interval 4, hard (CFS 125 ms / 500 ms) | 25.0% of one CPU | {share:.1%} |",
         f"| two guests pinned to CPU 0, cpu.weight 100 : 300 | 1 : 3.00 | 1 : {ratio:.2f} |", "",
         "| command | median ms |", "|---|---:|"]
lines += [f"| {r['command']} | {r['median'] * 1000:.2f} |" for r in cost]
open(f"{out}/limits.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
