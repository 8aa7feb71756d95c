"""A guest that sees itself: /proc views, sysinfo and uname from the one view server.

Busybox guests with real limits; each test reads what programs read inside
(free, nproc, top, uptime, the /proc and /sys files) and checks the host's
own files are unchanged.  The view server is one host process for all
guests (vserver start starts it); the fault tests kill it.
"""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import compile_static, view_server

HOG_SRC = Path(__file__).parent / "helpers" / "hog.c"
SYSCALLS_SRC = Path(__file__).parent / "helpers" / "syscalls.c"
KIB = 1024


@pytest.fixture(scope="session")
def hog(workdir):
    out = workdir / "vs-hog-views"
    return compile_static(HOG_SRC, out)


def build(vs, hog, name, *opts):
    vs("build", name, *opts, check=True)
    shutil.copy2(hog, vs.rootfs(name) / "bin" / "vs-hog")


def meminfo(text):
    return {l.split(":")[0]: int(l.split()[1]) for l in text.splitlines() if l.endswith(" kB")}


def host_meminfo():
    return meminfo(open("/proc/meminfo").read())


def wait_until(fn, timeout=20, step=0.2):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


def test_memory_and_cpus_are_the_guests_own(vs, hog):
    build(vs, hog, "v1", "--memory", "256M", "--set", "limits.swap=0", "--cpuset", "0")
    vs("start", "v1", check=True)
    m = meminfo(vs.exec_out("v1", "cat /proc/meminfo"))
    assert m["MemTotal"] == 256 * KIB
    assert 0 < m["MemFree"] <= m["MemTotal"] and 0 < m["MemAvailable"] <= m["MemTotal"]
    assert m["SwapTotal"] == 0 and m["SwapFree"] == 0
    # what the host has stays the host's
    assert host_meminfo()["MemTotal"] > 1024 * KIB
    # busybox free takes the total from sysinfo(2): answered for the guest too
    free = vs.exec_out("v1", "free -m").splitlines()
    assert free[1].split()[1] == "256", free
    assert vs.exec_out("v1", "free -k").splitlines()[2].split()[1] == "0"  # no swap
    assert vs.exec_out("v1", "nproc").strip() == "1"
    assert vs.exec_out("v1", "cat /sys/devices/system/cpu/online").strip() == "0"
    cpuinfo = vs.exec_out("v1", "cat /proc/cpuinfo")
    assert cpuinfo.count("processor\t:") == 1
    stat = vs.exec_out("v1", "cat /proc/stat").splitlines()
    assert [l.split()[0] for l in stat if l.startswith("cpu")] == ["cpu", "cpu0"]
    top = vs.exec_out("v1", "top -bn1")
    used, free_k = (int(x.rstrip("K")) for x in top.split()[1:4:2])
    assert 200 * KIB < used + free_k <= 256 * KIB, top
    # the host's own files are untouched
    assert open("/sys/devices/system/cpu/online").read().strip() != "0" or os.cpu_count() == 1
    assert open("/proc/cpuinfo").read().count("processor\t:") == os.cpu_count()
    # the cgroup files it sees at /sys/fs/cgroup say its limit, not "none"
    lim = vs.exec_out("v1", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                            "cat /sys/fs/cgroup/memory.max").strip()
    assert lim == str(256 << 20), lim
    # a live change shows at once
    vs("set", "v1", "limits.memory=512M", check=True)
    assert meminfo(vs.exec_out("v1", "cat /proc/meminfo"))["MemTotal"] == 512 * KIB
    assert vs.exec_out("v1", "free -m").splitlines()[1].split()[1] == "512"
    lim = vs.exec_out("v1", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                            "cat /sys/fs/cgroup/memory.max").strip()
    assert lim == str(512 << 20), lim
    vs("stop", "v1", check=True)


def test_memavailable_follows_what_the_guest_allocates(vs, hog):
    build(vs, hog, "v2", "--memory", "512M")
    vs("start", "v2", check=True)
    before = meminfo(vs.exec_out("v2", "cat /proc/meminfo"))
    vs("exec", "v2", "--", "/bin/sh", "-c", "/bin/vs-hog mem 100 > /tmp/hog 2>&1 &", check=True)
    assert wait_until(lambda: "touched" in vs.exec_out("v2", "cat /tmp/hog"))
    after = meminfo(vs.exec_out("v2", "cat /proc/meminfo"))
    drop = before["MemAvailable"] - after["MemAvailable"]
    print(f"MemAvailable {before['MemAvailable']} -> {after['MemAvailable']} kB")
    assert 90 * KIB <= drop <= 130 * KIB, drop
    assert before["MemFree"] - after["MemFree"] >= 90 * KIB
    # not just the free memory under another name
    assert after["MemAvailable"] >= after["MemFree"]
    vs("stop", "v2", check=True)


