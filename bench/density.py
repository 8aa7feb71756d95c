#!/usr/bin/python3
"""Density: how many idle guests one host holds, what each costs, and how long
starting them all takes; vserver beside crun and LXC, in one run.

Series (each starts guests one after another until N, or until one fails):
  vserver, own netns    busybox guests (busybox init + syslogd), --net none:
                        own network namespace with loopback only, as crun's;
                        files unified (vserver unify --all) as one image is
                        shared by crun
  vserver, net isolate  the same guests on the host's stack, kept to their
                        addresses by cgroup-BPF (no network namespace)
  ..., one sleeper      the same guests with crun's and LXC's one process,
                        init = /bin/sleep 1000000: like for like
  ..., as crun's        the sleeper without a user namespace, views, a
                        console pty or cgroups of its own (delegate = no),
                        which crun's container has not either
  crun run -d           a busybox sleeper from one shared root, own netns,
                        our seccomp deny list; cgroup v1 only (crun refuses
                        hybrid hosts: run in a mount namespace without the
                        cgroup2 tree)
  lxc-start -d          the same sleeper from the same root, own netns
                        (lxc.net = empty), LXC's defaults otherwise

At each checkpoint, after a settle and a dropped page cache:
  start_s          the summed wall time of the start commands so far
  kernel_kib       Slab + PageTables + KernelStack + Percpu over the baseline,
                   and VmallocUsed beyond the stacks (which it holds too, as
                   vmapped stacks): namespaces, cgroups, mounts, sockets,
                   seccomp and BPF programs, tty buffers, page tables
  ours             processes the runtime left in the host's pid namespace
                   (not zombies, not kernel threads), and ours_pss_kib their PSS
  beyond_kib       kernel_kib + ours_pss_kib: what a guest costs the host
                   beyond its own processes
  guest_pss_kib    the PSS of every process inside the guests
  memfree_kib      MemTotal - MemFree over the baseline, a cross-check only
                   (it moves by megabytes as the kernel frees things late)

  bench/density.py [--quick|--smoke] [--max N]
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import (REPO, V, drop_caches, in_cgroup_v1_view, install, machine, meminfo,
                      oci_spec, rmdirs, sh, table, today, write)

PEERS = {"crun": "crun", "runc": "runc", "lxc-start": "lxc", "gnuplot": "gnuplot-nox"}


def host_pidns():
    return os.readlink("/proc/self/ns/pid")


def snapshot():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def scan(before, pidns):
    """(PSS of processes in other pid namespaces, their count, processes the
    runtime left on the host, their PSS).  A process counts as left by the runtime when it
    is new, in the host's pid namespace, neither a kernel thread nor a zombie,
    and its parents up to PID 1 or us are new too (what other programs on the
    host start in the meantime does not count)."""
    procs = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            procs[int(p)] = (stat[0], int(stat[1]), int(stat[6]), os.readlink(f"/proc/{p}/ns/pid"))
        except (OSError, ValueError, IndexError):
            continue

    def left_by_runtime(pid):
        while pid not in (1, os.getpid()):
            if pid in before or pid not in procs:
                return False
            pid = procs[pid][1]
        return True
    def pss_of(pid):
        try:
            return sum(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup")
                       if l.startswith("Pss:"))
        except OSError:
            return 0
    pss = inside = ours = ours_pss = 0
    for pid, (state, ppid, flags, ns) in procs.items():
        if flags & 0x00200000 or state == "Z":  # kernel thread, zombie
            continue
        if ns != pidns:
            inside += 1
            pss += pss_of(pid)
        elif pid != os.getpid() and left_by_runtime(pid):
            ours += 1
            ours_pss += pss_of(pid)
    return pss, inside, ours, ours_pss


QUIET_S = 5  # a baseline: seconds without the kernel's memory falling


def used(baseline=False):
    """Host memory in use and the kernel's part, once it has settled: the page
    cache dropped and two readings in a row within 1 MiB.  A baseline waits
    longer: the namespaces and cgroups of the series before are freed late,
    from work queues, and must be gone (no fall for 5 s, 90 s at most)."""
    def read():
        drop_caches()
        m = meminfo()
        vmalloc = max(0, m.get("VmallocUsed", 0) - m["KernelStack"])  # stacks: vmapped
        return (m["MemTotal"] - m["MemFree"],
                m["Slab"] + m["PageTables"] + m["KernelStack"] + m.get("Percpu", 0) + vmalloc)
    last = read()
    if baseline:
        low, since = last[1], time.monotonic()
        t_end = since + 90
        while time.monotonic() < t_end and time.monotonic() - since < QUIET_S:
            time.sleep(1)
            last = read()
            if last[1] < low - 1024:
                low, since = last[1], time.monotonic()
        return last
    for _ in range(20):
        time.sleep(0.3)
        now = read()
        if abs(now[0] - last[0]) < 1024:
            return now
        last = now
    return last


def detached(*cmd, **kw):
    """Run a start command whose container inherits its stdio: stderr goes to a
    file (a pipe would stay open as long as the container runs)."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err, **kw)
        if p.returncode != 0:
            err.seek(0)
            raise subprocess.CalledProcessError(p.returncode, cmd, stderr=err.read())


