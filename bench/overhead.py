#!/usr/bin/python3
"""The cost of being inside a guest: the same static probe (bench/overhead.c)
on the host and inside running guests, as ratios to the host.

Configurations, alternating round by round so drift hits all alike:
  host                  no isolation (the baseline)
  guest                 vserver guest, net isolate (host stack + cgroup-BPF),
                        seccomp deny list, dropped caps, own cgroup
  guest, seccomp none   the same without the seccomp filter
  guest, own netns      vserver guest with its own network namespace
                        (loopback only), seccomp on

Tests: getpid, an ioctl (seccomp's allow cache cannot answer it),
open+close, stat, fork+exec of a static binary, a walk of a 10,000-entry
tree (getdents64 + fstatat), TCP round trips and bulk over 127.0.0.1.  Paths are relative to the guest's root (cwd), so lookups are alike.

  bench/overhead.py [--quick|--smoke]
"""
import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchlib import REPO, V, install, machine, sh, summary, table, today, write

TESTS = [  # name, count (full), path argument, what
    ("getpid", 2_000_000, None, "getpid(2)"),
    ("ioctl", 2_000_000, None, "ioctl(2) TCGETS (rules on its arguments: every filter runs)"),
    ("openclose", 300_000, "walk/d00/f000", "open + close"),
    ("stat", 500_000, "walk/d00/f000", "stat(2)"),
    ("forkexec", 2_000, "bin/vs-overhead", "fork + exec + wait"),
    ("walk", 20, "walk", "tree walk, per entry"),
    ("tcprtt", 50_000, None, "TCP 1-byte round trip, 127.0.0.1"),
    ("tcpbulk", 2_048, None, "TCP bulk over 127.0.0.1, per MiB"),
]
CONFIGS = [  # name, build options, what it isolates
    ("host", None, "nothing (baseline)"),
    ("guest", [], "pid/mnt/uts/ipc/cgroup ns, caps, seccomp, cgroup-BPF net isolation"),
    ("guest, seccomp none", ["--set", "security.seccomp=none"], "as guest, no seccomp filter"),
    ("guest, own netns", ["--net", "none"], "as guest, own network namespace instead of BPF"),
]


def fmt_ns(ns):
    return f"{ns / 1000:.1f} µs" if ns >= 10_000 else f"{ns:.0f} ns"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    rounds, scale = (1, 0.002) if a.smoke else (3, 0.1) if a.quick else (5, 1.0)
    install({"gcc": "gcc"})
    work = Path(tempfile.mkdtemp(prefix="vs-bench-ovh."))
    # a smoke run writes where the caller says (the tests: their own directory)
    out = Path(os.environ.get("VS_BENCH_OUT") or tempfile.mkdtemp()) if a.smoke else REPO / "bench/results"
    env = dict(os.environ, VSERVER_ROOT=str(work / "inst"),
               VSERVER_CGROUP_PARENT="vs-bench-ovh")
    probe = work / "vs-overhead"
    sh("gcc", "-static", "-O2", "-pthread", "-o", probe, REPO / "bench/overhead.c")
    guests = {}
    try:
        for i, (name, opts, _) in enumerate(CONFIGS):
            if opts is None:
                continue
            g = f"ovh{i}"
            sh(V, "build", g, "--init", "none", *opts, env=env, stdout=subprocess.DEVNULL)
            root = work / f"inst/var/lib/vserver/guests/{g}/rootfs"
            shutil.copy2(probe, root / "bin/vs-overhead")
            for d in range(40):
                (root / f"walk/d{d:02d}").mkdir(parents=True)
                for f in range(250):
                    (root / f"walk/d{d:02d}/f{f:03d}").touch()
            sh(V, "start", g, env=env)
            guests[name] = (g, root)
        host_root = guests["guest"][1]
        samples = {(c, t[0]): [] for c, _, _ in CONFIGS for t in TESTS}
        for _ in range(rounds):
            for test, count, path, _ in TESTS:
                n = str(max(1, int(count * scale)))
                args = ["/bin/vs-overhead", test, n] + ([path] if path else [])
                for cname, _, _ in CONFIGS:
                    if cname == "host":
                        cmd, cwd = [str(host_root / "bin/vs-overhead")] + args[1:], host_root
                    else:
                        cmd, cwd = [V, "exec", guests[cname][0], "--"] + args, None
                    p = sh(*cmd, cwd=cwd, env=env, capture_output=True, text=True)
                    samples[(cname, test)].append(float(p.stdout.split()[1]))
    finally:
        for g, _ in guests.values():
            subprocess.run([V, "stop", g, "--timeout", "0"], env=env, capture_output=True)
            subprocess.run([V, "delete", "--force", g], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        for d in Path("/sys/fs/cgroup").glob("**/vs-bench-ovh"):
            try:
                d.rmdir()
            except OSError:
                pass

    res = {"date": today(), "machine": machine(), "rounds": rounds, "scale": scale,
           "configs": {c: what for c, _, what in CONFIGS}, "tests": {}}
    head = ["test"] + [c for c, _, _ in CONFIGS]
    rows = []
    for test, _, _, what in TESTS:
        per = {c: summary(samples[(c, test)]) for c, _, _ in CONFIGS}
        base = per["host"]["median"]
        for c in per:
            per[c]["ratio"] = per[c]["median"] / base
        res["tests"][test] = {"what": what, "ns_per_op": per}
        rows.append([what] + [f"{fmt_ns(per[c]['median'])} ±{per[c]['spread_pct']:.0f}%" +
                              ("" if c == "host" else f" (**{per[c]['ratio']:.2f}**)")
                              for c, _, _ in CONFIGS])
    md = ["# Overhead: the same probe on the host and inside guests", "",
          f"{res['date']}, {machine()}.",
          f"Median of {rounds} alternating rounds, time per operation; ± is the range "
          "(max - min) over the median; (ratio) is over the host's median: 1.00 is native, "
          "below 1 faster than the host.", "",
          *table(head, rows), "", "What each configuration isolates:", ""]
    md += [f"- **{c}**: {what}" for c, _, what in CONFIGS]
    write(out, "overhead", md, res)


if __name__ == "__main__":
    main()