def test_cpu_views_follow_a_cpu_limit_and_the_load_is_the_guests(vs, hog):
    # the token bucket at half a CPU: one CPU, rounded up
    build(vs, hog, "v3", "--set", "limits.cpu.fill-rate=1", "--set", "limits.cpu.interval=2",
          "--set", "limits.cpu.hard=yes")
    vs("start", "v3", check=True)
    assert vs.exec_out("v3", "cat /sys/devices/system/cpu/online").strip() == "0"
    assert vs.exec_out("v3", "cat /proc/cpuinfo").count("processor\t:") == 1
    assert vs.exec_out("v3", "nproc").strip() == "1"
    # a busy loop: the guest's load average climbs, its task count is its own
    vs("exec", "v3", "--", "/bin/sh", "-c", "/bin/vs-hog cpu 60 > /dev/null 2>&1 &", check=True)

    def load():
        f = vs.exec_out("v3", "cat /proc/loadavg").split()
        return float(f[0]) >= 0.2 and f

    f = wait_until(load, timeout=40, step=1)
    assert f, vs.exec_out("v3", "cat /proc/loadavg")
    running, total = (int(x) for x in f[3].split("/"))
    host_total = int(open("/proc/loadavg").read().split()[3].split("/")[1])
    assert 1 <= running <= total < 20 < host_total, (f, host_total)
    up = vs.exec_out("v3", "uptime")
    assert "load average: " + f[0][:3] in up or "load average: " in up
    la = [float(x.rstrip(",")) for x in up.split("load average:")[1].split()]
    assert la[0] >= 0.2, up  # sysinfo(2): the guest's load too
    s = vs.exec_out("v3", "cat /proc/stat")
    assert int(s.splitlines()[0].split()[1]) > 0  # its user time
    assert "procs_running" in s
    # the bucket made soft (a weight, no cap): every CPU again, live, its busy loop too
    vs("set", "v3", "limits.cpu.hard=no", check=True)
    n = str(os.cpu_count())
    assert vs.exec_out("v3", "grep -c '^processor' /proc/cpuinfo").strip() == n
    assert vs.exec_out("v3", "nproc").strip() == n
    hog = vs.exec_out("v3", "pidof vs-hog").split()[0]
    allowed = vs.exec_out("v3", f"grep Cpus_allowed_list /proc/{hog}/status").split()[1]
    assert allowed == (f"0-{os.cpu_count() - 1}" if os.cpu_count() > 1 else "0"), allowed
    vs("stop", "v3", check=True)


def test_uname_keys_and_the_host_kernel(vs, hog):
    build(vs, hog, "v4", "--uname-release", "2.6.32-vs", "--uname-version", "#1 VServer",
          "--uname-machine", "i686")
    build(vs, hog, "v5")
    vs("start", "v4", check=True)
    vs("start", "v5", check=True)
    assert vs.exec_out("v4", "uname -r").strip() == "2.6.32-vs"
    assert vs.exec_out("v4", "uname -v").strip() == "#1 VServer"
    assert vs.exec_out("v4", "uname -m").strip() == "i686"
    assert vs.exec_out("v4", "uname -n").strip() == "v4"  # its own UTS namespace still
    assert vs.exec_out("v4", "cat /proc/sys/kernel/osrelease").strip() == "2.6.32-vs"
    assert vs.exec_out("v4", "cat /proc/sys/kernel/version").strip() == "#1 VServer"
    version = vs.exec_out("v4", "cat /proc/version")
    assert version.startswith("Linux version 2.6.32-vs ") and "#1 VServer" in version
    # a guest without the keys, and the host, keep the host's kernel
    host = os.uname()
    assert vs.exec_out("v5", "uname -r").strip() == host.release
    assert vs.exec_out("v5", "uname -m").strip() == host.machine
    assert vs.exec_out("v5", "cat /proc/version") == open("/proc/version").read()
    assert subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip() \
        == host.release
    # the keys are in the file and change with vserver set (at the next start)
    assert 'uname.release = "2.6.32-vs"' in vs.conf("v4").read_text()
    vs("set", "v4", "guest.uname.release=3.10-old", "--save", check=True)
    vs("restart", "v4", check=True)
    assert vs.exec_out("v4", "uname -r").strip() == "3.10-old"
    for bad in ("guest.uname.release=", "guest.uname.machine=x 86",
                "guest.uname.release=" + "x" * 65):
        p = vs("set", "v4", bad, "--save")
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    vs("stop", "v4", check=True)
    vs("stop", "v5", check=True)


