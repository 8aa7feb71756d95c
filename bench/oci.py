#!/usr/bin/python3
"""The OCI runtimes side by side: `run` of /bin/true from the same bundle with
vserver-runc, crun and runc, then `podman run --rm` with each as its runtime.

Everything runs in a private mount namespace where the cgroup2 tree is hidden
(crun refuses hybrid hosts), so the three make the same cgroups on the same v1
controllers.  The bundle is runc's default spec (pid, mount, ipc, uts and
network namespaces, runc's caps, masked paths) with our seccomp deny list, so
no runtime wins by loading no filter.  hyperfine -N, in rounds: each round
runs every command of a table.

  bench/oci.py [--quick|--smoke]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchlib import REPO, in_cgroup_v1_view, install, machine, oci_spec, rmdirs, sh, table, \
    today, write
from start import rounds_of, summarize

PEERS = {"hyperfine": "hyperfine", "crun": "crun", "runc": "runc", "podman": "podman",
         "conmon": "conmon"}
RUNC = str(REPO / "build/vserver-runc")
RUNTIMES = (("vserver-runc", RUNC), ("crun", "crun"), ("runc", "runc"))
ULIMITS = "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    rounds, runs, warmup = (1, 1, 0) if a.smoke else (3, 4, 1) if a.quick else (10, 10, 1)
    install(PEERS)
    work = Path(tempfile.mkdtemp(prefix="vsob-"))  # podman's runroot: at most 50 characters
    out = Path(os.environ.get("VS_BENCH_OUT") or tempfile.mkdtemp()) if a.smoke else REPO / "bench/results"
    root = work / "rootfs"
    sh(REPO / "tools/mkrootfs.sh", root)
    bundles = {}
    for name, _ in RUNTIMES:
        spec = oci_spec(work / f"b-{name}", root, ["/bin/true"])
        spec["linux"]["cgroupsPath"] = f"/vs-bench-oci-{name}"
        (work / f"b-{name}" / "config.json").write_text(json.dumps(spec))
        bundles[name] = work / f"b-{name}"

    def measure():
        run = [(f"{name} run /bin/true (own netns; seccomp, caps, cgroup)",
                f"{prog} --root {work}/state-{name} run --bundle {bundles[name]} vs-bench-{name}",
                None) for name, prog in RUNTIMES]
        pm = (f"podman --root {work}/pm --runroot {work}/pr --storage-driver vfs "
              f"--cgroup-manager cgroupfs --events-backend file --tmpdir {work}/pt")
        (work / "pt").mkdir(exist_ok=True)
        # each runtime's state under the bench's directory (podman passes no --root of its own)
        pod = [(f"podman run --rm --runtime {name} (conmon; own netns; podman's seccomp)",
                f"{pm} --runtime {shutil.which(prog) or prog} --runtime-flag root={work}/pr-{name} "
                f"run --rm --network none {ULIMITS} "
                f"--cgroup-parent /vs-bench-oci-podman --rootfs {root} /bin/true", None)
               for name, prog in RUNTIMES]
        t1 = summarize(rounds_of(run, rounds, runs, warmup), run[0][0])
        t2 = summarize(rounds_of(pod, rounds, max(1, runs // 2), warmup), pod[0][0])
        return {"run": t1, "podman": t2}

    res = {"date": today(), "machine": machine(), "rounds": rounds, "runs_per_round": runs}
    try:
        got = in_cgroup_v1_view(measure)
        if "error" in got:
            raise SystemExit(f"bench/oci.py: {got['error']}")
        res.update(got)
    finally:
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        rmdirs(["vs-bench-oci*"])

    md = ["# OCI runtimes: vserver-runc beside crun and runc", "",
          f"{res['date']}, {res['machine']}.",
          f"{rounds} rounds of {runs} runs per command (podman: half as many) after a warm-up "
          "(hyperfine -N), in a private mount namespace with the cgroup2 tree hidden (crun "
          "refuses hybrid hosts), so all three use the same v1 controllers. The same bundle: "
          "runc's default spec with our seccomp deny list. Ratio: the median over the first "
          "row's; above 1 is slower than vserver-runc.", ""]
    head = ["what (isolation)", "median ms", "min ms", "p90 ms", "stddev ms", "ratio"]
    for key, title in (("run", "`RUNTIME run` of /bin/true from one bundle"),
                       ("podman", "`podman run --rm /bin/true`, each as podman's runtime")):
        md += [f"## {title}", "", *table(head, [
            (r["what"], f"{r['median_ms']:.2f}", f"{r['min_ms']:.2f}", f"{r['p90_ms']:.2f}",
             f"{r['stddev_ms']:.2f}", f"{r['ratio']:.2f}") for r in res[key]]), ""]
    write(out, "oci", md, res)


if __name__ == "__main__":
    main()
