"""The bench harness runs (one iteration each) so it does not rot; no timing is asserted."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO


@pytest.fixture(autouse=True)
def bench_out(workdir, monkeypatch):
    """Smoke runs write their tables under the test's own directory (removed at the end)."""
    monkeypatch.setenv("VS_BENCH_OUT", str(workdir / "bench-out"))


def test_start_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "start.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [l for l in p.stdout.splitlines() if l.startswith("| ") and "median" not in l]
    names = " ".join(rows)
    for peer in ("vserver run (own netns", "vserver run --userns", "vserver run --net host",
                 "vserver start, userns = no", "runc run (own netns",
                 "runc run, host net", "crun run (own netns", "crun run, host net",
                 "lxc-execute", "systemd-nspawn --private-network", "bwrap --unshare-all",
                 "vserver start", "crun run -d", "vserver exec", "crun exec"):
        assert peer in names, peer + "\n" + p.stdout
    for r in rows:
        assert re.search(r"\| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|$", r), r


def test_oci_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "oci.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [l for l in p.stdout.splitlines() if l.startswith("| ") and "median" not in l]
    names = " ".join(rows)
    for what in ("vserver-runc run", "crun run", "runc run", "--runtime vserver-runc",
                 "--runtime crun", "--runtime runc"):
        assert what in names, what + "\n" + p.stdout
    for r in rows:
        assert re.search(r"\| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|$", r), r


def test_density_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "density.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {}
    for l in p.stdout.splitlines():
        m = re.match(r"\| \*\*(.+?)\*\* \(", l)
        if m:
            rows[m.group(1)] = [c.strip() for c in l.strip("|").split("|")]
    assert set(rows) == {"vserver, own netns", "vserver, own netns, no userns",
                         "vserver, net isolate", "vserver, net isolate, no userns",
                         "vserver, own netns, one sleeper", "vserver, net isolate, one sleeper",
                         "vserver, own netns, as crun's", "vserver, net isolate, as crun's",
                         "crun run -d", "crun run -d, own trees", "lxc-start -d"}, p.stdout
    for name, cols in rows.items():
        assert cols[1] == "3", (name, cols)  # three guests ran
        for c in cols[2:9]:
            assert re.fullmatch(r"-?\d+(\.\d+)?", c), (name, cols)
    # what each runtime leaves resident on the host: vserver one console keeper for all
    # guests (3 here), LXC a monitor each; the first series may also start the host's view
    # server (two processes, for every guest), which the later ones find running
    assert rows["vserver, own netns"][8] in ("0.33", "1.00"), rows["vserver, own netns"]
    for name in ("vserver, net isolate", "vserver, own netns, one sleeper",
                 "vserver, net isolate, one sleeper", "vserver, own netns, as crun's",
                 "vserver, net isolate, as crun's"):
        assert rows[name][8] == "0.33", (name, rows[name])
    # one sleeper as crun's: its guests' own processes weigh less than busybox init + syslogd
    assert float(rows["vserver, own netns, one sleeper"][7]) < float(rows["vserver, own netns"][7])
    assert rows["lxc-start -d"][8] == "1.00", rows["lxc-start -d"]
    assert int(rows["lxc-start -d"][6]) > 0  # the monitors' memory is counted


def test_kobjects_bench_runs(workdir):
    env = dict(os.environ, VS_BENCH_OUT=str(workdir / "bench-kobj"))
    p = subprocess.run([str(REPO / "bench" / "kobjects.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = dict(re.findall(r"^\| (.+?) \| (-?[\d.]+) \|$", p.stdout, re.M))
    for what in ("net namespace", "mount namespace", "user namespace", "cgroup in cgroup2"):
        assert what in rows, what + "\n" + p.stdout
    # a network namespace is the costly one (loopback, sysctls, per-CPU stats)
    assert float(rows["net namespace"]) > 20, p.stdout
    # what it made is gone
    assert not [d for d in Path("/sys/fs/cgroup").glob("**/vs-bench-kobj-*")]


def test_overhead_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "overhead.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    for test in ("getpid(2)", "ioctl(2) TCGETS", "open + close", "stat(2)", "fork + exec + wait",
                 "tree walk, per entry", "TCP 1-byte round trip", "TCP bulk"):
        assert re.search(rf"\| {re.escape(test)}[^|]* \| [\d.]+ [nµ]s ±\d+% \|"
                         r"( [\d.]+ [nµ]s ±\d+% \(\*\*\d+\.\d\d\*\*\) \|){3}$",
                         p.stdout, re.M), test + "\n" + p.stdout


def test_views_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "views.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    for test in ("read /proc/meminfo", "uname(2)", "sysinfo(2)"):
        # host, then three guest configurations with their ratios (lxcfs: full runs only)
        assert re.search(rf"\| {re.escape(test)}[^|]* \| [\d.]+ [nµ]s ±\d+% \|"
                         r"( [\d.]+ [nµ]s ±\d+% \(\*\*\d+\.\d\d\*\*\) \|){3}$",
                         p.stdout, re.M), test + "\n" + p.stdout


def test_disk_bench_runs(workdir):
    p = subprocess.run([str(REPO / "bench" / "disk.py"), "--smoke"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    for series in ("no disk limit", "disk = 1G, image"):
        assert re.search(rf"^\| {re.escape(series)} \| \d+ \| [\d.]+ \| \d+ \| -?\d+ \| -?\d+ \| \d+ \|$",
                         p.stdout, re.M), series + "\n" + p.stdout
    # an image's blocks are what its guest wrote, not its size
    img = re.search(r"^\| disk = 1G, image (?:\| [^|]+ ){5}\| (\d+) \|$", p.stdout, re.M)
    assert img and 0 < int(img.group(1)) < 64 * 1024, p.stdout


def test_charts_from_results(workdir):
    for f in ("start.json", "density.json"):
        shutil.copy(REPO / "bench" / "results" / f, workdir / f)
    p = subprocess.run([str(REPO / "bench" / "plot.py"), str(workdir)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for png in ("start.png", "density.png"):
        data = (workdir / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, png


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
    assert re.search(r"\| unified \(overlay\) \| \d+ \|", p.stdout), p.stdout
    assert re.search(r"\| unified \(overlay\) \| \d+\.\d \|", p.stdout), p.stdout  # its start