def call(vs, name, *args):
    """What the helper made of one system call in the guest: ok or the errno name."""
    return vs("exec", name, "--", "/bin/vs-syscalls", *args).stdout.strip()


def test_the_views_and_the_deny_list_are_one_filter(vs, hog, tmp_path):
    """With the built-in list, uname and sysinfo go to the view server from the
    same filter as the deny list: the kernel runs one program, not two, on each
    call its cache cannot answer.  A list of the guest's own may deny uname: then
    it stays a filter of its own, and its deny wins over the notification."""
    build(vs, hog, "v10", "--memory", "256M", "--uname-release", "2.6.32-vs")
    compile_static(SYSCALLS_SRC, vs.rootfs("v10") / "bin" / "vs-syscalls")
    vs("start", "v10", check=True)
    assert "Seccomp_filters:\t1\n" in vs.exec_out("v10", "cat /proc/self/status")
    assert vs.exec_out("v10", "uname -r").strip() == "2.6.32-vs"
    assert vs.exec_out("v10", "free -m").splitlines()[1].split()[1] == "256"
    assert call(vs, "v10", "uname-null") == "EFAULT"
    # the deny list is whole behind it: lsm_set_self_attr (460) and keyctl (250)
    assert call(vs, "v10", "nr", "460") == "EPERM"
    assert call(vs, "v10", "nr", "250") == "EPERM"
    # through the i386 ABI too, where the host's kernel has one (a kernel without
    # it kills the caller on the host and in the guest alike: no answer)
    host = subprocess.run([str(vs.rootfs("v10") / "bin" / "vs-syscalls"), "i386-getpid"],
                          capture_output=True, text=True).stdout.strip()
    assert call(vs, "v10", "i386-keyctl") == ("EPERM" if host == "ok" else "")
    vs("stop", "v10", check=True)
    own = tmp_path / "deny-uname"
    own.write_text("uname\n")
    vs("set", "v10", f"security.seccomp={own}", "--save", check=True)
    vs("start", "v10", check=True)
    assert "Seccomp_filters:\t2\n" in vs.exec_out("v10", "cat /proc/self/status")
    assert call(vs, "v10", "uname-null") == "EPERM"
    assert vs.exec_out("v10", "free -m").splitlines()[1].split()[1] == "256"
    assert call(vs, "v10", "nr", "250") == "EPERM"
    vs("stop", "v10", check=True)


def test_a_guest_without_views_sees_the_host(vs, hog):
    build(vs, hog, "v6", "--memory", "256M", "--views", "no")
    vs("start", "v6", check=True)
    m = meminfo(vs.exec_out("v6", "cat /proc/meminfo"))
    assert m["MemTotal"] == host_meminfo()["MemTotal"]
    assert "fuse" not in vs.exec_out("v6", "cat /proc/self/mountinfo")
    vs("stop", "v6", check=True)


def test_odd_reads_of_a_view(vs, hog):
    build(vs, hog, "v7", "--memory", "256M")
    vs("start", "v7", check=True)
    whole = vs.exec_out("v7", "cat /proc/meminfo")
    # byte by byte, from an offset, past the end, many readers at once
    assert vs.exec_out("v7", "dd if=/proc/meminfo bs=1 2>/dev/null | head -1").strip() \
        == whole.splitlines()[0]
    assert vs.exec_out("v7", "dd if=/proc/meminfo bs=1 skip=10 count=5 2>/dev/null") \
        == whole[10:15]
    assert vs.exec_out("v7", "dd if=/proc/meminfo bs=4096 skip=1000 2>/dev/null") == ""
    out = vs.exec_out("v7", "for i in $(seq 50); do cat /proc/meminfo > /dev/null & done; "
                            "wait; head -1 /proc/meminfo")
    assert out.strip() == whole.splitlines()[0]
    # written to: refused
    p = vs("exec", "v7", "--", "/bin/sh", "-c", "echo x > /proc/meminfo")
    assert p.returncode != 0
    vs("stop", "v7", check=True)


