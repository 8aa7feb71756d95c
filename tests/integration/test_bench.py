"""The bench harness runs (one iteration each) so it does not rot; no timing is asserted."""
import re
import subprocess

from conftest import REPO


def test_bench_harness_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "run.sh"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [l for l in p.stdout.splitlines() if l.startswith("| ") and "median" not in l]
    names = " ".join(rows)
    for peer in ("vserver run", "runc run", "bwrap", "crun run"):
        assert peer in names, p.stdout
    for r in rows:
        assert re.search(r"\| \d+\.\d\d \| \d+\.\d\d \|", r), r


def test_limits_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "limits.sh"), "--smoke"], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"token bucket.*\| 25\.0% of one CPU \| \d+\.\d%", p.stdout), p.stdout
    assert re.search(r"cpu.weight 100 : 300 \| 1 : 3\.00 \| 1 : \d+\.\d\d", p.stdout), p.stdout


def test_net_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "net.sh"), "--smoke"], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    for mode in ("isolate", "netns", "host"):
        assert re.search(rf"\| {mode} \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d \| \d+\.\d\d \|",
                         p.stdout), p.stdout


def test_unify_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "unify.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    for tool in ("vserver unify", "jdupes -L", "rdfind", "hardlink", "duperemove -dr"):
        assert re.search(rf"\| {re.escape(tool)} \| (ext4|btrfs) \| \d+\.\d\d \|", p.stdout), tool
    # vserver merges nothing whose metadata differed
    assert re.search(r"\| vserver unify \| ext4 \|[^\n]*\| 0 \| 1\.00 \|", p.stdout), p.stdout
    assert re.search(r"\| unified \| \d+ \|", p.stdout), p.stdout
