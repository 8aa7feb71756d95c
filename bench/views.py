#!/usr/bin/python3
"""What a guest's own view costs: /proc/meminfo, uname(2) and sysinfo(2), read by the
same static probe (bench/overhead.c) on the host, in guests, and through lxcfs.

Configurations, alternating round by round so drift hits all alike:
  host                  the kernel's own files and system calls (the baseline)
  guest, views no       a guest that sees the host (views = no): the kernel's files
  guest                 a guest with its views (default): /proc/meminfo from the view
                        server (FUSE), sysinfo(2) answered through seccomp notification,
                        uname(2) the kernel's (no uname keys)
  guest, uname keys     the same with uname.release set: uname(2) answered too
  lxcfs                 LXC's view server (Debian's lxcfs, run on a directory of our own):
                        its proc/meminfo read from the host (the peer's FUSE path)

  bench/views.py [--quick|--smoke]
"""
import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import REPO, V, machine, rmdirs, sh, summary, table, today, write

TESTS = [  # name, count (full), path, what
    ("readfile", 20_000, "/proc/meminfo", "read /proc/meminfo (open, read, close)"),
    ("uname", 200_000, None, "uname(2)"),
    ("sysinfo", 100_000, None, "sysinfo(2)"),
]
CONFIGS = [  # name, build options (None: not a guest)
    ("host", None),
    ("guest, views no", ["--views", "no"]),
    ("guest", []),
    ("guest, uname keys", ["--uname-release", "2.6.32-vs"]),
    ("lxcfs", None),
]


def fmt_ns(ns):
    return f"{ns / 1000:.1f} µs" if ns >= 10_000 else f"{ns:.0f} ns"


def install_lxcfs():
    """Debian's lxcfs, without letting its package start the system's own instance."""
    if shutil.which("lxcfs"):
        return
    print("== installing lxcfs", flush=True)
    policy = Path("/usr/sbin/policy-rc.d")
    had = policy.exists()
    if not had:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh("apt-get", "update", "-qq", stdout=subprocess.DEVNULL, env=env)
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", "lxcfs",
           stdout=subprocess.DEVNULL, env=env)
    finally:
        if not had:
            policy.unlink()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    rounds, scale = (1, 0.002) if a.smoke else (3, 0.1) if a.quick else (5, 1.0)
    lxcfs_ok = not a.smoke
    if lxcfs_ok:
        install_lxcfs()
    work = Path(tempfile.mkdtemp(prefix="vs-bench-views."))
    out = Path(os.environ.get("VS_BENCH_OUT") or tempfile.mkdtemp()) if a.smoke \
        else REPO / "bench/results"
    env = dict(os.environ, VSERVER_ROOT=str(work / "inst"),
               VSERVER_CGROUP_PARENT="vs-bench-views")
    probe = work / "vs-overhead"
    sh("gcc", "-static", "-O2", "-pthread", "-o", probe, REPO / "bench/overhead.c")
    guests, lx = {}, None
    lxmnt = work / "lxcfs"
    try:
        for i, (name, opts) in enumerate(CONFIGS):
            if opts is None:
                continue
            g = f"view{i}"
            sh(V, "build", g, "--init", "none", "--memory", "512M", *opts, env=env,
               stdout=subprocess.DEVNULL)
            root = work / f"inst/var/lib/vserver/guests/{g}/rootfs"
            shutil.copy2(probe, root / "bin/vs-overhead")
            sh(V, "start", g, env=env)
            guests[name] = g
        if lxcfs_ok:
            lxmnt.mkdir()
            lx = subprocess.Popen(["lxcfs", "-f", str(lxmnt)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            deadline = time.time() + 10
            while not (lxmnt / "proc/meminfo").exists() and time.time() < deadline:
                time.sleep(0.05)
        configs = [c for c, _ in CONFIGS if c != "lxcfs" or lxcfs_ok]
        samples = {(c, t[0]): [] for c in configs for t in TESTS}
        for _ in range(rounds):
            for test, count, path, _ in TESTS:
                n = str(max(1, int(count * scale)))
                for cname in configs:
                    if cname == "lxcfs" and test != "readfile":
                        continue
                    if cname in ("host", "lxcfs"):
                        p = str(lxmnt / "proc/meminfo") if cname == "lxcfs" else path
                        cmd = [str(probe), test, n] + ([p] if p else [])
                    else:
                        cmd = [V, "exec", guests[cname], "--", "/bin/vs-overhead", test, n] + \
                              ([path] if path else [])
                    r = sh(*cmd, env=env, capture_output=True, text=True)
                    samples[(cname, test)].append(float(r.stdout.split()[1]))
    finally:
        if lx:
            lx.send_signal(signal.SIGTERM)
            try:
                lx.wait(10)
            except subprocess.TimeoutExpired:
                lx.kill()
            subprocess.run(["umount", "-l", str(lxmnt)], capture_output=True)
        for g in guests.values():
            subprocess.run([V, "stop", g, "--timeout", "0"], env=env, capture_output=True)
            subprocess.run([V, "delete", "--force", g], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        rmdirs(["vs-bench-views"])

    res = {"date": today(), "machine": machine(), "rounds": rounds, "scale": scale,
           "tests": {}}
    rows = []
    for test, _, _, what in TESTS:
        per = {c: summary(samples[(c, test)]) for c in configs if samples[(c, test)]}
        base = per["host"]["median"]
        for c in per:
            per[c]["ratio"] = per[c]["median"] / base
        res["tests"][test] = {"what": what, "ns_per_op": per}
        rows.append([what] + [(f"{fmt_ns(per[c]['median'])} ±{per[c]['spread_pct']:.0f}%" +
                               ("" if c == "host" else f" (**{per[c]['ratio']:.2f}**)"))
                              if c in per else "-" for c in configs])
    md = ["# Views: what a guest's own /proc, uname and sysinfo cost", "",
          f"{res['date']}, {machine()}.",
          f"Median of {rounds} alternating rounds, time per operation; ± is the range "
          "(max - min) over the median; (ratio) is over the host's median.", "",
          *table(["test"] + configs, rows), "",
          "- **guest, views no**: the kernel's own files and system calls, inside a guest",
          "- **guest**: /proc/meminfo from the view server (FUSE), sysinfo(2) through seccomp "
          "user notification, uname(2) the kernel's",
          "- **guest, uname keys**: uname(2) answered by the view server too",
          "- **lxcfs**: LXC's lxcfs (Debian's), its proc/meminfo read over FUSE"]
    write(out, "views", md, res)


if __name__ == "__main__":
    main()
