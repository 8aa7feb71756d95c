#!/usr/bin/python3
"""What a disk limit costs a guest: build, start and delete time, and host memory,
with and without one, in one run.

Series (the same busybox guests, --net none, one after another up to N):
  no disk limit      the tree a directory on the guests' filesystem
  disk = 1G, image   the tree its own sparse ext4 image, loop-mounted on its
                     root from build to delete (what this host's filesystem
                     gives: `vserver host check`)
Project quotas cost a guest one quotactl at build and nothing per start
(the tree is tagged once; the quota is the filesystem's own bookkeeping, a
dquot per project in the kernel): no
series here, as this kernel has no quota formats (make check-vm proves them
in a VM, where timings under TCG mean nothing).

For each series, after a dropped page cache and a settle:
  build_ms, start_ms, delete_ms   the median per guest
  built_kib    Slab + PageTables + KernelStack + Percpu over the baseline, per
               guest, with every guest built and none running: for an image,
               its mount, journal and loop device, which live from build to delete
  running_kib  the same with every guest running (what the guests' contexts add)
  image_kib    host disk an image takes (its allocated blocks), per guest

  bench/disk.py [--quick|--smoke]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import V, drop_caches, machine, meminfo, rmdirs, table, today, write

SERIES = [("no disk limit", []), ("disk = 1G, image", ["--disk", "1G"])]
KERNEL = ("Slab", "PageTables", "KernelStack", "Percpu")


def kernel_kib():
    m = meminfo()
    return sum(m.get(k, 0) for k in KERNEL)


def settled_kernel_kib():
    drop_caches()
    time.sleep(2)
    drop_caches()
    return kernel_kib()


def timed(env, *args):
    t0 = time.monotonic()
    subprocess.run([V, *args], env=env, check=True, capture_output=True)
    return (time.monotonic() - t0) * 1000


def run_series(opts, n, root):
    env = dict(os.environ, VSERVER_ROOT=str(root), VSERVER_CGROUP_PARENT=f"vs-bench-disk-{os.getpid()}")
    names = [f"g{i}" for i in range(n)]
    base = settled_kernel_kib()
    build = [timed(env, "build", g, "--net", "none", *opts) for g in names]
    built = settled_kernel_kib()
    start = [timed(env, "start", g) for g in names]
    running = settled_kernel_kib()
    image = 0
    for g in names:
        img = root / "var/lib/vserver/guests" / g / "disk.img"
        if img.exists():
            image += img.stat().st_blocks * 512 // 1024
    for g in names:
        subprocess.run([V, "stop", g, "--timeout", "5"], env=env, check=True, capture_output=True)
    delete = [timed(env, "delete", g) for g in names]
    rmdirs([env["VSERVER_CGROUP_PARENT"]])
    return {
        "guests": n,
        "build_ms": statistics.median(build),
        "start_ms": statistics.median(start),
        "delete_ms": statistics.median(delete),
        "built_kib": (built - base) / n,
        "running_kib": (running - base) / n,
        "image_kib": image / n,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    n = 3 if a.smoke else 10 if a.quick else 50
    out = Path(tempfile.mkdtemp(prefix="vs-bench-disk-out-")) if a.smoke else \
        Path(__file__).parent / "results"
    result = {"date": today(), "machine": machine(), "series": {}}
    for name, opts in SERIES:
        with tempfile.TemporaryDirectory(prefix="vs-bench-disk-") as d:
            result["series"][name] = run_series(opts, n, Path(d))
    s = result["series"]
    plain, img = s["no disk limit"], s["disk = 1G, image"]
    rows = [[name, f"{r['build_ms']:.0f}", f"{r['start_ms']:.1f}", f"{r['delete_ms']:.0f}",
             f"{r['built_kib']:.0f}", f"{r['running_kib']:.0f}", f"{r['image_kib']:.0f}"]
            for name, r in s.items()]
    md = [f"# Disk limits: what they cost a guest ({today()})", "",
          f"{machine()}; {n} busybox guests per series, one after another, --net none.", "",
          *table(["series", "build ms", "start ms", "delete ms", "kernel KiB/guest, built",
                  "kernel KiB/guest, running", "image KiB/guest on disk"], rows), "",
          f"An image adds {img['build_ms'] - plain['build_ms']:.0f} ms to a build (mkfs.ext4 "
          f"three times, to size it so df shows the limit), "
          f"{img['start_ms'] - plain['start_ms']:.1f} ms to a start, and "
          f"{img['built_kib'] - plain['built_kib']:.0f} KiB of kernel memory per guest from "
          f"build to delete (its mount, journal and loop device), "
          f"{img['running_kib'] - plain['running_kib']:.0f} KiB with the guests running.",
          "Project quotas add no start-time work and one quota record (a kernel dquot, a few "
          "hundred bytes) per guest (see bench/disk.py; proved in make check-vm)."]
    write(out, "disk", md, result)
    if a.smoke:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
