#!/usr/bin/python3
"""Start time: /bin/true in a fresh isolated context from one busybox root,
vserver beside crun, runc, bubblewrap, LXC and systemd-nspawn; then a guest's
detached start and an exec into a running guest beside crun's.

Every figure comes from hyperfine -N, in rounds: each round runs every command
of a table (a warm-up, then a block of runs), so slow drift of the machine
reaches all commands alike.  Each configuration is measured with and without
its own network namespace where the tool has the choice, and what it isolates
is written beside it.

  bench/start.py [--quick|--smoke]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchlib import (REPO, V, deny_list, in_cgroup_v1_view, install, machine, oci_spec, rmdirs,
                      sh, table, today, write)

PEERS = {"hyperfine": "hyperfine", "crun": "crun", "runc": "runc", "bwrap": "bubblewrap",
         "lxc-execute": "lxc", "systemd-nspawn": "systemd-container"}
CAPS = ("chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap setfcap "
        "net_bind_service sys_chroot audit_write")


def rounds_of(cmds, rounds, runs, warmup):
    """cmds: (name, command, prepare or None); returns name -> list of seconds."""
    times = {name: [] for name, _, _ in cmds}
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        for _ in range(rounds):
            args = ["hyperfine", "-N", "--style", "none", "-w", str(warmup), "-r", str(runs),
                    "--export-json", out.name]
            if any(p for _, _, p in cmds):
                for name, cmd, prep in cmds:
                    args += ["--prepare", prep or "true", "-n", name, cmd]
            else:
                for name, cmd, _ in cmds:
                    args += ["-n", name, cmd]
            sh(*args, stdout=subprocess.DEVNULL)
            for r in json.load(open(out.name))["results"]:
                times[r["command"]] += r["times"]
    return times


def bundles(work, root):
    """OCI bundles for crun and runc from the same root: /bin/true with and
    without a network namespace, and a sleeper for detached starts."""
    b = work / "oci"
    spec = oci_spec(b, root, ["/bin/true"])
    (b / "config.json").write_text(json.dumps(spec))
    hostnet = json.loads(json.dumps(spec))
    hostnet["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                      if n["type"] != "network"]
    sleeper = json.loads(json.dumps(spec))
    sleeper["process"]["args"] = ["/bin/sleep", "1000000"]
    for name, c in (("hostnet", hostnet), ("sleep", sleeper)):
        (work / name).mkdir()
        (work / name / "config.json").write_text(json.dumps(c))
    return b


def lxc_config(work, root, deny):
    """An LXC container on the same root with our caps and seccomp deny list."""
    d = work / "lxc/t"
    d.mkdir(parents=True)
    (d / "seccomp").write_text("2\ndenylist\n" + "".join(f"{n} errno 1\n" for n in deny))
    (d / "config").write_text(
        f"lxc.uts.name = t\nlxc.rootfs.path = dir:{root}\nlxc.net.0.type = empty\n"
        "lxc.mount.auto = proc:mixed sys:ro\nlxc.autodev = 1\n"
        f"lxc.cap.keep = {CAPS}\nlxc.seccomp.profile = {d / 'seccomp'}\n"
        "lxc.cgroup.relative = 1\nlxc.cgroup.dir.container = vs-bench-start-lxc\n"
        "lxc.cgroup.dir.monitor = vs-bench-start-lxcm\n")
    return work / "lxc"


class NoGracePeriod:
    """What a host with favordynmods on its cgroup mounts (or cgroup2 alone) would
    see: a helper moves itself within a cgroup of its own every millisecond, which
    keeps the cgroup rwsem in its writer mode, so no one's v1 join waits an RCU
    grace period.  Forks and exits pay the rwsem's slow side meanwhile, as they do
    with favordynmods.  The helper's cgroup is ours, and goes with it."""

    def __enter__(self):
        own = [l.split(":")[2].strip() for l in open("/proc/self/cgroup")
               if l.split(":")[1] == "pids"]
        if not own:  # cgroup2 alone: no join waits, nothing to keep
            self.proc = None
            return self
        self.dir = Path(f"/sys/fs/cgroup/pids{own[0].rstrip('/')}/vs-bench-start-keep")
        self.dir.mkdir(exist_ok=True)
        code = ("import os, time\n"
                f"fd = os.open('{self.dir}/cgroup.procs', os.O_WRONLY)\n"
                "while True:\n    os.write(fd, b'0'); time.sleep(0.001)\n")
        self.proc = subprocess.Popen(["python3", "-c", code])
        return self

    def __exit__(self, *exc):
        if not self.proc:
            return
        self.proc.kill()
        self.proc.wait()
        self.dir.rmdir()


