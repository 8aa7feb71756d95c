"""vserver run: a one-off context, looked at from inside and outside."""
import os
import pty
import re
import select
import signal
import struct
import subprocess
import fcntl
import termios
import time
from pathlib import Path

import pytest

from conftest import VSERVER, CG_PARENT, cgroup_dirs

DEFAULT_CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
                "SETGID", "SETUID", "SETPCAP", "SETFCAP", "NET_BIND_SERVICE", "SYS_CHROOT",
                "AUDIT_WRITE"]
CAP_NUM = {"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
           "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
           "NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_MODULE": 16,
           "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_ADMIN": 21,
           "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25, "MKNOD": 27,
           "AUDIT_WRITE": 29, "SETFCAP": 31, "MAC_ADMIN": 33, "SYSLOG": 34, "PERFMON": 38,
           "BPF": 39}


def mask(names):
    return sum(1 << CAP_NUM[n] for n in names)


def status_field(text, field):
    m = re.search(rf"^{field}:\s*(\S+)", text, re.M)
    assert m, f"{field} not in {text!r}"
    return m.group(1)


# --- the process tree -------------------------------------------------------

def test_command_is_pid1_and_exit_code_passes(run):
    p = run.sh("echo $$; exit 42")
    assert p.returncode == 42
    assert p.stdout.strip() == "1"


def test_stdin_stdout_stderr_pass_through(run):
    p = run.sh("cat; echo to-stderr >&2", input="hello from the host\n")
    assert p.returncode == 0
    assert p.stdout == "hello from the host\n"
    assert p.stderr == "to-stderr\n"


def test_no_host_process_visible(run):
    marker = f"vs-marker-{os.getpid()}"
    host = subprocess.Popen(["/bin/busybox", "sh", "-c", f"sleep 300; : {marker}"],
                            start_new_session=True)
    try:
        for _ in range(100):
            if marker in open(f"/proc/{host.pid}/cmdline").read():
                break
            time.sleep(0.01)
        assert marker in open(f"/proc/{host.pid}/cmdline").read()
        p = run.sh("for f in /proc/[0-9]*/cmdline; do cat $f; echo; done; echo; ls /proc")
        assert p.returncode == 0
        assert marker not in p.stdout
        pids = sorted(int(x) for x in p.stdout.split() if x.isdigit())
        # only the shell (1) and the commands it forked can be there
        assert pids and pids[0] == 1 and all(x < 50 for x in pids), pids
    finally:
        os.killpg(host.pid, signal.SIGKILL)
        host.wait()


