#!/bin/bash
# TCP between two guests on this machine, in one run, per network mode:
#   isolate  the host's stack, cgroup-BPF on the guests (198.18.0.50/.51 on lo)
#   netns    own stacks, veth pairs in a bridge of ours
#   host     the host's stack, no isolation (the baseline: ratios are to it)
# Throughput: one connection sending BYTES; latency: one-byte request and
# response round trips.  No assertions: bench/results/net.{md,json}.
#   bench/net.sh [--quick|--smoke]
set -euo pipefail
cd "$(dirname "$0")/.."
bytes=$((2 * 1024 * 1024 * 1024)) trips=50000 runs=3 out=bench/results
case "${1:-}" in
--quick) bytes=$((512 * 1024 * 1024)) trips=20000 runs=2 ;;
--smoke) bytes=$((8 * 1024 * 1024)) trips=500 runs=1 out=${VS_BENCH_OUT:-$(mktemp -d)} ;;
esac
v=$PWD/build/vserver
work=$(mktemp -d /tmp/vs-bench-net.XXXXXX)
bridge=vsbench$$
export VSERVER_ROOT=$work/inst VSERVER_CGROUP_PARENT=vs-bench-net
cleanup() {
        $v stop --all --timeout 0 >/dev/null 2>&1 || true
        for m in isolate netns host; do
                $v delete --force "srv-$m" >/dev/null 2>&1 || true
                $v delete --force "cli-$m" >/dev/null 2>&1 || true
        done
        ip link del "$bridge" 2>/dev/null || true
        rm -rf "$work"
        find /sys/fs/cgroup -maxdepth 6 -type d -name vs-bench-net 2>/dev/null |
                while read -r d; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
gcc -static -O2 -o "$work/vs-net" tests/integration/helpers/net.c
mkdir -p "$out" "$VSERVER_ROOT/etc/vserver"
printf '[host]\nbridge = %s\n' "$bridge" > "$VSERVER_ROOT/etc/vserver/vserver.conf"

guest() {  # NAME OPTIONS...
        local name=$1; shift
        $v build "$name" --init none "$@" >/dev/null
        cp "$work/vs-net" "$VSERVER_ROOT/var/lib/vserver/guests/$name/rootfs/bin/vs-net"
        $v start "$name"
}

measure() {  # MODE SERVER_ADDR: echo server in srv-MODE, client in cli-MODE
        local mode=$1 addr=$2
        $v exec "srv-$mode" -- /bin/sh -c "/bin/vs-net echo $addr 5001 >/dev/null 2>&1 &"
        sleep 0.3
        for _ in $(seq "$runs"); do
                $v exec "cli-$mode" -- /bin/sh -c "VS_NET_TIMING=1 /bin/vs-net send $addr 5001 $bytes" |
                        awk -v m="$mode" '{print m, "send", $2, $4}'
                $v exec "cli-$mode" -- /bin/vs-net rr "$addr" 5001 "$trips" |
                        awk -v m="$mode" '{print m, "rr", $2, $3}'
        done
}

raw=$work/raw.txt
guest srv-isolate --address 198.18.0.50/32@lo
guest cli-isolate --address 198.18.0.51/32@lo
guest srv-netns --net netns --address 10.213.9.2/24
guest cli-netns --net netns --address 10.213.9.3/24
guest srv-host --net host
guest cli-host --net host
{
        measure isolate 198.18.0.50
        measure netns 10.213.9.2
        measure host 127.0.0.1
} > "$raw"
$v stop --all --timeout 0 >/dev/null

python3 - "$raw" "$out" "$bytes" "$trips" <<'PY'
import json, os, platform, statistics, sys
raw, out, nbytes, trips = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
gbit, lat = {}, {}
for line in open(raw):
    mode, kind, a, b = line.split()
    if kind == "send":
        gbit.setdefault(mode, []).append(int(a) * 8 / float(b) / 1e9)
    else:
        lat.setdefault(mode, []).append(float(b))
res = {"bytes": nbytes, "round_trips": trips, "kernel": platform.release(), "modes": {}}
for m in ("isolate", "netns", "host"):
    g, l = statistics.median(gbit[m]), statistics.median(lat[m])
    res["modes"][m] = {"throughput_gbit_s": g, "round_trip_us": l,
                       "throughput_vs_host": g / statistics.median(gbit["host"]),
                       "latency_vs_host": l / statistics.median(lat["host"])}
json.dump(res, open(os.path.join(out, "net.json"), "w"), indent=2)
with open(os.path.join(out, "net.md"), "w") as f:
    f.write("# TCP between two guests on one machine\n\n")
    f.write(f"One connection, {nbytes >> 20} MiB; {trips} one-byte round trips; "
            f"median of the runs. Kernel {platform.release()}, {os.cpu_count()} CPUs.\n\n")
    f.write("| mode | throughput (Gbit/s) | vs host | round trip (µs) | vs host |\n|---|---|---|---|---|\n")
    for m, r in res["modes"].items():
        f.write(f"| {m} | {r['throughput_gbit_s']:.2f} | {r['throughput_vs_host']:.2f} | "
                f"{r['round_trip_us']:.1f} | {r['latency_vs_host']:.2f} |\n")
    f.write("\nisolate: the host's stack with cgroup-BPF on connect/bind (nothing per packet but\n"
            "the traffic counters); netns: each guest's own stack, a veth pair each, a bridge\n"
            "between them; host: no isolation.\n")
print(open(os.path.join(out, "net.md")).read())
PY