def checkpoint(n, spent, used0, kern0, before, pidns):
    u, k = used()
    pss, inside, ours, ours_pss = scan(before, pidns)
    return {"n": n, "start_s": round(spent, 3), "kernel_kib": k - kern0,
            "ours_pss_kib": ours_pss, "beyond_kib": k - kern0 + ours_pss,
            "guest_pss_kib": pss, "total_kib": k - kern0 + ours_pss + pss,
            "memfree_kib": u - used0, "guest_procs": inside, "ours": ours}


def measure(series, start, n_max, checkpoints, settle):
    """Start guests 1..n_max with start(i); returns the checkpoint rows."""
    pidns = host_pidns()
    used0, kern0 = used(baseline=True)
    before = snapshot()
    rows, spent, fit, error = [], 0.0, 0, None
    for i in range(1, n_max + 1):
        t0 = time.perf_counter()
        try:
            start(i)
        except subprocess.CalledProcessError as e:
            error = f"guest {i} failed: {(e.stderr or b'').decode(errors='replace').strip()[-200:]}"
            break
        spent += time.perf_counter() - t0
        fit = i
        if i in checkpoints or i == n_max:
            time.sleep(settle)
            rows.append(checkpoint(i, spent, used0, kern0, before, pidns))
            r = rows[-1]
            print(f"   {series}: {i} running, {spent:.1f} s, {r['kernel_kib'] / i:.0f} KiB "
                  f"kernel + {r['ours_pss_kib'] / i:.0f} KiB runtime processes per guest, "
                  f"{r['ours']} runtime processes", flush=True)
    if error and fit and fit not in [r["n"] for r in rows]:
        rows.append(checkpoint(fit, spent, used0, kern0, before, pidns))
    return {"rows": rows, "fit": fit, "error": error}


def median_ms(args, env, runs=5):
    """The median wall time of a command, in ms."""
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True)
        ts.append(time.perf_counter() - t0)
    return round(1000 * sorted(ts)[len(ts) // 2], 1)


def unfreeze(path):
    """Clear the immutable and append-only flags (FS_IOC_GETFLAGS/SETFLAGS)."""
    import fcntl
    import struct
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, 0x80086601, b"\0" * 8))[0]
        fcntl.ioctl(fd, 0x40086602, struct.pack("l", flags & ~0x30))
    finally:
        os.close(fd)


