#!/usr/bin/python3
"""What each kernel object a guest holds costs the host: namespaces and
cgroups, made N at a time, measured as the kernel's own memory (Slab +
PageTables + KernelStack + Percpu, after a dropped page cache) over a
baseline, per object.  The breakdown behind bench/results/density.md's
"beyond the guest" column, and where to cut next (bench/WHERE.md).

  namespaces  N processes, each unshare(2)s one kind and waits; the same N
              processes with nothing unshared are the baseline (a process's
              own task, stack and page tables are not the namespace's)
  cgroups     N directories made in one hierarchy under a parent of ours:
              each v1 hierarchy this host mounts, and the cgroup2 tree

  bench/kobjects.py [--quick|--smoke]
"""
import argparse
import ctypes
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from benchlib import REPO, drop_caches, machine, meminfo, table, today, write

CLONE = {"mount": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000, "user": 0x10000000,
         "pid": 0x20000000, "net": 0x40000000, "cgroup": 0x02000000, "time": 0x00000080}
libc = ctypes.CDLL(None, use_errno=True)


def kernel_kib():
    """The kernel's own memory, settled: two readings in a row within 256 KiB."""
    last = None
    for _ in range(20):
        drop_caches()
        m = meminfo()
        k = m["Slab"] + m["PageTables"] + m["KernelStack"] + m.get("Percpu", 0)
        if last is not None and abs(k - last) < 256:
            return k
        last = k
        time.sleep(0.3)
    return last


def holders(n, flags):
    """N children that unshare @flags (0: none) and wait; their pids."""
    pids = []
    r, w = os.pipe()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            ok = flags == 0 or libc.unshare(flags) == 0
            os.write(w, b"1" if ok else b"0")
            signal.pause()
            os._exit(0)
        pids.append(pid)
    os.close(w)
    got = b""
    while len(got) < n:
        chunk = os.read(r, n - len(got))
        if not chunk:
            break
        got += chunk
    os.close(r)
    return pids, got.count(b"1") == n


def reap(pids):
    for p in pids:
        os.kill(p, signal.SIGKILL)
    for p in pids:
        os.waitpid(p, 0)


def per_namespace(kind, n, rounds):
    out = []
    for _ in range(rounds):
        base_pids, _ = holders(n, 0)
        base = kernel_kib()
        reap(base_pids)
        pids, ok = holders(n, CLONE[kind])
        with_ns = kernel_kib()
        reap(pids)
        if not ok:
            return None
        out.append((with_ns - base) / n)
    return statistics.median(out)


def hierarchies():
    """(label, our own cgroup's directory in it) for each hierarchy: what we make
    goes below our own cgroup (the tests' rule: inside the caller's accounting)."""
    own = {}
    for line in open("/proc/self/cgroup"):
        _id, ctrls, path = line.rstrip("\n").split(":", 2)
        own[ctrls] = path
    found = []
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ", 1)
        f = left.split()
        root, mnt = f[3], f[4]
        fstype, _src, opts = right.split()[:3]
        if fstype == "cgroup2":
            label, key = "cgroup2", ""
        elif fstype == "cgroup":
            ctrls = [o for o in opts.split(",") if o not in ("rw", "ro", "nosuid", "nodev",
                                                              "noexec", "relatime")]
            label = "v1 " + ",".join(ctrls)
            key = next((k for k in own if k and set(k.split(",")) == set(ctrls)), None)
        else:
            continue
        if key is None or key not in own:
            continue
        rel = own[key][len(root):] if root != "/" and own[key].startswith(root) else own[key]
        found.append((label, os.path.normpath(f"{mnt}/{rel}")))
    return found


def per_cgroup(mnt, n, rounds):
    parent = Path(mnt) / f"vs-bench-kobj-{os.getpid()}"
    out = []
    try:
        parent.mkdir()
        for _ in range(rounds):
            base = kernel_kib()
            for i in range(n):
                (parent / f"c{i}").mkdir()
            made = kernel_kib()
            for i in range(n):
                (parent / f"c{i}").rmdir()
            out.append((made - base) / n)
    finally:
        for i in range(n):
            try:
                (parent / f"c{i}").rmdir()
            except OSError:
                pass
        try:
            parent.rmdir()
        except OSError:
            pass
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    n, rounds = (20, 1) if a.smoke else (100, 1) if a.quick else (300, 3)
    out = Path(os.environ.get("VS_BENCH_OUT") or tempfile.mkdtemp()) if a.smoke \
        else REPO / "bench/results"
    rows, res = [], {"date": today(), "machine": machine(), "n": n, "rounds": rounds,
                     "namespaces": {}, "cgroups": {}}
    for kind in ("net", "mount", "user", "pid", "ipc", "uts", "cgroup", "time"):
        kib = per_namespace(kind, n, rounds)
        res["namespaces"][kind] = kib
        rows.append([f"{kind} namespace", "-" if kib is None else f"{kib:.1f}"])
        print(f"   {kind} namespace: {kib} KiB", flush=True)
    for label, mnt in hierarchies():
        kib = per_cgroup(mnt, n, rounds)
        res["cgroups"][label] = kib
        rows.append([f"cgroup in {label}", f"{kib:.1f}"])
        print(f"   cgroup in {label}: {kib:.1f} KiB", flush=True)
    md = ["# Kernel objects: what each namespace and cgroup costs", "",
          f"{today()}, {machine()}.",
          f"{n} of each made at once ({rounds} round(s), the median), the kernel's own memory "
          "(Slab + PageTables + KernelStack + Percpu after a dropped page cache) over a baseline, "
          "per object. Namespaces: N processes that unshare(2) one kind each, over the same N "
          "processes unsharing nothing. A mount namespace copies the mounts of the process that "
          "makes it (this host's), as a guest's does before it pivots. Cgroups: N empty "
          "directories in one hierarchy.", "",
          *table(["object", "KiB each"], rows), ""]
    write(out, "kobjects", md, res)


if __name__ == "__main__":
    main()
