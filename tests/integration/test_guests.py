"""Named guests: build, start, stop, exec, enter, status, list, ps, kill, delete."""
import json
import os
import re
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import REPO, VSERVER, cgroup_dirs, process_ended, pty_session


def wait_for(cond, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def guest_pids(vs, name):
    """Host pids in the guest's cgroup tree (the cgroup2 one on hybrid hosts)."""
    pids = set()
    for d in vs.cgroup(name):
        for dirpath, _dirs, files in os.walk(d):
            if "cgroup.procs" in files:
                pids |= {int(x) for x in open(os.path.join(dirpath, "cgroup.procs")).read().split()}
    return pids


def test_build_busybox(vs):
    p = vs("build", "web1", check=True)
    assert "built web1 (context 1000) from busybox" in p.stderr
    conf = vs.conf("web1").read_text()
    assert "context = 1000" in conf and "hostname = web1" in conf
    root = vs.rootfs("web1")
    assert (root / "bin/busybox").stat().st_size > 100000
    assert os.readlink(root / "sbin/init") == "/bin/busybox"
    assert "::sysinit:/etc/init.d/rcS" in (root / "etc/inittab").read_text()
    assert not [l for l in (root / "etc/inittab").read_text().splitlines()
                if "getty" in l and not l.startswith("#")]
    assert (root / "etc/hostname").read_text() == "web1\n"
    assert len((root / "etc/machine-id").read_text().strip()) == 32
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    # the guests' trees are closed to host users
    assert (vs.root / "var/lib/vserver/guests").stat().st_mode & 0o777 == 0o700
    # the next one gets the next free context id; a given one must be free
    vs("build", "web2", check=True)
    assert "context = 1001" in vs.conf("web2").read_text()
    p = vs("build", "web3", "--context", "1000")
    assert p.returncode == 1 and "context 1000 is web1's" in p.stderr
    assert not vs.conf("web3").exists()
    p = vs("build", "web1")
    assert p.returncode == 1 and "guest web1 exists" in p.stderr


def test_start_boots_init_as_pid1_with_services(vs):
    vs("build", "web1", "--hostname", "web1.example.org", check=True)
    p = vs("start", "web1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    ps = vs.exec_out("web1", "ps -o pid,comm")
    lines = {l.split()[0]: l.split()[1] for l in ps.strip().splitlines()[1:]}
    assert lines["1"] == "init"
    assert "syslogd" in lines.values()
    assert vs.exec_out("web1", "hostname").strip() == "web1.example.org"
    # init's stdin, stdout and stderr are all its console (none lost at exec)
    fds = vs.exec_out("web1", "for i in 0 1 2; do readlink /proc/1/fd/$i; done").split()
    assert fds == ["/dev/pts/0"] * 3, fds
    # the console log got init's and rcS's output
    assert wait_for(lambda: "web1.example.org is up" in vs.log("web1").read_text())
    # from outside: every process of the guest is in its cgroup leaf where it has one (the
    # hierarchies it may write), none above; in a v1 controller hierarchy in NAME itself
    pids = guest_pids(vs, "web1")
    assert len(pids) >= 2
    for d in vs.cgroup("web1"):
        if os.path.isdir(d + "/guest"):
            assert open(d + "/cgroup.procs").read() == ""
        else:
            assert not os.path.exists(d + "/cgroup.controllers"), d  # never in cgroup2
            assert {int(p) for p in open(d + "/cgroup.procs").read().split()} == pids, d
    # inside: /tmp and /run are tmpfs, the cgroup tree is rooted at the guest
    mounts = vs.exec_out("web1", "cat /proc/mounts")
    assert any(l.split()[1] == "/tmp" and l.split()[2] == "tmpfs" for l in mounts.splitlines())
    assert any(l.split()[1] == "/sys/fs/cgroup/unified" for l in mounts.splitlines())
    assert vs.exec_out("web1", "cat /proc/1/cgroup").strip().endswith("0::/")
    st = json.loads(vs("status", "web1", "--json", check=True).stdout)
    assert st["state"] == "running" and st["processes"] >= 2 and st["init_pid"] in pids
    vs("stop", "web1", check=True)
    p = vs("status", "web1")
    assert p.returncode == 3 and "web1 is stopped" in p.stdout



def keeper_cpu_ticks(log):
    """user + system ticks of the process that holds @log open (the console keeper)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(log)
                   for fd in os.listdir(f"/proc/{pid}/fd")):
                f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                return int(f[11]) + int(f[12])
        except OSError:
            continue
    return None


def test_a_console_that_is_a_log_only_holds_no_pty(vs):
    """console = log: init's output reaches the log through a pipe the keeper reads, and
    the guest opens no pty (its two line disciplines' buffers are 24 KiB a guest)."""
    vs("build", "lg", "--hostname", "lg.example.org", "--set", "guest.console=log", check=True)
    assert "console = log" in vs.conf("lg").read_text()
    vs("start", "lg", check=True)
    fds = vs.exec_out("lg", "for i in 0 1 2; do readlink /proc/1/fd/$i; done").split()
    assert fds[0] == "/dev/null" and fds[1] == fds[2] and fds[1].startswith("pipe:"), fds
    assert vs.exec_out("lg", "ls /dev/pts").split() == ["ptmx"]
    assert wait_for(lambda: "lg.example.org is up" in vs.log("lg").read_text())
    vs.exec_out("lg", "echo said-by-a-service > /proc/1/fd/1")
    assert wait_for(lambda: "said-by-a-service" in vs.log("lg").read_text())
    # /dev/console is the guest's /dev/null: what is written there is lost, without error
    assert vs.exec_out("lg", "echo x > /dev/console && stat -c %t:%T /dev/console").strip() \
        == "1:3"
    vs("stop", "lg", check=True)
    for bad in ("tty", ""):
        p = vs("set", "lg", f"guest.console={bad}", "--save")
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    # an init that closes its output: the keeper lets the pipe go and does not spin on it
    closer = vs.rootfs("lg") / "bin/closer"
    closer.write_text("#!/bin/sh\necho before-close\nexec >&- 2>&-\nexec sleep 100000\n")
    closer.chmod(0o755)
    vs("set", "lg", "guest.init=/bin/closer", "--save", check=True)
    vs("start", "lg", check=True)
    assert wait_for(lambda: "before-close" in vs.log("lg").read_text())
    time.sleep(0.5)
    t0 = keeper_cpu_ticks(vs.log("lg"))
    time.sleep(2)
    t1 = keeper_cpu_ticks(vs.log("lg"))
    assert t0 is not None and t1 - t0 < 20, (t0, t1)
    vs("stop", "lg", check=True)

def test_one_tmpfs_holds_the_guests_scratch_places(vs):
    """/dev, /dev/shm, /run, /run/lock, /tmp and the masks are directories of
    one tmpfs, each mount with its own flags: every superblock on the host
    costs every memory cgroup a slot in its shrinker map."""
    vs("build", "s1", check=True)
    vs("start", "s1", check=True)
    info = vs.exec_out("s1", "cat /proc/self/mountinfo")
    mounts = {}
    for line in info.splitlines():
        f = line.split()
        sep = f.index("-")
        mounts[f[4]] = {"dev": f[2], "root": f[3], "flags": set(f[5].split(",")),
                        "fstype": f[sep + 1]}
    scratch = mounts["/run"]["dev"]
    want = {"/dev": ("/dev", {"nosuid", "noexec"}), "/dev/shm": ("/shm", {"nosuid", "nodev"}),
            "/run": ("/run", {"nosuid", "nodev"}), "/tmp": ("/tmp", {"nosuid", "nodev"}),
            "/run/lock": ("/lock", {"nosuid", "nodev", "noexec"}),
            "/sys/firmware": ("/mask", {"ro", "nosuid", "nodev", "noexec"})}
    for place, (root, flags) in want.items():
        m = mounts[place]
        assert (m["fstype"], m["dev"], m["root"]) == ("tmpfs", scratch, root), (place, m)
        assert flags <= m["flags"], (place, m["flags"])
    assert "nodev" not in mounts["/dev"]["flags"]
    # the cgroup frame is a tmpfs of its own (systemd remounts its superblock read-only)
    assert mounts["/sys/fs/cgroup"]["dev"] != scratch
    # no other tmpfs was made for the guest; the tmpfs root is mounted nowhere
    tmpfs = {m["dev"] for m in mounts.values() if m["fstype"] == "tmpfs"}
    assert tmpfs == {scratch, mounts["/sys/fs/cgroup"]["dev"]}, tmpfs
    assert not any(m["dev"] == scratch and m["root"] == "/" for m in mounts.values())
    # each place is its own mount: nothing moves or links between them
    out = vs.exec_out("s1", "echo x > /tmp/f; ln /tmp/f /run/f 2>&1; ln /tmp/f /dev/f 2>&1; "
                            "mkdir /dev/shm/d && echo shm-ok; touch /run/lock/l && echo lock-ok; "
                            "touch /sys/firmware/m 2>&1; ls -A /sys/firmware | wc -l")
    assert out.count("Invalid cross-device link") == 2, out
    assert "shm-ok" in out and "lock-ok" in out, out
    assert "Read-only file system" in out and out.strip().endswith("0"), out
    vs("stop", "s1", check=True)


def test_exec_passes_stdio_and_exit_code(vs):
    vs("build", "g1", "--set", "limits.nofile=1000:2000", check=True)
    vs("start", "g1", check=True)
    p = vs("exec", "g1", "--", "/bin/sh", "-c", "read x; echo out:$x; echo err >&2; exit 5",
           input="hello\n")
    assert (p.returncode, p.stdout, p.stderr) == (5, "out:hello\n", "err\n")
    # without "--" and with options after the name
    p = vs("exec", "g1", "--cwd", "/etc", "pwd")
    assert p.stdout == "/etc\n"
    # the guest's limits, capabilities and filter apply to what joins it
    assert vs.exec_out("g1", "ulimit -n; ulimit -Hn").split() == ["1000", "2000"]
    status = vs.exec_out("g1", "cat /proc/self/status")
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    assert int(fields["Seccomp"]) == 2
    assert int(fields["CapBnd"], 16) == int(
        vs.exec_out("g1", "grep CapBnd /proc/1/status").split()[1], 16)
    assert int(fields["CapBnd"], 16) & (1 << 16) == 0  # no CAP_SYS_MODULE
    # it is in the guest's pid namespace and cgroup, not the host's
    assert vs.exec_out("g1", "echo $$").strip() != str(os.getpid())
    assert "mount" not in vs.exec_out("g1", "ls /proc/1/root/ 2>&1 || true")
    p = vs("exec", "g1", "--", "/nonexistent")
    assert p.returncode == 1
    assert "exec /nonexistent: No such file or directory" in p.stderr
    vs("stop", "g1", "--timeout", "5", check=True)
    p = vs("exec", "g1", "--", "true")
    assert p.returncode == 1 and "g1 is not running" in p.stderr


def test_enter_gives_a_login_shell_on_a_pty(vs):
    vs("build", "e1", check=True)
    vs("start", "e1", check=True)
    text, code = pty_session([VSERVER, "enter", "e1"], vs.env,
                             b"echo A$0; tty; stty size; sleep 30 & jobs; kill %1; exit 3\n",
                             winsize=(33, 111))
    assert code == 3, text
    assert "A-sh" in text            # a login shell
    assert "/dev/pts/" in text       # on a pty of the guest's own devpts
    assert "33 111" in text          # with our terminal's size
    assert "sleep 30" in text        # and job control
    vs("stop", "e1", check=True)


def test_enter_refuses_without_terminal(vs):
    vs("build", "e2", check=True)
    p = vs("enter", "e2", stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "needs a terminal" in p.stderr


def test_stop_kills_every_process_and_removes_the_cgroup(vs):
    vs("build", "s1", check=True)
    vs("start", "s1", check=True)
    # a daemon that ignores the stop, in its own session, double-forked
    vs("exec", "s1", "--", "/bin/sh", "-c",
       "setsid sh -c 'trap \"\" TERM HUP; while :; do sleep 1; done' >/dev/null 2>&1 &",
       check=True)
    pids = guest_pids(vs, "s1")
    assert len(pids) >= 3
    t = time.time()
    p = vs("stop", "s1", "--timeout", "10", check=True)
    assert time.time() - t < 9, "busybox init ends on its own; no need for the timeout"
    assert p.stderr == ""
    for pid in pids:
        assert process_ended(pid)
    for d in vs.cgroup("s1"):
        assert not os.path.exists(d), d
    # an init that ignores its stop signal: the timeout, then the cgroup kills it
    vs("build", "s2", "--init", "/bin/sh -c 'trap \"\" TERM; while :; do sleep 1; done'",
       check=True)
    # the shell above is PID 1: SIGTERM is ignored, so only the cgroup can end it
    vs("start", "s2", check=True)
    t = time.time()
    p = vs("stop", "s2", "--timeout", "1", check=True)
    assert 0.9 < time.time() - t < 8
    assert "did not end within 1s; killed every process" in p.stderr
    assert vs("status", "s2").returncode == 3
    p = vs("stop", "s2")
    assert p.returncode == 0 and "s2 was not running" in p.stderr


def test_twenty_guests_start_and_stop_leave_nothing(vs):
    names = [f"g{i:02d}" for i in range(20)]
    for n in names:
        vs("build", n, check=True)
    for round_ in range(2):
        for n in names:
            vs("start", n, check=True)
        listing = json.loads(vs("list", "--json", check=True).stdout)
        assert sorted(g["name"] for g in listing) == names
        assert all(g["processes"] >= 2 and g["rss_bytes"] > 0 for g in listing)
        assert len({g["context"] for g in listing}) == 20
        # stop them all at once: each guest has its own lock
        procs = [vs.popen("stop", n, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for n in names]
        assert [p.wait(timeout=60) for p in procs] == [0] * 20
        assert json.loads(vs("list", "--json", check=True).stdout) == []
        for n in names:
            for d in vs.cgroup(n):
                assert not os.path.exists(d)
    full = vs("list", "--all", check=True).stdout
    assert full.count("(stopped)") == 20


def test_status_is_right_after_the_cli_is_killed_mid_start(vs):
    vs("build", "k1", check=True)
    outcomes = set()
    for delay in (0.0, 0.002, 0.004, 0.008, 0.016, 0.05):
        p = vs.popen("start", "k1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.kill()
        p.wait()
        st = vs("status", "k1", "--json")
        state = json.loads(st.stdout)["state"]
        pids = guest_pids(vs, "k1")
        if state == "running":
            assert st.returncode == 0 and pids
            outcomes.add("running")
        else:
            # the half-made context died with the CLI (parent-death signal)
            assert st.returncode == 3
            assert wait_for(lambda: not guest_pids(vs, "k1"))
            outcomes.add("stopped")
        # either way the next start works and a stop cleans up
        vs("start", "k1")
        assert vs("status", "k1").returncode == 0
        vs("stop", "k1", "--timeout", "0", check=True)
        assert vs("status", "k1").returncode == 3
    assert outcomes


def test_state_survives_a_wiped_run_directory(vs):
    vs("build", "r1", "--net", "none", check=True)
    vs("start", "r1", check=True)
    subprocess.run(["rm", "-rf", str(vs.root / "run")], check=True)
    assert vs("status", "r1").returncode == 0
    assert "r1" in vs("list", check=True).stdout
    vs("stop", "r1", check=True)
    assert vs("status", "r1").returncode == 3


def test_two_starts_at_once_give_one_guest(vs):
    vs("build", "l1", check=True)
    for _ in range(3):
        procs = [vs.popen("start", "l1", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) for _ in range(2)]
        res = [(p.wait(timeout=30), p.stderr.read()) for p in procs]
        codes = sorted(r[0] for r in res)
        assert codes == [0, 1], res
        err = [e for c, e in res if c == 1][0]
        assert err.count("\n") == 1
        assert ("l1 is already running" in err or "another vserver command is working on l1"
                in err), err
        inits = [l for l in vs.exec_out("l1", "ps -o pid,comm").splitlines()
                 if l.split()[1] == "init"]
        assert len(inits) == 1
        vs("stop", "l1", "--timeout", "0", check=True)


@pytest.mark.parametrize("text,message", [
    ("[limits]\nmemory = 12X\n",
     'b1.conf:{n}: limits.memory: "12X" is not a size (say 512M or 2G)'),
    ("[guest]\ncolour = blue\n", "b1.conf:{n}: guest.colour: unknown key (known: context,"),
    ("[guest]\ndomainname = a\ndomainname = b\n", "b1.conf:{n}: guest.domainname: set twice"),
    ("[gust]\ninit = /sbin/init\n", "b1.conf:{n}: gust.init: unknown section [gust]"),
    ("[guest]\nstop-signal = SIGFOO\n",
     'b1.conf:{n}: guest.stop-signal: "SIGFOO" is not a signal to stop with'),
    ("[net]\nmode = bridge\n", 'b1.conf:{n}: net.mode: "bridge" is not a network mode'),
    ("[security]\ncapabilities.add = NET_RAW FLY\n",
     'b1.conf:{n}: security.capabilities.add: "FLY" is not a capability'),
    ("just words\n", "b1.conf:{n}: not an INI line"),
    # issue 15: raw bytes were echoed back to the terminal
    ("[guest]\n\x1b]0;pwned\x07\xff = 1\n",
     "b1.conf:{n}: guest.\\x1b]0;pwned\\x07\\xff: unknown key (known: context,"),
])
def test_a_broken_guest_file_gives_one_line(vs, text, message):
    vs("build", "b1", check=True)
    good = "# a guest file an admin edited\n[guest]\ncontext = 1000\n\n"
    vs.conf("b1").write_bytes((good + text).encode("latin-1"))
    n = len((good + text).splitlines())
    for cmd in (["start", "b1"], ["config", "b1"], ["status", "b1"]):
        p = vs(*cmd)
        assert p.returncode == 1, p
        assert p.stderr.count("\n") == 1, p.stderr
        assert p.stderr.startswith(f"vserver: {cmd[0]}: " + message.format(n=n)), p.stderr
    p = vs("list")
    assert p.returncode == 1 and p.stderr.startswith("vserver: list: " + message.format(n=n)), p
    # a broken file does not keep the guest from being deleted
    vs("delete", "b1", check=True)
    assert not vs.conf("b1").exists()


def test_bad_command_lines(vs):
    vs("build", "c1", check=True)
    cases = [
        (["build", "bad/name"], 2, '"bad/name" is not a guest name'),
        (["build", "x1", "--memory", "lots"], 2, '--memory: "lots" is not a size'),
        (["build", "x1", "--template", "nothing"], 2, '--template "nothing": say busybox'),
        (["build", "x1", "--set", "guest.colour=red"], 2, "--set: unknown key"),
        (["start"], 2, "no guest named"),
        (["start", "nosuch"], 1, 'no guest "nosuch"'),
        (["stop", "c1", "--timeout", "soon"], 2, '--timeout "soon" is not a number'),
        (["exec", "c1"], 2, "no command given"),
        (["kill", "c1", "x"], 2, '"x" is not a process id'),
        (["kill", "c1", "1", "SIGFOO"], 2, '"SIGFOO" is not a signal'),
        (["status", "c1", "--bogus"], 2, "unknown option --bogus"),
        (["frobnicate"], 2, 'unknown command "frobnicate"'),
    ]
    for args, code, text in cases:
        p = vs(*args)
        assert p.returncode == code, (args, p.stderr)
        assert p.stderr.count("\n") == 1 and text in p.stderr, (args, p.stderr)


def test_util_vserver_word_order(vs):
    vs("build", "w1", check=True)
    assert vs("w1", "start").returncode == 0
    assert vs("w1", "status").returncode == 0
    assert vs("w1", "exec", "--", "echo", "hi").stdout == "hi\n"
    assert vs("w1", "exec", "echo", "-n", "x").stdout == "x"
    assert vs("--root-dir", str(vs.root), "w1", "status", env=dict(os.environ)).returncode == 0
    assert vs("stop", "w1", "--timeout", "5").returncode == 0
    assert vs("w1", "status").returncode == 3


def test_list_ps_and_kill(vs):
    vs("build", "p1", check=True)
    vs("start", "p1", check=True)
    vs("exec", "p1", "--", "/bin/sh", "-c", "sleep 1000 >/dev/null 2>&1 &", check=True)
    out = vs("list", check=True).stdout.splitlines()
    assert out[0].split() == ["CTX", "PROC", "THR", "MEM", "SWAP", "userTIME", "sysTIME",
                              "IO-READ", "IO-WRITE", "OOM", "DISK", "UPTIME", "NAME"]
    row = [l for l in out if l.endswith(" p1")][0].split()
    assert row[0] == "1000" and int(row[1]) == 3
    # ps: a CONTEXT column after PID naming the guest; host processes are MAIN
    ps = vs("ps", check=True).stdout.splitlines()
    head = ps[0].split()
    assert head[head.index("PID") + 1] == "CONTEXT"
    mine = [l for l in ps if "sleep 1000" in l]
    assert mine and all("1000 p1" in l for l in mine)
    assert any(" 0 MAIN " in l for l in ps)
    # ps options are passed to ps
    ps = vs("ps", "-eo", "pid,comm", check=True).stdout.splitlines()
    assert ps[0].split() == ["PID", "CONTEXT", "COMMAND"]
    js = json.loads(vs("ps", "--json", check=True).stdout)
    sleeper = [p for p in js if p["guest"] == "p1" and p["command"].startswith("sleep")]
    assert sleeper and sleeper[0]["context"] == 1000
    host_pid = sleeper[0]["pid"]
    # kill takes the pid as the guest sees it
    inner = vs.exec_out("p1", "pidof sleep").split()
    assert len(inner) == 1
    p = vs("kill", "p1", inner[0], "KILL")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: process_ended(host_pid))
    p = vs("kill", "p1", "4000000", "TERM")
    assert p.returncode == 1 and "p1 has no process 4000000" in p.stderr
    vs("stop", "p1", check=True)


def test_delete(vs):
    vs("build", "d1", check=True)
    vs("start", "d1", check=True)
    p = vs("delete", "d1")
    assert p.returncode == 1 and "d1 is running (stop it first, or use --force)" in p.stderr
    assert vs("status", "d1").returncode == 0
    vs("delete", "--force", "d1", check=True)
    assert not vs.conf("d1").exists() and not vs.rootfs("d1").exists()
    assert not vs.log("d1").exists()
    for d in vs.cgroup("d1"):
        assert not os.path.exists(d)
    vs("build", "d1", check=True)


def test_templates_clone_dir_and_tarball(vs, workdir):
    vs("build", "src1", check=True)
    (vs.rootfs("src1") / "root/data").write_bytes(os.urandom(100000))
    os.setxattr(vs.rootfs("src1") / "root/data", "user.tag", b"kept")
    os.chown(vs.rootfs("src1") / "root/data", 123, 456)
    vs("build", "copy1", "--template", "clone:src1", check=True)
    a, b = vs.rootfs("src1"), vs.rootfs("copy1")
    assert (a / "root/data").read_bytes() == (b / "root/data").read_bytes()
    assert os.getxattr(b / "root/data", "user.tag") == b"kept"
    assert (os.stat(b / "root/data").st_uid, os.stat(b / "root/data").st_gid) == (123, 456)
    assert os.readlink(b / "sbin/init") == "/bin/busybox"
    assert (b / "etc/hostname").read_text() == "copy1\n"
    assert (a / "etc/machine-id").read_text() != (b / "etc/machine-id").read_text()
    # a directory, then a tarball of it
    vs("build", "dir1", "--template", str(a), check=True)
    assert (vs.rootfs("dir1") / "root/data").read_bytes() == (a / "root/data").read_bytes()
    tarball = workdir / "guest.tar.gz"
    with tarfile.open(tarball, "w:gz") as t:
        t.add(a, arcname=".")
    vs("build", "tar1", "--template", str(tarball), check=True)
    vs("start", "tar1", check=True)
    assert vs.exec_out("tar1", "cat /root/data | wc -c").strip() == "100000"
    vs("stop", "tar1", check=True)
    # a running guest is not cloned
    vs("start", "src1", check=True)
    p = vs("build", "copy2", "--template", "clone:src1")
    assert p.returncode == 1 and "stop it before cloning" in p.stderr
    vs("stop", "src1", check=True)


def test_a_hostile_tarball_writes_nothing_outside(vs, workdir):
    outside = workdir / "escaped"
    evil = workdir / "evil.tar"
    with tarfile.open(evil, "w") as t:
        info = tarfile.TarInfo("etc/passwd")
        info.size = 0
        t.addfile(info)
        link = tarfile.TarInfo("etc/up")
        link.type = tarfile.SYMTYPE
        link.linkname = str(workdir)
        t.addfile(link)
        for name in ("etc/up/escaped", "../escaped", str(outside)):
            info = tarfile.TarInfo(name)
            data = b"pwned"
            info.size = len(data)
            import io
            t.addfile(info, io.BytesIO(data))
    p = vs("build", "evil", "--template", str(evil))
    assert p.returncode == 1
    assert not outside.exists()
    assert not vs.conf("evil").exists()
    assert not (vs.root / "var/lib/vserver/guests/evil").exists()
    assert [e for e in os.listdir(vs.root / "var/lib/vserver/guests")] == []


def test_a_failed_or_interrupted_build_leaves_nothing(vs):
    # debootstrap cannot reach this mirror: a failure, then nothing of it left
    p = vs("build", "f1", "--template", "debian", "--mirror", "http://127.0.0.1:9/debian",
           timeout=300)
    assert p.returncode == 1 and "debootstrap bookworm from http://127.0.0.1:9/debian failed" \
        in p.stderr
    # ours ends with what to check, not an errno (issue 15: "Input/output error")
    last = p.stderr.strip().splitlines()[-1]
    assert last.endswith("check --suite and --mirror, or the host setting debian-mirror)"), last
    assert not vs.conf("f1").exists()
    assert os.listdir(vs.root / "var/lib/vserver/guests") == []
    # Ctrl-C while debootstrap waits on a mirror that never answers
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    proc = vs.popen("build", "f2", "--template", "debian", "--mirror",
                    f"http://127.0.0.1:{port}/debian", stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
    conn = None
    srv.settimeout(30)
    try:
        conn, _ = srv.accept()  # debootstrap is fetching: interrupt the build
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if conn:
            conn.close()
        srv.close()
    assert proc.returncode == 130, err
    assert "f2: interrupted; nothing was left behind" in err
    assert not vs.conf("f2").exists()
    assert os.listdir(vs.root / "var/lib/vserver/guests") == []


def test_autostart(vs, workdir):
    vs("build", "a1", "--autostart", check=True)
    vs("build", "a2", check=True)
    vs("start", "--autostart", check=True)
    assert vs("status", "a1").returncode == 0
    assert vs("status", "a2").returncode == 3
    # again at "boot": already running is fine
    vs("start", "--autostart", check=True)
    vs("stop", "--all", check=True)
    assert vs("status", "a1").returncode == 3
    from conftest import REPO
    # make install writes the unit with its own PREFIX, and no KillMode=none (issue 15)
    dest = workdir / "dest"
    subprocess.run(["make", "-s", "-C", str(REPO), "install", f"DESTDIR={dest}", "PREFIX=/opt/vs"],
                   check=True, capture_output=True)
    unit = (dest / "etc/systemd/system/vserver.service").read_text()
    assert "ExecStart=/opt/vs/sbin/vserver start --autostart" in unit
    assert "ExecStop=/opt/vs/sbin/vserver stop --all" in unit
    assert not [l for l in unit.splitlines() if l.startswith("KillMode")]


def test_start_all_and_several_names_run_side_by_side(vs):
    """start --all, start A B..., stop A B...: several processes at once (one per CPU for
    starts, many for stops, which wait for inits); one guest failing fails the command,
    not the others."""
    names = [f"p{i}" for i in range(6)]
    for n in names:
        vs("build", n, "--init", "none", "--net", "none", check=True)
    vs("build", "bad", "--init", "/bin/no-such-init", "--net", "none", check=True)
    p = vs("start", "--all")
    assert p.returncode == 1 and "bad" in p.stderr, p.stderr
    assert p.stderr.count("vserver: start:") == 1, p.stderr
    for n in names:
        assert vs("status", n).returncode == 0, n
    p = vs("stop", *names[:3])
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert [vs("status", n).returncode for n in names] == [3, 3, 3, 0, 0, 0]
    p = vs("start", *names[:3], "bad")
    assert p.returncode == 1 and p.stderr.count("vserver: start:") == 1, p.stderr
    assert [vs("status", n).returncode for n in names] == [0] * 6
    p = vs("start", "--all", "--autostart")
    assert p.returncode == 2 and "not both" in p.stderr
    vs("stop", "--all", check=True)
    assert [vs("status", n).returncode for n in names] == [3] * 6


def test_config_prints_the_effective_configuration(vs):
    vs("build", "cfg1", "--memory", "64M", "--net", "none", "--set", "security.capabilities.add=NET_RAW",
       check=True)
    text = vs("config", "cfg1", check=True).stdout
    assert "[guest]\ncontext = 1000\nhostname = cfg1\ninit = /sbin/init\n" in text
    assert "memory = 64M" in text and "capabilities.add = NET_RAW" in text
    js = json.loads(vs("config", "cfg1", "--json", check=True).stdout)
    assert js["limits.memory"] == "64M" and js["guest.context"] == "1000"
    assert js["rootfs"] == str(vs.rootfs("cfg1"))
    # what config prints reads back the same
    vs.conf("cfg1").write_text(text)
    assert vs("config", "cfg1", check=True).stdout == text


def test_init_none_keeps_a_tiny_pid1(vs):
    vs("build", "n1", "--init", "none", check=True)
    vs("start", "n1", check=True)
    ps = vs.exec_out("n1", "ps -o pid,comm").split()
    assert ps[2] == "1"
    vs("exec", "n1", "--", "/bin/sh", "-c", "sleep 1000 >/dev/null 2>&1 &", check=True)
    # orphans are reaped: no zombie stays
    vs("exec", "n1", "--", "/bin/sh", "-c", "(sleep 0.1 &) ; true", check=True)
    time.sleep(0.5)
    assert " Z " not in vs.exec_out("n1", "ps -o pid,stat,comm")
    t = time.time()
    vs("stop", "n1", check=True)
    assert time.time() - t < 5


def test_limits_apply_outside_the_guests_reach(vs):
    vs("build", "m1", "--memory", "64M", "--processes", "40", check=True)
    vs("start", "m1", check=True)
    limits = {}
    for d in vs.cgroup("m1"):
        for f in ("memory.limit_in_bytes", "memory.max", "pids.max"):
            if os.path.exists(f"{d}/{f}"):
                limits[f] = open(f"{d}/{f}").read().strip()
    assert limits.get("memory.limit_in_bytes", limits.get("memory.max")) == str(64 << 20)
    assert limits["pids.max"] == "40"
    # a fork bomb stops at the limit, and the guest can still be stopped
    p = vs("exec", "m1", "--", "/bin/sh", "-c",
           "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null; echo done")
    assert len(guest_pids(vs, "m1")) <= 40
    # the guest sees its own cgroup as the root; writing there does not lift the limit
    vs("exec", "m1", "--", "/bin/sh", "-c",
       "echo max > /sys/fs/cgroup/pids/pids.max 2>/dev/null; true")
    for d in vs.cgroup("m1"):
        if os.path.exists(f"{d}/pids.max"):
            assert open(f"{d}/pids.max").read().strip() == "40"
    vs("stop", "m1", "--timeout", "2", check=True)
    assert not guest_pids(vs, "m1")


def test_a_guest_not_delegated_has_one_cgroup_a_hierarchy_all_read_only(vs):
    """delegate = no: no leaf anywhere, its processes in PARENT/NAME itself (the root of
    its cgroup namespace), the whole cgroup tree read-only inside, cgroup2's max.depth
    0; limits, exec, list and stop as for any guest. systemd as its init is refused."""
    vs("build", "nd", "--delegate", "no", "--memory", "64M", check=True)
    assert "delegate = no" in vs.conf("nd").read_text()
    vs("start", "nd", check=True)
    dirs = vs.cgroup("nd")
    # every hierarchy holds every process of it (once its boot scripts are done)
    def members():
        return {frozenset(open(d + "/cgroup.procs").read().split()) for d in dirs}
    assert wait_for(lambda: len(members()) == 1), members()
    assert len(next(iter(members()))) >= 2  # init and syslogd
    for d in dirs:
        assert not os.path.exists(d + "/guest"), d
        assert os.stat(d).st_uid == 0  # nothing chowned to the guest
        if os.path.exists(d + "/cgroup.max.depth"):
            assert open(d + "/cgroup.max.depth").read().strip() == "0"
            assert open(d + "/cgroup.subtree_control").read().strip() == ""
        if os.path.exists(d + "/memory.limit_in_bytes"):
            assert open(d + "/memory.limit_in_bytes").read().strip() == str(64 << 20)
    # inside: its cgroup is the root everywhere, every hierarchy read-only
    out = vs.exec_out("nd", "cat /proc/self/cgroup; grep ' /sys/fs/cgroup' /proc/self/mountinfo;"
                            " for d in /sys/fs/cgroup/*; do mkdir $d/x 2>&1; done; true")
    lines = out.splitlines()
    cg = [l for l in lines if re.match(r"\d+:", l)]
    assert cg and all(l.endswith(":/") for l in cg), out
    mounts = [l.split() for l in lines if " /sys/fs/cgroup" in l]
    assert len(mounts) >= 2 and all("ro" in m[5].split(",") for m in mounts), out
    refused = [l for l in lines if l.startswith("mkdir:")]
    assert refused and all("Read-only file system" in l for l in refused), out
    assert len(refused) == len(mounts) - 1, out  # each hierarchy below the frame
    # exec joins PARENT/NAME; list and stop as for any guest
    pid = vs.exec_out("nd", "sleep 60 >/dev/null 2>&1 & echo $!").strip()
    assert vs.exec_out("nd", f"grep -c :/$ /proc/{pid}/cgroup").strip() == str(len(cg))
    sleeps = [p for p in open(dirs[0] + "/cgroup.procs").read().split()
              if open(f"/proc/{p}/cmdline").read() == "sleep\x0060\x00"]
    assert len(sleeps) == 1, sleeps
    assert re.search(r"(?m)^\d+ .* nd$", vs("list", check=True).stdout)
    st = json.loads(vs("status", "nd", "--json", check=True).stdout)
    assert (st["delegate"], st["running_delegated"]) == (False, False), st
    vs("set", "nd", "guest.delegate=yes", "--save", check=True)
    st = json.loads(vs("status", "nd", "--json", check=True).stdout)
    assert (st["delegate"], st["running_delegated"]) == (True, False), st  # until a restart
    vs("stop", "nd", "--timeout", "2", check=True)
    assert not any(os.path.exists(d) for d in dirs)
    # systemd cannot boot without cgroups of its own: one line that says what to set
    root = vs.rootfs("nd")
    (root / "usr/lib/systemd").mkdir(parents=True)
    (root / "usr/lib/systemd/systemd").write_text("#!/bin/sh\nexec sleep 1000\n")
    (root / "usr/lib/systemd/systemd").chmod(0o755)
    (root / "sbin/sysinit").symlink_to("../usr/lib/systemd/systemd")
    vs("set", "nd", "guest.init=/sbin/sysinit", "guest.delegate=no", "--save", check=True)
    p = vs("start", "nd")
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "systemd" in p.stderr and "guest.delegate=yes" in p.stderr, p.stderr
    assert not any(os.path.exists(d) for d in dirs)
    vs("set", "nd", "guest.delegate=yes", "--save", check=True)
    vs("start", "nd", check=True)  # now with its leaf
    assert os.path.isdir(dirs[0] + "/guest")
    st = json.loads(vs("status", "nd", "--json", check=True).stdout)
    assert (st["delegate"], st["running_delegated"]) == (True, True), st
    vs("stop", "nd", "--timeout", "0")
    assert not any(os.path.exists(d) for d in dirs)


def test_the_host_setting_delegate_is_what_build_writes(vs):
    vs.host_conf("[host]\ndelegate = no\n")
    vs("build", "h1", check=True)
    assert "delegate = no" in vs.conf("h1").read_text()
    vs("build", "h2", "--delegate", "yes", check=True)  # the option wins
    assert "delegate" not in vs.conf("h2").read_text()  # yes, the default, goes unwritten
    vs.host_conf("[host]\ndelegate = maybe\n")
    p = vs("build", "h3")
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert "delegate" in p.stderr and "is not yes or no" in p.stderr, p.stderr
    # systemd named as init cannot go without cgroups of its own: said at once
    vs.host_conf("[host]\n")
    p = vs("build", "h4", "--delegate", "no", "--init", "/lib/systemd/systemd --unit=x")
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert "init = /lib/systemd/systemd: systemd must make cgroups" in p.stderr, p.stderr
    p = vs("set", "h1", "guest.init=/usr/lib/systemd/systemd", "--save")
    assert p.returncode != 0 and "delegate = yes" in p.stderr, p.stderr


def test_concurrent_builds_get_distinct_contexts_and_start_refuses_a_shared_one(vs):
    """Issue 15: two builds at once both took the same context id, and start did not check."""
    procs = [vs.popen("build", f"c{i}", "--init", "none", stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE) for i in range(6)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    ctxs = [int(json.loads(vs("config", f"c{i}", "--json", check=True).stdout)["guest.context"])
            for i in range(6)]
    assert len(set(ctxs)) == 6, ctxs
    assert not list((vs.root / "run/vserver").glob("context.*[0-9]"))  # reservations gone
    # a guest file edited to another guest's context: refused while that one runs
    vs("start", "c0", check=True)
    text = vs.conf("c1").read_text()
    vs.conf("c1").write_text(text.replace(f"context = {ctxs[1]}", f"context = {ctxs[0]}"))
    p = vs("start", "c1")
    assert p.returncode == 1 and f"context {ctxs[0]} is in use by the running guest c0" in \
        p.stderr, p.stderr
    p = vs("build", "c9", "--context", str(ctxs[0]))
    assert p.returncode == 1 and f"context {ctxs[0]} is c0's" in p.stderr, p.stderr
    vs("stop", "c0", check=True)
    vs("start", "c1", check=True)
    vs("stop", "c1", check=True)


def test_concurrent_builds_with_a_long_id_scan_get_distinct_contexts(vs):
    """A build read the guest files, then walked the ids for a free one; another build that
    wrote its file and dropped its reservation in between was in neither, and its id was
    handed out again (16 builds at once on a host with 600 guests running: 5 ids twice).
    Here 1500 ids held by live reservations make each walk long."""
    run = vs.root / "run/vserver"
    run.mkdir(parents=True, exist_ok=True)
    for c in range(1000, 2500):
        (run / f"context.{c}").write_text(f"{os.getpid()} held-by-test\n")
    try:
        procs = [vs.popen("build", f"w{i}", "--init", "none", "--no-userns",
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(8)]
        for p in procs:
            assert p.wait(timeout=300) == 0, p.stderr.read()
    finally:
        for c in range(1000, 2500):
            (run / f"context.{c}").unlink(missing_ok=True)
    ctxs = [int(json.loads(vs("config", f"w{i}", "--json", check=True).stdout)["guest.context"])
            for i in range(8)]
    assert len(set(ctxs)) == 8 and min(ctxs) >= 2500, ctxs


def test_context_ids_are_host_wide_across_installations(vs, workdir):
    """Issue 15: two installations' guests could run with one context id, sharing a
    loopback address and a veth name (a netns start deleted the other's veth)."""
    from conftest import Install
    other = Install(workdir / "inst-other-ctx")
    try:
        vs("build", "a1", "--init", "none", "--context", "1500", check=True)
        vs("start", "a1", check=True)
        # a build elsewhere neither takes nor picks an id a running guest has
        p = other("build", "b1", "--init", "none", "--context", "1500")
        assert p.returncode == 1 and "context 1500 is in use by the running guest a1 of the " \
            f"installation under {vs.root} (pick another" in p.stderr, p.stderr
        other.host_conf("[host]\ncontext-range = 1500-1600\n")
        other("build", "b1", "--init", "none", check=True)
        assert json.loads(other("config", "b1", "--json", check=True).stdout)["guest.context"] \
            == "1501"
        # nor does a guest file edited to it start
        text = other.conf("b1").read_text()
        other.conf("b1").write_text(text.replace("context = 1501", "context = 1500"))
        p = other("start", "b1")
        assert p.returncode == 1 and "context 1500 is in use by the running guest a1 of the " \
            f"installation under {vs.root} (give one of them another context" in p.stderr, p.stderr
        vs("stop", "a1", check=True)
        other("start", "b1", check=True)
        other("stop", "b1", check=True)
    finally:
        for name in other.guests():
            other("delete", "--force", name)


def test_help_keys_is_the_key_table_and_the_man_page_names_each(vs):
    """Issue 16: one table of keys; each is settable, and documented."""
    out = vs("help", "keys", check=True).stdout
    man = (REPO / "docs/man/vserver.8.scd").read_text()
    keys, section = [], None
    for line in out.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line.strip():
            keys.append(f"{section}.{line.split()[0]}")
    assert len(keys) > 50 and "limits.memory" in keys and "net.nat" in keys, keys
    for key in keys:
        assert key.split(".", 1)[1] in man, f"{key} is not in vserver(8)"
    # the build options that set keys are the table's, and help build lists each
    build_help = vs("help", "build", check=True).stdout
    options = [w.strip("()") for w in out.split() if w.startswith("--")]
    assert "--memory" in options and "--net" in options, options
    for opt in options:
        assert f"  {opt} " in build_help, f"{opt} is not in vserver help build"
    # a key it lists is one set knows, an unknown one names the list
    vs("build", "k1", "--init", "none", check=True)
    assert vs("set", "k1", "guest.stop-timeout=7", "--save").returncode == 0
    assert "stop-timeout = 7" in vs.conf("k1").read_text()
    p = vs("set", "k1", "guest.nope=1")
    assert p.returncode == 2 and "stop-timeout" in p.stderr


def test_running_is_util_vservers_test(vs):
    vs("build", "r1", "--init", "none", check=True)
    p = vs("r1", "running")
    assert (p.returncode, p.stdout) == (1, "r1 is stopped\n")
    vs("start", "r1", check=True)
    p = vs("r1", "running")
    assert (p.returncode, p.stdout) == (0, "r1 is running\n")
    assert vs("running", "nosuch").returncode == 1
    vs("stop", "r1", check=True)


def test_bad_input_gets_one_line_with_the_fix(vs):
    """Issue 15: late, cut or silent answers to wrong input."""
    p = vs("build", "t1", "--template", "/etc/passwd")
    assert p.returncode == 1 and "--template /etc/passwd has no /etc: not a root file system " \
        "(say a directory or tarball of one, busybox, debian or clone:GUEST)" in p.stderr, p.stderr
    assert vs.guests() == [] and not list((vs.root / "var/lib/vserver/guests").iterdir())
    vs("build", "t2", "--init", "none", check=True)
    p = vs("set", "t2", "limits.nosuch=1", "--save")
    assert p.returncode == 2 and p.stderr.rstrip().endswith("sigpending, stack)"), p.stderr
    p = vs("--root-dir", "/nonexistent-vs", "list")
    assert p.returncode == 1 and "no installation at /nonexistent-vs" in p.stderr, p.stderr


def test_list_json_has_one_source_per_figure(vs):
    """Issue 15: "user_seconds": 0.0 beside cpu_user_us: 8000."""
    vs("build", "j1", "--init", "none", check=True)
    vs("start", "j1", check=True)
    vs("exec", "j1", "--", "/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
       check=True)
    row = json.loads(vs("list", "--json", check=True).stdout)[0]
    assert row["cpu_user_us"] > 0
    assert row["user_seconds"] == row["cpu_user_us"] / 1e6
    assert row["system_seconds"] == row["cpu_system_us"] / 1e6
    vs("stop", "j1", check=True)


def test_list_finds_pid_1_with_its_note_and_without(vs):
    """list takes PID 1 from the context note its start wrote (no /proc/PID/status);
    without the note (a guest started by an older vserver) it scans as before."""
    vs("build", "u1", check=True)
    vs("start", "u1", check=True)
    vs("exec", "u1", "--", "/bin/sh", "-c", "sleep 1000 >/dev/null 2>&1 &", check=True)
    ctx = json.loads(vs("status", "u1", "--json", check=True).stdout)["context"]
    note = Path(f"/run/vserver-host/context.{ctx}")
    init = int(note.read_text().split()[0])

    def row():
        (r,) = [l.split() for l in vs("list", check=True).stdout.splitlines()
                if l.endswith(" u1")]
        return r

    time.sleep(1.1)
    with_note = row()
    assert int(with_note[1]) == 3 and with_note[11] != "-"
    # the uptime is PID 1's: the same clock status reads from its pidfd
    st = json.loads(vs("status", "u1", "--json", check=True).stdout)
    assert st["init_pid"] == init
    up = st["uptime_ms"] / 1000
    h, m, sec = map(int, re.fullmatch(r"(\d+)h(\d+)m(\d+)", with_note[11]).groups())
    assert abs(h * 3600 + m * 60 + sec - up) <= 1
    saved = note.read_text()
    note.unlink()
    try:
        without = row()
        assert without[1] == "3" and without[11] != "-"
        # a note naming another process (a reused pid) is not believed
        note.write_text(saved.replace(f"{init} ", f"{os.getpid()} ", 1))
        assert row()[1] == "3" and row()[11] != "-"
    finally:
        note.write_text(saved)
    vs("stop", "u1", check=True)


def test_host_check_says_whether_cgroup_joins_wait(vs):
    """A v1 hierarchy makes every join wait an RCU grace period unless some cgroup
    mount has favordynmods; host check says which, from the mounts as they are."""
    mounts = [l.split(" - ")[1].split() for l in open("/proc/self/mountinfo")]
    cg = [(m[0], m[2].split(",")) for m in mounts if m[0] in ("cgroup", "cgroup2")]
    v1 = any(t == "cgroup" for t, _ in cg)
    fav = any("favordynmods" in opts for _, opts in cg)
    j = json.loads(vs("host", "check", "--json", check=True).stdout)["cgroup_moves"]
    assert j["ok"] is (fav or not v1)
    if not j["ok"]:
        assert "favordynmods" in j["detail"] and "/sys/fs/cgroup/" in j["detail"]
    text = vs("host", "check", check=True).stdout
    (line,) = [l for l in text.splitlines() if l.startswith("cgroup joins without waiting")]
    assert line.split()[4] == ("yes" if j["ok"] else "no")