class Vserver:
    def __init__(self, work, n, mode):
        self.env = dict(os.environ, VSERVER_ROOT=str(work / "inst"),
                        VSERVER_CGROUP_PARENT="vs-bench-dens")
        self.n, self.mode, self.inst = n, mode, work / "inst"

    def build(self):
        t0 = time.perf_counter()

        def one(i):
            sh(V, "build", f"d{i}", "--net", self.mode, "--context", str(2000 + i),
               env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(one, range(1, self.n + 1)))
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        sh(V, "unify", "--all", env=self.env, stdout=subprocess.DEVNULL)
        return built, time.perf_counter() - t0

    def set_mode(self, mode, userns=True, init="/sbin/init", views="yes", console="pty",
                 delegate="yes"):
        for i in range(1, self.n + 1):
            f = self.inst / f"etc/vserver/guests/d{i}.conf"
            t = re.sub(r"(?m)^mode = \w+$", f"mode = {mode}", f.read_text())
            t = re.sub(r"(?m)^userns = \w+$", f"userns = {'yes' if userns else 'no'}", t)
            t = re.sub(r"(?m)^init = .*$", f"init = {init}", t)
            # views and console: set in [guest], whether the file had them or not
            t = re.sub(r"(?m)^(views|console|delegate) = .*\n", "", t)
            t = re.sub(r"(?m)^\[guest\]\n", f"[guest]\nviews = {views}\nconsole = {console}\n"
                       f"delegate = {delegate}\n", t)
            f.write_text(t)
        self.mode = mode

    def start(self, i):
        detached(V, "start", f"d{i}", env=self.env)

    def stop(self):
        subprocess.run([V, "stop", "--all", "--timeout", "0"], env=self.env, capture_output=True)

    def commands(self):
        """With every guest running: what the commands an admin types cost."""
        return {"list": median_ms([V, "list"], self.env),
                "list --json": median_ms([V, "list", "--json"], self.env),
                "status": median_ms([V, "status", f"d{self.n}"], self.env),
                "exec /bin/true": median_ms([V, "exec", f"d{self.n}", "/bin/true"], self.env)}

    def start_all(self):
        """vserver start --all from none running: its wall time in s."""
        t0 = time.perf_counter()
        subprocess.run([V, "start", "--all"], env=self.env, capture_output=True)
        return round(time.perf_counter() - t0, 2)

    def delete(self, k):
        """vserver delete for k guests (timed), then the throwaway installation
        goes at once."""
        t0 = time.perf_counter()
        k = min(k, self.n)
        for i in range(1, k + 1):
            subprocess.run([V, "delete", "--force", f"d{i}"], env=self.env, capture_output=True)
        spent = time.perf_counter() - t0
        for d, _, files in os.walk(self.inst / "var/lib/vserver/guests"):
            for f in files:
                p = Path(d) / f
                if not p.is_symlink() and p.stat().st_nlink > 1:
                    unfreeze(p)
        for p in (self.inst / "var/log/vserver").glob("*"):  # console logs: append-only
            unfreeze(p)
        shutil.rmtree(self.inst, ignore_errors=True)
        rmdirs(["vs-bench-dens"])
        return k, spent


def crun_series(work, root, n, checkpoints, settle, own_trees=False):
    """crun's containers from one shared root, or (own_trees) each from a tree of
    its own: its own directories and symlinks, its files hard links of the one
    root's, as a unified vserver guest's (made before the series, not timed)."""
    tag = "t" if own_trees else "c"
    bundle = work / f"crun-{tag}"
    spec = oci_spec(bundle, root, ["/bin/sleep", "1000000"])
    for i in range(1, n + 1):
        spec["linux"]["cgroupsPath"] = f"/vs-bench-dens-crun-{tag}/{tag}{i}"
        if own_trees:
            tree = bundle / f"root{i}"
            sh("cp", "-al", root, tree)
            spec["root"]["path"] = str(tree)
        (bundle / f"{tag}{i}.json").write_text(json.dumps(spec))

    def start(i):
        detached("crun", "run", "-d", "--bundle", bundle, "--config",
                 bundle / f"{tag}{i}.json", f"vs-bench-{tag}{i}")

    def series():
        try:
            return measure("crun", start, n, checkpoints, settle)
        finally:
            for i in range(1, n + 1):
                subprocess.run(["crun", "delete", "-f", f"vs-bench-{tag}{i}"],
                               capture_output=True)
            rmdirs([f"vs-bench-dens-crun-{tag}"])
    return in_cgroup_v1_view(series)


def lxc_series(work, root, n, checkpoints, settle):
    lxcpath = work / "lxc"
    for i in range(1, n + 1):
        d = lxcpath / f"l{i}"
        d.mkdir(parents=True)
        (d / "config").write_text(
            f"lxc.uts.name = l{i}\nlxc.rootfs.path = dir:{root}\nlxc.net.0.type = empty\n"
            "lxc.mount.auto = proc:mixed sys:ro\nlxc.autodev = 1\n"
            "lxc.init.cmd = /bin/sleep 1000000\nlxc.cgroup.relative = 1\n"
            f"lxc.cgroup.dir.container = vs-bench-dens-lxc/l{i}\n"
            f"lxc.cgroup.dir.monitor = vs-bench-dens-lxc/m{i}\n"
            f"lxc.cgroup.dir.container.inner = inner\n")

    # lxc-start -d leaves a monitor per container; made our children (a
    # subreaper), they are reaped here instead of lingering as PID 1's zombies
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    def start(i):
        detached("lxc-start", "-P", lxcpath, "-n", f"l{i}", "-d")
    try:
        return measure("lxc", start, n, checkpoints, settle)
    finally:
        for i in range(1, n + 1):
            subprocess.run(["lxc-stop", "-P", lxcpath, "-n", f"l{i}", "-k"], capture_output=True)
        libc.prctl(36, 0, 0, 0, 0)
        for _ in range(50):
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.1)
            except ChildProcessError:
                break
        rmdirs(["vs-bench-dens-lxc", "lxc.pivot"])


