#!/bin/bash
# Start time of an isolated context running /bin/true from one busybox root:
# vserver beside crun, runc and bubblewrap, alternating, with warm-up (hyperfine).
# No assertions: figures go to bench/results/start.{md,json}.
#   bench/run.sh            the full run (about a minute)
#   bench/run.sh --quick    a few runs each (seconds)
#   bench/run.sh --smoke    one run each, results to a temporary dir (make check)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=100 warmup=10 out=bench/results
case "${1:-}" in
--quick) runs=10 warmup=2 ;;
--smoke) runs=1 warmup=0 out=$(mktemp -d) ;;
esac
need=""
for c in hyperfine crun runc bwrap; do command -v $c >/dev/null || need="$need $c"; done
if [ -n "$need" ]; then
        pkgs=$(echo "$need" | sed 's/bwrap/bubblewrap/')
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
mkdir -p "$out"
work=$(mktemp -d /tmp/vs-bench.XXXXXX)
cleanup() {
        rm -rf "$work"
        find /sys/fs/cgroup -maxdepth 6 -type d -name vs-bench 2>/dev/null |
                while read -r d; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
tools/mkrootfs.sh "$work/bundle/rootfs"
root=$work/bundle/rootfs
export VSERVER_CGROUP_PARENT=vs-bench

# An OCI bundle for crun and runc with the same root.  Their default spec isolates
# pid, mount, ipc, uts and net, masks /proc paths and drops caps, but loads no
# seccomp filter: give them ours (the same deny list, as an OCI profile) so no
# figure wins by doing less.
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" src/lib/seccomp.c <<'PY'
import json, re, sys
p = sys.argv[1]; c = json.load(open(p))
src = open(sys.argv[2]).read()
body = src[src.index("default_deny[] = {"):]
names = re.findall(r'"([a-z0-9_]+)"', body[:body.index("NULL")])
c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
c["root"]["readonly"] = False
c["linux"].pop("resources", None)
c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
json.dump(c, open(p, "w"))
PY
# the same bundle for detached containers: a process that stays
mkdir -p "$work/bundle-d" && ln -s ../bundle/rootfs "$work/bundle-d/rootfs"
python3 - "$work/bundle/config.json" "$work/bundle-d/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["process"]["args"] = ["/bin/sleep", "100000"]
json.dump(c, open(sys.argv[2], "w"))
PY

v="$PWD/build/vserver"
cmds=(
  "$v run --rootfs $root -- /bin/true"
  "$v run --net host --rootfs $root -- /bin/true"
  "$v run --net host --seccomp none --rootfs $root -- /bin/true"
  "runc run --bundle $work/bundle vs-bench-runc"
  "bwrap --unshare-all --bind $root / --proc /proc --dev /dev /bin/true"
  "bwrap --unshare-all --share-net --bind $root / --proc /proc --dev /dev /bin/true"
)
names=(
  "vserver run (own netns, seccomp, cgroup)"
  "vserver run --net host (seccomp, cgroup)"
  "vserver run --net host --seccomp none (cgroup)"
  "runc run (own netns, seccomp, cgroup)"
  "bwrap --unshare-all (own netns, no seccomp, no cgroup)"
  "bwrap --unshare-all --share-net (no seccomp, no cgroup)"
)
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N -w "$warmup" -r "$runs" --export-json "$work/host.json" "${args[@]}" >/dev/null

# crun refuses hybrid hosts ("cgroups in hybrid mode not supported"): measure it
# beside vserver in a private mount namespace where the cgroup2 tree is hidden,
# so both see a pure cgroup v1 host.
cat >"$work/v1.sh" <<SH
set -e
umount -l /sys/fs/cgroup/unified 2>/dev/null || true
hyperfine -N -w "$warmup" -r "$runs" --export-json "$work/v1.json" \
  -n "vserver run, cgroup v1 only (own netns, seccomp, cgroup)" "$v run --rootfs $root -- /bin/true" \
  -n "crun run, cgroup v1 only (own netns, seccomp, cgroup)" "crun run --bundle $work/bundle vs-bench-crun" >/dev/null

# Guests: a detached start until PID 1 runs, and an exec into a running one.
# vserver boots busybox init from the busybox template; crun -d starts a
# sleeper from the same kind of root.  Each start is undone before the next.
export VSERVER_ROOT=$work/inst
$v build bg --net none >/dev/null 2>&1
$v build bx --net none >/dev/null 2>&1
$v start bx
crun run -d --bundle $work/bundle-d vs-bench-cx
hyperfine -N -w "$warmup" -r "$runs" --export-json "$work/guests.json" \
  --prepare "$v stop bg --timeout 0" \
  -n "vserver start (busybox init; own netns, seccomp, cgroup)" "$v start bg" \
  --prepare "crun delete -f vs-bench-cd" \
  -n "crun run -d (sleep; own netns, seccomp, cgroup)" "crun run -d --bundle $work/bundle-d vs-bench-cd" \
  --prepare "true" \
  -n "vserver exec /bin/true into a running guest" "$v exec bx -- /bin/true" \
  --prepare "true" \
  -n "crun exec /bin/true into a running container" "crun exec vs-bench-cx /bin/true" >/dev/null
$v stop --all --timeout 0 >/dev/null 2>&1 || true
$v delete bg >/dev/null 2>&1; $v delete bx >/dev/null 2>&1
crun delete -f vs-bench-cd >/dev/null 2>&1 || true
crun delete -f vs-bench-cx >/dev/null 2>&1 || true
SH
unshare -m --propagation private bash "$work/v1.sh"
python3 - "$work/host.json" "$work/v1.json" "$work/guests.json" "$out/start.json" <<'PY'
import json, sys
a, b, c = (json.load(open(f)) for f in sys.argv[1:4])
json.dump({"host": a["results"], "cgroup_v1_only": b["results"], "guests": c["results"]},
          open(sys.argv[4], "w"), indent=1)
PY

python3 - "$out/start.json" "$out/start.md" <<'PY'
import json, platform, statistics, sys, os
d = json.load(open(sys.argv[1]))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = ["# Start: /bin/true in a fresh isolated context", "",
         f"Machine: {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}).",
         f"{len(d['host'][0]['times'])} runs each after warm-up, hyperfine -N; each table's commands alternate.",
         "Ratio: the command's median over vserver's (own netns) median in the same table; above 1 is slower than vserver."]
tables = (("Hybrid host as it is (cgroup v1 controllers + cgroup2 tree)", d["host"], None),
          ("Private mount namespace with the cgroup2 tree hidden (crun refuses hybrid hosts)", d["cgroup_v1_only"], None),
          ("Guests (cgroup v1 only, as above): detached start, and exec into a running guest; ratios against the vserver row above each pair", d["guests"], 2))
for title, rs, pair in tables:
    base = rs[0]["median"]
    lines += ["", f"## {title}", "",
              "| what (isolation) | median ms | min ms | stddev ms | ratio |", "|---|---:|---:|---:|---:|"]
    for i, r in enumerate(rs):
        if pair and i % pair == 0:
            base = r["median"]
        t = r["times"]
        sd = statistics.stdev(t) * 1000 if len(t) > 1 else 0.0
        lines.append(f"| {r['command']} | {r['median']*1000:.2f} | {r['min']*1000:.2f} | {sd:.2f} | {r['median']/base:.2f} |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