def test_a_call_the_killed_worker_held_is_answered(vs, hog):
    """A worker killed between taking a uname or sysinfo call and answering it: the
    next worker answers it (nobody else can take it again: the caller would wait for
    good).  The worker is held there by making the guest's record, which it reads
    before each answer, a FIFO nobody writes."""
    build(vs, hog, "v9", "--memory", "256M", "--uname-release", "2.6.32-vs")
    compile_static(SYSCALLS_SRC, vs.rootfs("v9") / "bin" / "vs-syscalls")
    vs("start", "v9", check=True)
    ctx = json.loads(vs("status", "v9", "--json", check=True).stdout)["context"]
    record = Path(f"/run/vserver-host/views.d/{ctx}")
    text = record.read_text()
    vs("exec", "v9", "--", "/bin/sh", "-c", "/bin/vs-syscalls calls /n1 &", check=True)
    count = lambda: int((vs.rootfs("v9") / "n1").read_text() or 0)
    assert wait_until(lambda: count() > 100)
    fifo = record.with_name(f"{ctx}.fifo")
    os.mkfifo(fifo, 0o600)
    os.rename(fifo, record)
    # the worker takes the next call and opens the FIFO: the caller stops
    def stopped():
        before = count()
        time.sleep(0.5)
        return count() == before
    assert wait_until(stopped)
    keeper, worker = view_server()
    tmp = record.with_name(f"{ctx}.tmp")
    tmp.write_text(text)
    os.rename(tmp, record)
    os.kill(worker, signal.SIGKILL)
    assert wait_until(lambda: (view_server() or (0, worker))[1] != worker)
    before = count()
    assert wait_until(lambda: count() > before + 100, timeout=10), \
        "the call the killed worker took is still waiting"
    assert vs.exec_out("v9", "uname -r").strip() == "2.6.32-vs"
    vs("stop", "v9", "--timeout", "0", check=True)


def test_killed_view_server_comes_back(vs, hog):
    build(vs, hog, "v8", "--memory", "256M", "--uname-release", "2.6.32-vs")
    vs("start", "v8", check=True)
    # a process started before the kill keeps asking
    vs("exec", "v8", "--", "/bin/sh", "-c",
       "while :; do head -1 /proc/meminfo; uname -r; free | sed -n 2p; sleep 0.2; done "
       "> /tmp/reads 2>&1 &", check=True)
    keeper, worker = view_server()
    os.kill(worker, signal.SIGKILL)
    # the keeper starts another worker, which binds the views back: reads fail briefly
    def another():
        v = view_server()  # read once: the keeper may be rewriting its lock file
        return v if v and v[1] != worker else None
    new = wait_until(another)
    assert new and new[0] == keeper
    # the loop goes on: its last round read all three again
    def answered():
        tail = vs.exec_out("v8", "tail -3 /tmp/reads").splitlines()
        ok = ("MemTotal:         262144 kB" in tail and "2.6.32-vs" in tail and
              any(l.split()[1:2] == ["262144"] for l in tail if l.startswith("Mem:")))
        return ok or print(tail)
    assert wait_until(answered, timeout=10)
    # the whole server killed: views fail; the next start of any guest brings them back
    os.kill(keeper, signal.SIGKILL)
    os.kill(new[1], signal.SIGKILL)
    time.sleep(0.5)
    p = vs("exec", "v8", "--", "/bin/cat", "/proc/meminfo")
    # (exec itself starts a server: the views are back by the time it runs)
    assert p.returncode == 0 and "MemTotal:         262144 kB" in p.stdout, p.stderr
    build(vs, hog, "v9")
    vs("start", "v9", check=True)
    assert meminfo(vs.exec_out("v8", "cat /proc/meminfo"))["MemTotal"] == 256 * KIB
    assert vs.exec_out("v8", "uname -r").strip() == "2.6.32-vs"
    vs("stop", "v9", check=True)
    vs("stop", "v8", check=True)


def test_one_server_for_all_guests(vs, hog):
    for n in ("w1", "w2", "w3"):
        build(vs, hog, n, "--memory", f"{64 * (int(n[1]) + 1)}M")
        vs("start", n, check=True)
    servers = [p for p in os.listdir("/proc") if p.isdigit()
               and _comm(p) == "vserver-views"]
    assert len(servers) == 1
    for n in ("w1", "w2", "w3"):
        total = meminfo(vs.exec_out(n, "cat /proc/meminfo"))["MemTotal"]
        assert total == 64 * (int(n[1]) + 1) * KIB
        vs("stop", n, check=True)


def _comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""