def per_guest(row, key):
    return row[key] / row["n"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--max", type=int)
    a = ap.parse_args()
    checkpoints = [3] if a.smoke else [10, 25] if a.quick else [100, 250, 500, 1000]
    n = a.max or checkpoints[-1]
    checkpoints = [c for c in checkpoints if c <= n] or [n]
    settle = 0.3 if a.smoke else 1.0
    global QUIET_S
    QUIET_S = 1 if a.smoke or a.quick else 5
    install(PEERS)
    work = Path(tempfile.mkdtemp(prefix="vs-bench-dens."))
    # a smoke run writes where the caller says (the tests: their own directory)
    out = Path(os.environ.get("VS_BENCH_OUT") or tempfile.mkdtemp()) if a.smoke else REPO / "bench/results"
    root = work / "rootfs"
    sh(REPO / "tools/mkrootfs.sh", root)
    series, notes = {}, {}
    vs = Vserver(work, n, "none")
    try:
        print(f"== density: building {n} busybox guests", flush=True)
        built, unified = vs.build()
        notes["vserver build"] = f"{n} guests built in {built:.1f} s (4 at a time), unified in {unified:.1f} s"
        sleeper = "/bin/sleep 1000000"  # crun's and LXC's process
        # what crun's container has not either: views, a console pty, cgroups of its own
        bare = {"views": "no", "console": "log", "delegate": "no"}
        for label, mode, userns, init, extra in (
                ("vserver, own netns", "none", True, "/sbin/init", {}),
                ("vserver, own netns, no userns", "none", False, "/sbin/init", {}),
                ("vserver, net isolate", "isolate", True, "/sbin/init", {}),
                ("vserver, net isolate, no userns", "isolate", False, "/sbin/init", {}),
                ("vserver, own netns, one sleeper", "none", True, sleeper, {}),
                ("vserver, net isolate, one sleeper", "isolate", True, sleeper, {}),
                ("vserver, own netns, as crun's", "none", False, sleeper, bare),
                ("vserver, net isolate, as crun's", "isolate", False, sleeper, bare)):
            vs.set_mode(mode, userns, init, **extra)
            try:
                series[label] = measure(label, vs.start, n, checkpoints, settle)
                if series[label]["fit"] == n:
                    series[label]["commands"] = vs.commands()
            finally:
                vs.stop()
            if label == "vserver, own netns":
                series[label]["start_all_s"] = vs.start_all()
                vs.stop()
        series["crun run -d"] = crun_series(work, root, n, checkpoints, settle)
        series["crun run -d, own trees"] = crun_series(work, root, n, checkpoints, settle,
                                                       own_trees=True)
        series["lxc-start -d"] = lxc_series(work, root, n, checkpoints, settle)
    finally:
        vs.stop()
        k, spent = vs.delete(20)
        notes["vserver delete"] = (f"{k} of the {n} unified guests deleted one by one in {spent:.1f} s "
                                   f"({1000 * spent / max(k, 1):.0f} ms each, the others frozen "
                                   "through their cgroup parent; the rest of the throwaway "
                                   "installation was removed directly)")
        shutil.rmtree(work, ignore_errors=True)

    what = {
        "vserver, own netns": "busybox init + syslogd; a user namespace of its own (idmapped tree), "
                              "pid/mnt/uts/ipc/net/cgroup ns (loopback only, as crun's), caps, "
                              "seccomp, cgroup; one console keeper process for all guests",
        "vserver, own netns, no userns": "as above, guest root the host's root (userns = no)",
        "vserver, net isolate": "own user namespace, host stack kept to the guest's addresses by cgroup-BPF",
        "vserver, net isolate, no userns": "as above, guest root the host's root (userns = no)",
        "vserver, own netns, one sleeper": "own netns and user namespace, init = /bin/sleep 1000000: "
                                           "one process, as crun's and LXC's",
        "vserver, net isolate, one sleeper": "isolate, user namespace, the same one sleeper",
        "vserver, own netns, as crun's": "the one sleeper without what crun's container has not "
                                         "either: no user namespace, no views, no console pty "
                                         "(console = log), no cgroups of its own (delegate = no)",
        "vserver, net isolate, as crun's": "the same in isolate mode: no network namespace",
        "crun run -d": "sleep; pid/mnt/uts/ipc/net ns, caps, seccomp, cgroup (cgroup v1 view)",
        "crun run -d, own trees": "as above, each container its own tree (cp -al: its own "
                                  "directories and symlinks, hard-linked files, as a unified "
                                  "guest's); above, all share one",
        "lxc-start -d": "sleep; pid/mnt/uts/ipc/net/cgroup ns, cgroup, one LXC monitor process each",
    }
    res = {"date": today(), "machine": machine(), "n": n, "checkpoints": checkpoints,
           "what": what, "series": series, "notes": notes}
    head = ["series (what it isolates)", "running", "start all s", "ms/guest",
            "beyond the guest KiB/guest", "of which kernel", "of which runtime processes",
            "guest's own PSS KiB/guest", "runtime processes/guest", "ratio (beyond)",
            "start vs crun"]
    rows = []
    base = {r["n"]: r for r in series.get("vserver, own netns", {}).get("rows", [])}
    crun = {r["n"]: r for r in series.get("crun run -d", {}).get("rows", [])}
    for name, s in series.items():
        for r in s.get("rows", []):
            b = base.get(r["n"])
            ratio = f"{r['beyond_kib'] / b['beyond_kib']:.2f}" if b and b["beyond_kib"] > 0 else "-"
            c = crun.get(r["n"])
            vs_crun = f"{r['start_s'] / c['start_s']:.2f}" if c and c["start_s"] > 0 else "-"
            rows.append([f"**{name}** ({what[name]})" if r is s["rows"][0] else name, r["n"],
                         f"{r['start_s']:.2f}", f"{1000 * r['start_s'] / r['n']:.1f}",
                         f"{per_guest(r, 'beyond_kib'):.0f}", f"{per_guest(r, 'kernel_kib'):.0f}",
                         f"{per_guest(r, 'ours_pss_kib'):.0f}", f"{per_guest(r, 'guest_pss_kib'):.0f}",
                         f"{r['ours'] / r['n']:.2f}", ratio, vs_crun])
    md = ["# Density: idle guests on one host", "", f"{today()}, {machine()}.",
          "Guests start one after another, each series from the same baseline. At each count, "
          "after a settle and a dropped page cache: what the host spends per guest beyond the "
          "guest's own processes (the kernel's slab, page tables, kernel stacks, per-CPU "
          "and vmalloc memory over the baseline, plus the PSS of processes the runtime leaves on the host), "
          "the PSS of the guests' own processes, and the runtime's resident processes. "
          "Ratio: beyond-the-guest memory over vserver's (own netns) at the same count; "
          "start vs crun: the start-all time over crun's at the same count.", "",
          *table(head, rows), ""]
    cmd_rows = [[name, *[f"{s['commands'][c]:.1f}" for c in
                         ("list", "list --json", "status", "exec /bin/true")]]
                for name, s in series.items() if s.get("commands")]
    if cmd_rows:
        md += [f"Commands with all {n} guests running (median of 5, ms):", "",
               *table(["series", "list", "list --json", "status NAME", "exec NAME /bin/true"],
                      cmd_rows), ""]
    sa = series.get("vserver, own netns", {}).get("start_all_s")
    if sa is not None:
        notes["vserver start --all"] = (f"{n} guests from none running in {sa:.2f} s "
                                        f"({1000 * sa / n:.1f} ms each; one process per CPU)")
    md += [f"- {k}: {v}" for k, v in notes.items()]
    for name, s in series.items():
        if s.get("error"):
            md.append(f"- {name} stopped at {s['fit']}: {s['error']}")
    write(out, "density", md, res)


if __name__ == "__main__":
    main()