def run_until_ready(opts, script):
    """`vserver run OPTS -- sh -c 'SCRIPT; echo ready; read x'`: the process, and its
    output up to "ready"; it ends when its stdin gets a line."""
    proc = subprocess.Popen([VSERVER, "run", *opts, "--", "/bin/sh", "-c",
                             f"{script}; echo ready; read x"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = []
    while not lines or lines[-1] != "ready\n":
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            proc.wait()
            raise AssertionError(f"no 'ready' from the context: {lines}")
        lines.append(line)
    return proc, lines


def test_the_migration_primer_leaves_no_zombie_and_no_variable(run, rootfs):
    """On a host with v1 hierarchies a short-lived child of ours takes the cgroup
    join's grace period while we re-exec; the re-executed command reaps it, and the
    variable that names it to us reaches nobody."""
    proc, lines = run_until_ready(["--rootfs", str(rootfs)], "env")
    try:
        assert not any("VSERVER_PRIMER" in l for l in lines), lines
        # the primer's own child waits a grace period (milliseconds), then exits
        time.sleep(0.5)
        children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        states = {}
        for c in children:
            try:
                stat = open(f"/proc/{c}/stat").read()
            except FileNotFoundError:
                continue
            states[c] = stat[stat.rindex(")") + 2]
        assert "Z" not in states.values(), states
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0


@pytest.mark.parametrize("delegate", [False, True])
def test_host_sees_context_in_its_cgroup(run, rootfs, delegate):
    # "ready" comes after the shell reaped cat: from then on the
    # context's processes stay the same while the test compares them
    proc, lines = run_until_ready(["--name", "cgtest", "--rootfs", str(rootfs)] +
                                  (["--delegate"] if delegate else []),
                                  "cat /proc/self/cgroup")
    try:
        inside = lines[0]
        dirs = [d + "/cgtest" for d in cgroup_dirs()]
        # limits go on NAME; with --delegate, where the context may write its tree
        # (cgroup2, name=systemd) its processes live in NAME/guest, in a v1 controller
        # hierarchy in NAME itself (no second memory cgroup); without, in NAME
        # everywhere; every hierarchy holds every process of it
        def members(d):
            leaf = os.path.isdir(d + "/guest")
            v1_controller = not os.path.exists(d + "/cgroup.controllers") and \
                "systemd" not in d.split("/")[4]
            assert leaf == (delegate and not v1_controller), d
            if leaf:
                assert open(d + "/cgroup.procs").read() == "", d
            elif os.path.exists(d + "/cgroup.max.depth"):
                assert open(d + "/cgroup.max.depth").read().strip() == "0", d
            return set(open(d + ("/guest" if leaf else "") + "/cgroup.procs").read().split())
        everyone = members(dirs[0])
        assert len(everyone) >= 1
        for d in dirs:
            assert members(d) == everyone, d
        # inside, a cgroup namespace: its own cgroup is the root
        assert inside.rstrip().endswith(":/"), inside
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0
    for d in dirs:
        assert not os.path.exists(d), f"{d} left after the context ended"


# --- UTS and time -----------------------------------------------------------

def test_hostname_and_domainname(run):
    before = os.uname().nodename
    p = run.sh("hostname; cat /proc/sys/kernel/domainname",
               opts=["--hostname", "web1.example.org", "--domainname", "example"])
    assert p.stdout.split() == ["web1.example.org", "example"]
    assert os.uname().nodename == before


def test_uptime_starts_at_zero(run):
    host_uptime = float(open("/proc/uptime").read().split()[0])
    p = run.sh("cat /proc/uptime; sleep 1; cat /proc/uptime")
    first, second = (float(l.split()[0]) for l in p.stdout.splitlines())
    assert first < 1.0, p.stdout
    assert 0.9 <= second - first < 5, p.stdout
    assert host_uptime > 5, "the host must have been up longer than the guest for this check"


# --- capabilities, no_new_privs, seccomp -------------------------------------

def test_default_bounding_set(run):
    p = run("/bin/cat", "/proc/self/status")
    expect = mask(DEFAULT_CAPS)
    for field in ("CapBnd", "CapEff", "CapPrm"):
        assert int(status_field(p.stdout, field), 16) == expect, field
    assert int(status_field(p.stdout, "CapAmb"), 16) == 0
    assert status_field(p.stdout, "NoNewPrivs") == "1"
    assert status_field(p.stdout, "Seccomp") == "2"


def test_cap_add_and_drop(run):
    p = run("/bin/cat", "/proc/self/status",
            opts=["--cap-add", "NET_RAW", "--cap-drop", "cap_chown",
                  "--cap-add-host-wide", "sys_ptrace"])
    got = int(status_field(p.stdout, "CapBnd"), 16)
    assert got == (mask(DEFAULT_CAPS) | mask(["NET_RAW", "SYS_PTRACE"])) & ~mask(["CHOWN"])


def test_allow_new_privs_and_seccomp_none(run):
    p = run("/bin/cat", "/proc/self/status", opts=["--allow-new-privs", "--seccomp", "none"])
    assert status_field(p.stdout, "NoNewPrivs") == "0"
    assert status_field(p.stdout, "Seccomp") == "0"


@pytest.mark.parametrize("script", [
    "mount -t tmpfs none /mnt",
    "mknod /tmp/null-copy c 1 3",
], ids=["mount", "mknod"])
def test_privileged_operations_fail(run, script):
    p = run.sh(script + "; rc=$?; grep -c ' /mnt ' /proc/self/mounts; ls /tmp; exit $rc")
    assert p.returncode != 0
    err = p.stderr.lower()
    assert "operation not permitted" in err or "permission denied" in err, p.stderr
    assert p.stdout.split()[0] == "0", "nothing got mounted"
    assert "null-copy" not in p.stdout, "no device node got made"


def test_settimeofday_fails(run):
    # set the clock to the time it already shows: harmless even if it went through
    p = run.sh("date -s @$(date +%s) >/dev/null")
    assert "can't set date: Operation not permitted" in p.stderr, p.stderr


def test_insmod_fails(run):
    # zeroes, not a module: even a kernel that let the call through would refuse it
    p = run.sh("head -c 4096 /dev/zero > /tmp/junk.ko; insmod /tmp/junk.ko")
    assert p.returncode != 0
    assert "Operation not permitted" in p.stderr, p.stderr


def test_reboot_fails(run):
    p = run.sh("reboot -f; echo still-here rc=$?")
    assert "still-here" in p.stdout
    assert "rc=0" not in p.stdout


def test_proc_sys_is_read_only(run):
    # write back the value that is already there: harmless even if it went through
    p = run.sh("v=$(cat /proc/sys/kernel/panic); echo $v > /proc/sys/kernel/panic")
    assert p.returncode != 0
    assert "Read-only file system" in p.stderr, p.stderr


def test_sysrq_trigger_not_writable(run):
    # an empty open-for-write: no sysrq command is ever sent
    p = run.sh(": > /proc/sysrq-trigger")
    assert p.returncode != 0
    if os.path.exists("/proc/sysrq-trigger"):
        assert "Read-only file system" in p.stderr, p.stderr
    else:
        # this kernel has no magic sysrq: the file cannot appear in the guest either
        assert "nonexistent" in p.stderr or "No such file" in p.stderr, p.stderr


def test_masked_proc_and_sys(run):
    p = run.sh("wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l;"
               " grep -c . /proc/self/mountinfo")
    timer, keys, firmware, _ = p.stdout.split()
    assert timer == "0" and keys == "0" and firmware == "0", p.stdout
    assert os.path.getsize("/proc/timer_list") == 0  # proc reports 0; read it instead
    assert len(open("/proc/timer_list").read()) > 0, "host timer_list should have content"


def test_user_namespaces_blocked_unless_allowed(run):
    p = run.sh("unshare -U true; echo rc=$?")
    assert "rc=0" not in p.stdout, p.stdout + p.stderr
    p = run.sh("unshare -U true; echo rc=$?", opts=["--allow-userns"])
    assert "rc=0" in p.stdout, p.stdout + p.stderr


def test_tiocsti_into_the_callers_terminal_is_refused(run):
    """Without -t the guest never gets our terminal (pipes that we relay), so
    there is nothing to type into (ENOTTY); the filter refuses TIOCSTI first (EPERM)."""
    master, slave = pty.openpty()

    def own_terminal():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        for opts in ([], ["--seccomp", "none"]):
            for mode in ("tiocsti", "tiocsti-high"):
                p = run("/bin/vs-syscalls", mode, opts=opts, stdin=slave, start_new_session=True,
                        preexec_fn=own_terminal)
                # the filter refuses TIOCSTI outright; without it, no terminal to type into
                want = "ENOTTY" if opts else "EPERM"
                assert p.stdout.strip() == want, (opts, mode, p.stdout, p.stderr)
        # the same call from a process whose controlling terminal it is goes through
        # (when the kernel still allows TIOCSTI): the refusals above are ours
        if open("/proc/sys/dev/tty/legacy_tiocsti").read().strip() == "1":
            helper = str(run.rootfs / "bin" / "vs-syscalls")
            p = subprocess.run([helper, "tiocsti"], stdin=slave, capture_output=True, text=True,
                               start_new_session=True, preexec_fn=own_terminal)
            assert p.stdout.strip() == "ok"
            assert os.read(master, 1) == b"x"
    finally:
        os.close(master)
        os.close(slave)


def test_filter_covers_the_i386_abi(run, rootfs):
    host = subprocess.run([str(rootfs / "bin" / "vs-syscalls"), "i386-getpid"],
                          capture_output=True, text=True)
    if host.returncode < 0 or host.stdout.strip() != "ok":
        # a kernel without the i386 ABI (none, or this VM's: int 0x80 kills the
        # caller) kills it in a guest alike: no 32-bit way around the filter
        p = run("/bin/vs-syscalls", "i386-keyctl")
        assert (p.returncode, p.stdout) == (128 - host.returncode, ""), p.stdout + p.stderr
        return
    p = run("/bin/vs-syscalls", "i386-getpid")
    assert p.stdout.strip() == "ok", "32-bit programs still run in a guest"
    p = run("/bin/vs-syscalls", "i386-keyctl")
    assert p.stdout.strip() == "EPERM", p.stdout + p.stderr


def test_seccomp_file(run, workdir):
    prof = workdir / "deny-uname.txt"
    prof.write_text("# this guest makes no directories\n@default\nmkdir   \nmkdirat # both\n")
    p = run.sh("mkdir /tmp/d", opts=["--seccomp", str(prof)])
    assert p.returncode != 0
    assert "Operation not permitted" in p.stderr, p.stderr
    p = run.sh("mkdir /tmp/d2 && rmdir /tmp/d2")
    assert p.returncode == 0
    # @default kept the built-in list
    p = run.sh("unshare -U true; echo rc=$?", opts=["--seccomp", str(prof)])
    assert "rc=0" not in p.stdout


def test_seccomp_file_with_a_bad_line(run, workdir):
    prof = workdir / "bad.txt"
    prof.write_text("uname\nnot_a_syscall\n")
    p = run("/bin/true", opts=["--seccomp", str(prof)])
    assert p.returncode == 1
    assert p.stderr.strip() == f'vserver: run: {prof}:2: unknown syscall "not_a_syscall"'


# --- the root ---------------------------------------------------------------

def test_chroot_escape_does_not_reach_host(run, rootfs):
    marker = str(rootfs / "bin" / "vs-escape")  # exists on the host, not at that path inside
    assert os.path.exists(marker)
    hostroot = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        p = run("/bin/vs-escape", marker, pass_fds=(hostroot,))
    finally:
        os.close(hostroot)
    assert p.stdout.strip() == "CONTAINED", p.stdout + p.stderr


def test_dev_is_minimal(run):
    p = run.sh("ls -A /dev; echo ---; ls -A /dev/pts; echo ---; echo x > /dev/null && "
               "head -c 4 /dev/zero | wc -c; grep -E ' /dev(/pts|/shm|/mqueue)? ' "
               "/proc/self/mounts")
    devs, pts, rest = p.stdout.split("---\n")
    assert set(devs.split()) == {"null", "zero", "full", "random", "urandom", "tty",
                                 "console", "pts", "ptmx", "shm", "mqueue", "fd", "stdin",
                                 "stdout", "stderr"}
    assert pts.split() == ["ptmx"], "a new devpts instance shows none of the host's ptys"
    lines = rest.splitlines()
    assert lines[0] == "4"
    types = {l.split()[1]: l.split()[2] for l in lines[1:]}
    assert types == {"/dev": "tmpfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs",
                     "/dev/mqueue": "mqueue"}


def test_sys_read_only_run_tmpfs(run):
    p = run.sh("grep -E ' /(sys|run|proc) ' /proc/self/mounts; touch /run/x && echo run-ok")
    fields = {l.split()[1]: (l.split()[2], l.split()[3]) for l in p.stdout.splitlines()
              if l.startswith(("none", "proc", "sysfs", "tmpfs"))}
    assert fields["/sys"][0] == "sysfs" and fields["/sys"][1].startswith("ro")
    assert fields["/run"][0] == "tmpfs"
    assert fields["/proc"][0] == "proc"
    assert "run-ok" in p.stdout


def test_bind_mounts(run, workdir):
    src = workdir / "shared"
    src.mkdir(exist_ok=True)
    (src / "hello").write_text("from the host\n")
    p = run.sh("cat /data/hello; echo made > /data/new; echo rw=$?; "
               "echo x > /ro/hello; echo ro=$?",
               opts=["--bind", f"{src}:/data", "--bind", f"{src}:/ro:ro"])
    assert "from the host" in p.stdout
    assert "rw=0" in p.stdout
    assert "ro=0" not in p.stdout and "Read-only file system" in p.stderr
    assert (src / "new").read_text() == "made\n"
    assert (src / "hello").read_text() == "from the host\n"


@pytest.mark.parametrize("link", ["/etc", "../../../../../../etc"], ids=["absolute", "climbing"])
def test_bind_target_symlink_out_of_root_refused(run, rootfs, workdir, link):
    src = workdir / "bindsrc"
    src.mkdir(exist_ok=True)
    evil = rootfs / "mnt" / "evil"
    if evil.is_symlink():
        evil.unlink()
    os.symlink(link, evil)
    try:
        host_mounts = open("/proc/self/mountinfo").read()
        for target in ("/mnt/evil", "/mnt/evil/sub"):
            p = run("/bin/true", opts=["--bind", f"{src}:{target}"])
            assert p.returncode == 1
            assert "leads out of the guest root" in p.stderr or "is a symlink" in p.stderr, \
                p.stderr
            assert len(p.stderr.strip().splitlines()) == 1
        assert open("/proc/self/mountinfo").read() == host_mounts
        assert not (Path("/etc") / "sub").exists()
    finally:
        evil.unlink()


def test_read_only_root(run):
    p = run.sh("touch /tmp/x; echo rc=$?", opts=["--read-only"])
    assert "rc=0" not in p.stdout and "Read-only file system" in p.stderr


# --- network ----------------------------------------------------------------

def test_net_none_has_only_loopback_up(run):
    p = run.sh("ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags")
    lines = p.stdout.split()
    assert lines[0] == "lo" and len(lines) == 3, p.stdout
    assert int(lines[2], 16) & 1, "IFF_UP"


def test_net_host_shares_host_interfaces(run):
    p = run("/bin/ls", "/sys/class/net", opts=["--net", "host"])
    assert sorted(p.stdout.split()) == sorted(os.listdir("/sys/class/net"))


# --- limits -----------------------------------------------------------------

def test_rlimits(run):
    soft, hard = 100, 200
    p = run.sh("ulimit -n; ulimit -Hn; ulimit -c", opts=["--rlimit", f"nofile={soft}:{hard}",
                                                        "--rlimit", "core=0"])
    assert p.stdout.split() == [str(soft), str(hard), "0"]


def test_rlimit_above_our_hard_limit(run):
    import resource
    _, our_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nr_open = int(open("/proc/sys/fs/nr_open").read())
    if our_hard == resource.RLIM_INFINITY:
        pytest.skip("our NOFILE hard limit is unlimited: there is nothing above it to ask for")
    want = our_hard + 1
    p = run("/bin/true", opts=["--rlimit", f"nofile={want}"])
    # Raising a hard limit needs CAP_SYS_RESOURCE (root on these test machines lacks it),
    # and nothing goes above fs.nr_open.
    has_sys_resource = int(status_field(open("/proc/self/status").read(), "CapEff"), 16) & \
        (1 << CAP_NUM["SYS_RESOURCE"])
    if has_sys_resource and want <= nr_open:
        assert p.returncode == 0, p.stderr
    else:
        assert p.returncode == 1
        assert "set rlimit NOFILE to hard" in p.stderr, p.stderr
        assert "Operation not permitted" in p.stderr, p.stderr


# --- terminal ---------------------------------------------------------------

def test_tty_gets_a_pty_with_our_size(run, rootfs):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen([VSERVER, "run", "-t", "--rootfs", str(rootfs), "--",
                             "/bin/sh", "-c", "tty; stty size; ls -l /dev/console; exit 7"],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    text = out.decode(errors="replace")
    assert proc.returncode == 7, text
    assert "/dev/pts/0" in text
    assert "33 101" in text
    assert re.search(r"crw.* 136,\s*0 .*/dev/console", text), text


# --- failures and bad input ---------------------------------------------------

def test_failed_step_is_reported_and_nothing_left(run):
    p = run("/bin/true", opts=["--cwd", "/does/not/exist"])
    assert p.returncode == 1
    assert re.fullmatch(r"vserver: run: run-\d+: chdir /does/not/exist: No such file or "
                        r"directory\n", p.stderr), p.stderr
    p = run("/no/such/command")
    assert p.returncode == 1
    assert "exec /no/such/command: No such file or directory" in p.stderr
    p = run("/bin/true", opts=["--bind", "/no/such/dir:/data"])
    assert p.returncode == 1
    assert re.fullmatch(r"vserver: run: run-\d+: bind /no/such/dir: open the source: No such "
                        r"file or directory\n", p.stderr), p.stderr


@pytest.mark.parametrize("opts,message", [
    (["--cap-add", "NET_WIZARD"], '--cap-add: "NET_WIZARD" is not a capability'),
    (["--seccomp", "strict"], '--seccomp "strict": say default, none or a file path'),
    (["--bind", "/tmp"], 'bind "/tmp": say SRC:DST or SRC:DST:ro'),
    (["--bind", "/tmp:/x:rx"], 'option "rx" is not ro, rw or idmap'),
    (["--bind", "/tmp:/a/../b"], "the target may not contain .."),
    (["--rlimit", "nofile=lots"], 'rlimit NOFILE: "lots" is not a number'),
    (["--rlimit", "files=1"], 'rlimit "files": unknown resource'),
    (["--net", "bridge"], '--net "bridge": say none or host'),
    (["--hostname", "bad name"], '--hostname "bad name" is not a host name'),
    (["--frobnicate"], "unknown option --frobnicate"),
    (["--name", "../x"], '--name "../x" is not a valid name'),
    (["--cgroup-parent", "a/../b"], 'cgroup parent "a/../b" is not valid'),
])
def test_bad_options_give_one_line(run, opts, message):
    p = run("/bin/true", opts=opts)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vserver: run: "), p.stderr
    assert message in lines[0], p.stderr


def test_missing_rootfs_and_command(workdir):
    p = subprocess.run([VSERVER, "run", "--", "/bin/true"], capture_output=True, text=True)
    assert p.returncode == 2 and "--rootfs DIR is required" in p.stderr
    p = subprocess.run([VSERVER, "run", "--rootfs", str(workdir / "nope"), "--", "/bin/true"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "is not a directory" in p.stderr
    p = subprocess.run([VSERVER, "run", "--rootfs", str(workdir)], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "no command given" in p.stderr


def test_version_and_help():
    p = subprocess.run([VSERVER, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and re.fullmatch(r"vserver \d+\.\d+\.\d+\n", p.stdout)
    p = subprocess.run([VSERVER, "help", "run"], capture_output=True, text=True)
    assert p.returncode == 0 and "--rootfs DIR" in p.stdout
    p = subprocess.run([VSERVER, "frob"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr == 'vserver: unknown command "frob" (see vserver help)\n'


def test_signal_forwarded_to_pid1(run, rootfs):
    proc = subprocess.Popen([VSERVER, "run", "--rootfs", str(rootfs), "--", "/bin/sh", "-c",
                             "trap 'echo got-term; exit 5' TERM; echo ready; "
                             "while :; do sleep 0.1; done"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "got-term" in out
    assert proc.returncode == 5


def test_kill_of_cli_mid_run_leaves_context_to_the_kernel(run, rootfs):
    """SIGKILL of vserver: PID 1 lives on (daemonless); its cgroup still tracks it."""
    proc = subprocess.Popen([VSERVER, "run", "--name", "orphan", "--rootfs", str(rootfs), "--",
                             "/bin/sh", "-c", "echo ready; sleep 300"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.kill()
    proc.wait()
    dirs = [d + "/orphan" for d in cgroup_dirs()]
    pids = open(dirs[0] + "/cgroup.procs").read().split()  # no leaf without --delegate
    assert pids, "the context's processes are still tracked by its cgroup"
    # clean up the way `vserver stop` does: kill the cgroup, then remove it
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    for d in dirs:
        for _ in range(500):
            try:
                if os.path.isdir(d + "/guest"):
                    os.rmdir(d + "/guest")
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.01)
    assert not any(os.path.exists(d) for d in dirs)


def test_help_synopsis():
    p = subprocess.run([VSERVER, "help", "run"], capture_output=True, text=True)
    assert p.stdout.startswith("Usage: vserver run [OPTIONS] --rootfs DIR -- COMMAND [ARG...]\n")