def summarize(times, base_name):
    base = statistics.median(times[base_name])
    out = []
    for name, t in times.items():
        m = statistics.median(t)
        out.append({"what": name, "median_ms": 1000 * m, "min_ms": 1000 * min(t),
                    "p90_ms": 1000 * sorted(t)[int(0.9 * (len(t) - 1))],
                    "stddev_ms": 1000 * statistics.stdev(t) if len(t) > 1 else 0.0,
                    "runs": len(t), "ratio": m / base})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    rounds, runs, warmup = (1, 1, 0) if a.smoke else (3, 4, 1) if a.quick else (10, 10, 1)
    install(PEERS)
    work = Path(tempfile.mkdtemp(prefix="vs-bench-start."))
    # a smoke run writes where the caller says (the tests: their own directory)
    out = Path(os.environ.get("VS_BENCH_OUT") or tempfile.mkdtemp()) if a.smoke else REPO / "bench/results"
    os.environ["VSERVER_CGROUP_PARENT"] = "vs-bench-start"
    root = work / "rootfs"
    sh(REPO / "tools/mkrootfs.sh", root)
    (root / "usr").mkdir()  # systemd-nspawn wants to see an OS tree
    deny = deny_list()
    oci = bundles(work, root)
    lxcpath = lxc_config(work, root, deny)
    hostnet, sleep = work / "hostnet", work / "sleep"
    r = str(root)
    host = [
        ("vserver run (own netns; seccomp, caps, cgroup)", f"{V} run --rootfs {r} -- /bin/true"),
        ("vserver run --userns (own user ns, idmapped root; own netns; seccomp, caps, cgroup)",
         f"{V} run --userns=1879048192 --rootfs {r} -- /bin/true"),
        ("vserver run --net host (seccomp, caps, cgroup)", f"{V} run --net host --rootfs {r} -- /bin/true"),
        ("vserver run --net host --seccomp none (caps, cgroup)",
         f"{V} run --net host --seccomp none --rootfs {r} -- /bin/true"),
        ("runc run (own netns; seccomp, caps, cgroup)", f"runc run --bundle {oci} vs-bench-runc"),
        ("runc run, host net (seccomp, caps, cgroup)", f"runc run --bundle {hostnet} vs-bench-runc2"),
        ("lxc-execute (own netns; seccomp, caps, cgroup)", f"lxc-execute -P {lxcpath} -n t -- /bin/true"),
        ("systemd-nspawn --private-network (own netns; seccomp, caps; no cgroup of its own)",
         f"systemd-nspawn -q --register=no --keep-unit --private-network -D {r} /bin/true"),
        ("systemd-nspawn (seccomp, caps; no cgroup of its own)",
         f"systemd-nspawn -q --register=no --keep-unit -D {r} /bin/true"),
        ("bwrap --unshare-all (own netns; no seccomp, no cgroup)",
         f"bwrap --unshare-all --bind {r} / --proc /proc --dev /dev /bin/true"),
        ("bwrap --unshare-all --share-net (no seccomp, no cgroup)",
         f"bwrap --unshare-all --share-net --bind {r} / --proc /proc --dev /dev /bin/true"),
    ]
    res = {"date": today(), "machine": machine(), "rounds": rounds, "runs_per_round": runs}
    try:
        res["host"] = summarize(rounds_of([(n, c, None) for n, c in host], rounds, runs, warmup),
                                host[0][0])

        def v1():
            v1cmds = [
                ("vserver run (own netns; seccomp, caps, cgroup)", f"{V} run --rootfs {r} -- /bin/true"),
                ("vserver run --net host (seccomp, caps, cgroup)",
                 f"{V} run --net host --rootfs {r} -- /bin/true"),
                ("crun run (own netns; seccomp, caps, cgroup)", f"crun run --bundle {oci} vs-bench-crun"),
                ("crun run, host net (seccomp, caps, cgroup)",
                 f"crun run --bundle {hostnet} vs-bench-crun2"),
            ]
            t1 = summarize(rounds_of([(n, c, None) for n, c in v1cmds], rounds, runs, warmup),
                           v1cmds[0][0])
            env = dict(os.environ, VSERVER_ROOT=str(work / "inst"))
            os.environ.update(env)
            for g in ("bg", "bx"):
                sh(V, "build", g, "--net", "none", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            sh(V, "build", "bn", "--net", "none", "--no-userns", stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
            sh(V, "start", "bx", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
            sh("crun", "run", "-d", "--bundle", sleep, "vs-bench-cx",
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                g = [("vserver start (busybox init; own user ns; own netns; seccomp, caps, cgroup)",
                      f"{V} start bg", f"{V} stop bg --timeout 0"),
                     ("vserver start, userns = no (guest root is host root)",
                      f"{V} start bn", f"{V} stop bn --timeout 0"),
                     ("crun run -d (sleep; own netns; seccomp, caps, cgroup)",
                      f"crun run -d --bundle {sleep} vs-bench-cd",
                      "crun delete -f vs-bench-cd"),
                     ("vserver exec /bin/true into a running guest", f"{V} exec bx -- /bin/true", None),
                     ("crun exec /bin/true into a running container",
                      "crun exec vs-bench-cx /bin/true", None)]
                t = rounds_of(g, rounds, runs, warmup)
                names = [x[0] for x in g]
                t2 = (summarize({k: t[k] for k in names[:3]}, names[0]) +
                      summarize({k: t[k] for k in names[3:]}, names[3]))
                with NoGracePeriod():
                    t3 = summarize(rounds_of([(n, c, None) for n, c in v1cmds[::2]], rounds,
                                             runs, warmup), v1cmds[0][0])
                    t = rounds_of([g[0], g[2]], rounds, runs, warmup)
                    t3 += summarize({k: t[k] for k in (names[0], names[2])}, names[0])
            finally:
                subprocess.run([V, "stop", "--all", "--timeout", "0"], capture_output=True)
                for x in ("bg", "bx", "bn"):
                    subprocess.run([V, "delete", "--force", x], capture_output=True)
                for c in ("vs-bench-cd", "vs-bench-cx"):
                    subprocess.run(["crun", "delete", "-f", c], capture_output=True)
            return {"cgroup_v1_only": t1, "guests": t2, "no_grace_period": t3}
        got = in_cgroup_v1_view(v1)
        if "error" in got:
            raise SystemExit(f"bench/start.py: cgroup v1 view: {got['error']}")
        res.update(got)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        rmdirs(["vs-bench-start*", "lxc.pivot"])

    md = ["# Start: /bin/true in a fresh isolated context", "",
          f"{res['date']}, {res['machine']}.",
          f"{rounds} rounds of {runs} runs per command after a warm-up (hyperfine -N); each "
          "round runs every command of its table. Ratio: the median over the first row's "
          "median in the same table (or pair); above 1 is slower than vserver.", ""]
    titles = (("host", "Hybrid host as it is (cgroup v1 controllers + cgroup2 tree)"),
              ("cgroup_v1_only", "Private mount namespace with the cgroup2 tree hidden "
               "(crun refuses hybrid hosts)"),
              ("guests", "Guests (cgroup v1 view, as above): a detached start until PID 1 "
               "runs, and an exec into a running guest; ratios within each pair"),
              ("no_grace_period", "The same with no join waiting an RCU grace period, as on a "
               "host with favordynmods or cgroup2 alone (a helper keeps the cgroup rwsem in its "
               "writer mode; bench/start.py NoGracePeriod); ratios within each pair"))
    head = ["what (isolation)", "median ms", "min ms", "p90 ms", "stddev ms", "ratio"]
    for key, title in titles:
        md += [f"## {title}", "", *table(head, [
            [x["what"], f"{x['median_ms']:.2f}", f"{x['min_ms']:.2f}", f"{x['p90_ms']:.2f}",
             f"{x['stddev_ms']:.2f}", f"{x['ratio']:.2f}"] for x in res[key]]), ""]
    write(out, "start", md, res)


if __name__ == "__main__":
    main()
