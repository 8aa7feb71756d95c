"""Integration tests: real contexts, run as root, with a leftovers check.

Every cgroup a test makes goes under "vs-test-<pid>" below the runner's own
cgroup in each hierarchy (a relative cgroup parent), so nothing escapes the
machine's accounting; the suite fails if any mount, cgroup or process of
its own is left.
"""
import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VSERVER = os.environ.get("VSERVER_BIN", str(REPO / "build" / "vserver"))
CG_PARENT = f"vs-test-{os.getpid()}"
BUSYBOX = "/bin/busybox"


def cgroup_dirs(parent=CG_PARENT):
    """The directories of @parent in every hierarchy (existing or not)."""
    mounts = {}
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ", 1)
        f = left.split()
        fstype, _src, opts = right.split()[:3]
        if fstype == "cgroup2":
            mounts.setdefault("", (f[4], f[3]))
        elif fstype == "cgroup":
            mounts.setdefault(frozenset(opts.split(",")), (f[4], f[3]))
    dirs = []
    for line in open("/proc/self/cgroup"):
        _hid, ctrls, own = line.rstrip("\n").split(":", 2)
        for key, (mnt, root) in mounts.items():
            if (ctrls == "" and key == "") or (ctrls and key and set(ctrls.split(",")) <= key):
                rel = own[len(root):] if root != "/" and own.startswith(root) else own
                dirs.append(os.path.normpath(f"{mnt}/{rel}/{parent}"))
                break
    return dirs


def make_rootfs(path: Path):
    """A busybox guest: static busybox, its applets, passwd/group, and the escape helper."""
    for d in ("bin", "etc", "tmp", "root", "mnt", "proc", "sys", "dev", "run"):
        (path / d).mkdir(parents=True, exist_ok=True)
    (path / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    for applet in subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                                 check=True).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", path / "bin" / applet)
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (path / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    for name in ("escape", "syscalls"):
        helper = Path(__file__).parent / "integration" / "helpers" / f"{name}.c"
        subprocess.run(["gcc", "-static", "-O2", "-o", str(path / "bin" / f"vs-{name}"),
                        str(helper)], check=True)


def compile_static(src: Path, out: Path):
    """A test helper (tests/*/helpers/*.c) as a static binary a guest can run."""
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(src)], check=True)
    return out


def sealed_exe(seen):
    """What a guest read of /proc/self/exe of our binary: a read-only clone of its
    mount that no path reaches (shown from that mount's own root: "/"), or a sealed
    memfd copy; never the file on the host."""
    return bool(seen) and (seen == "/" or seen.startswith("/memfd:vserver"))


def view_server():
    """(keeper pid, worker pid) of the running view server, or None."""
    try:
        keeper, worker = open("/run/vserver-host/views.lock").read().split()[:2]
    except (OSError, ValueError):
        return None
    alive = [p for p in (int(keeper), int(worker)) if os.path.exists(f"/proc/{p}")]
    return (int(keeper), int(worker)) if alive else None


def stop_view_server():
    """The view server our guests started goes with the session (it would on its own,
    a minute after its last guest), its mount with it: a SIGTERM to the worker ends
    the serving and unmounts (in its own mount namespace, PID 1's), and the keeper,
    with no guest left, ends with it."""
    pids = view_server()
    if not pids:
        return
    keeper, worker = pids

    def gone(pid, secs):
        deadline = time.time() + secs
        while time.time() < deadline:
            if not os.path.exists(f"/proc/{pid}"):
                return True
            time.sleep(0.05)
        return False

    try:
        os.kill(worker, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not gone(keeper, 10):
        for p in (keeper, worker):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        gone(keeper, 5)
        subprocess.run(["nsenter", "-t", "1", "-m", "umount", "-l", "/run/vserver-host/views"],
                       capture_output=True)


@pytest.fixture(scope="session")
def workdir():
    if os.geteuid() != 0:
        pytest.exit("the integration tests run real contexts: run them as root", 2)
    d = Path(tempfile.mkdtemp(prefix="vs-test-"))
    # netns guests of tests without a bridge of their own make the default one
    bridge_before = os.path.exists("/sys/class/net/vsbr0")
    host_run_before = os.path.exists("/run/vserver-host")
    os.environ["VSERVER_CGROUP_PARENT"] = CG_PARENT
    # the host-side unix guard of isolate mode goes on our own cgroup2, not the machine's root
    own = [l.split("::", 1)[1].strip() for l in open("/proc/self/cgroup") if l.startswith("0::")]
    if own:
        os.environ["VSERVER_UNIX_GUARD_CGROUP"] = own[0]
    yield d
    shutil.rmtree(d, ignore_errors=True)
    if not bridge_before and os.path.exists("/sys/class/net/vsbr0"):
        subprocess.run(["ip", "link", "del", "vsbr0"], capture_output=True)
    # the host-wide run directory our guests made (a guest still running is caught
    # below, by its cgroups)
    if not host_run_before:
        stop_view_server()
        shutil.rmtree("/run/vserver-host", ignore_errors=True)
    left = []
    for c in sorted(cgroup_dirs(), key=len, reverse=True):
        if os.path.isdir(c):
            subs = [e for e in os.listdir(c) if os.path.isdir(os.path.join(c, e))]
            left += [os.path.join(c, s) for s in subs]
            try:
                os.rmdir(c)
            except OSError as e:
                left.append(f"{c}: {e}")
    # and nowhere else: a tool given an absolute parent (podman) makes it in every hierarchy
    ours = set(cgroup_dirs())
    for mnt in {l.split()[4] for l in open("/proc/self/mountinfo")
                if l.split(" - ", 1)[1].split()[0] in ("cgroup", "cgroup2")}:
        for base, dirs, _ in os.walk(mnt):
            if base.count("/") - mnt.count("/") >= 4:
                dirs[:] = []
            for name in dirs:
                if name == CG_PARENT and os.path.join(base, name) not in ours:
                    left.append(os.path.join(base, name))
    assert not left, f"cgroups left behind: {left}"


@pytest.fixture(scope="session")
def rootfs(workdir):
    r = workdir / "rootfs"
    make_rootfs(r)
    return r


def mounts_mentioning(text):
    return [l for l in open("/proc/self/mountinfo") if text in l]


def process_ended(pid):
    """True once pid has exited: gone, or a zombie waiting for its reaper.
    Reads /proc once, so a process that goes between two reads is no race."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def leftover_processes(wait=3.0):
    """Live host pids whose cgroup is one of ours.  A killed process whose
    parent died is reaped by the host's init; give that a moment."""
    deadline = time.time() + wait
    while True:
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cg = open(f"/proc/{pid}/cgroup").read()
                state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"/{CG_PARENT}/" in cg and state != "Z":
                found.append(pid)
        if not found or time.time() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_leftovers(request):
    """After each test: no mount of the test dir, no process or cgroup of ours."""
    yield
    if "workdir" not in request.fixturenames and "rootfs" not in request.fixturenames:
        return
    wd = request.getfixturevalue("workdir")
    assert mounts_mentioning(str(wd)) == [], "mounts left behind"
    assert leftover_processes() == [], "processes left behind"
    for c in cgroup_dirs():
        if os.path.isdir(c):
            subs = [e for e in os.listdir(c) if os.path.isdir(os.path.join(c, e))]
            assert subs == [], f"cgroups left behind in {c}: {subs}"


class Runner:
    def __init__(self, rootfs):
        self.rootfs = rootfs

    def __call__(self, *cmd, opts=(), check=False, **kw):
        """vserver run [opts] --rootfs ROOT -- cmd...; returns CompletedProcess."""
        args = [VSERVER, "run", *opts, "--rootfs", str(self.rootfs), "--", *cmd]
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        p = subprocess.run(args, **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"{args} exited {p.returncode}: {p.stderr}")
        return p

    def sh(self, script, opts=(), **kw):
        return self("/bin/sh", "-c", script, opts=opts, **kw)


@pytest.fixture
def run(rootfs):
    return Runner(rootfs)


class Install:
    """One vserver installation under its own VSERVER_ROOT, for one test."""

    def __init__(self, root: Path):
        self.root = root
        self.env = dict(os.environ, VSERVER_ROOT=str(root))
        self.userns = None  # the host setting "userns" its guests are built with, if not default

    def __call__(self, *args, check=False, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        kw.setdefault("env", self.env)
        p = subprocess.run([VSERVER, *args], **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"vserver {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def popen(self, *args, **kw):
        kw.setdefault("env", self.env)
        return subprocess.Popen([VSERVER, *args], **kw)

    def host_conf(self, text):
        """Write the installation's host settings (vserver.conf)."""
        if self.userns is not None and "userns =" not in text:
            line = f"userns = {'yes' if self.userns else 'no'}\n"
            text = text.replace("[host]\n", "[host]\n" + line, 1) if "[host]\n" in text \
                else "[host]\n" + line + text
        conf = self.root / "etc/vserver/vserver.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)

    def default_userns(self, on: bool):
        """New guests of this installation with (the default) or without a user namespace."""
        self.userns = on
        self.host_conf("[host]\n")

    def conf(self, name):
        return self.root / "etc/vserver/guests" / f"{name}.conf"

    def rootfs(self, name):
        return self.root / "var/lib/vserver/guests" / name / "rootfs"

    def log(self, name):
        return self.root / "var/log/vserver" / f"{name}.log"

    def guests(self):
        d = self.root / "etc/vserver/guests"
        return sorted(p.stem for p in d.glob("*.conf")) if d.is_dir() else []

    def cgroup(self, name):
        """The guest's PARENT/NAME directory in every hierarchy."""
        return [d + "/" + name for d in cgroup_dirs()]

    def exec_out(self, name, script):
        p = self("exec", name, "--", "/bin/sh", "-c", script, check=True)
        return p.stdout


def pytest_generate_tests(metafunc):
    """Every attack in tests/security/ is played against both kinds of guest: with a
    user namespace of its own (the default) and without one (userns = no)."""
    if "userns_mode" in metafunc.fixturenames and "/security/" in str(metafunc.definition.path):
        metafunc.parametrize("userns_mode", ["userns", "no-userns"])


@pytest.fixture
def userns_mode():
    return "userns"


@pytest.fixture
def vs(workdir, request, userns_mode):
    root = workdir / f"inst-{request.node.name[:40]}"
    root.mkdir()
    inst = Install(root)
    if userns_mode == "no-userns":
        inst.default_userns(False)
    yield inst
    # whatever the test did, no guest of it stays up or on disk
    for name in inst.guests():
        inst("delete", "--force", name)
    shutil.rmtree(root, ignore_errors=True)
    # the console keeper of this installation ends with its last guest
    assert processes_of_installation(root) == [], "a console keeper outlived its guests"


def processes_of_installation(root: Path, wait=3.0):
    """Pids running with VSERVER_ROOT=@root (the console keeper, a stray command)."""
    needle = f"VSERVER_ROOT={root}\0".encode()
    deadline = time.time() + wait
    while True:
        found = []
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    if needle in open(f"/proc/{pid}/environ", "rb").read() + b"\0":
                        found.append(pid)
                except OSError:
                    pass
        if not found or time.time() > deadline:
            return found
        time.sleep(0.1)


def pty_session(args, env, typed: bytes, secs=20, winsize=None):
    """Run @args on a pty of ours, type @typed; (what it printed, its exit code)."""
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    if winsize:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *winsize, 0, 0))
    proc = subprocess.Popen([str(a) for a in args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    os.write(master, typed)
    out = b""
    deadline = time.time() + secs
    poller = select.poll()
    poller.register(master, select.POLLIN)
    while time.time() < deadline and proc.poll() is None:
        if poller.poll(200):
            try:
                out += os.read(master, 4096)
            except OSError:
                break
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    os.close(master)
    return out.decode(errors="replace"), proc.returncode


RUNC = os.environ.get("VSERVER_RUNC_BIN", str(Path(VSERVER).parent / "vserver-runc"))


class Oci:
    """vserver-runc with a state root of its own, and bundles on the test rootfs."""

    def __init__(self, d: Path, rootfs: Path):
        self.dir = d
        self.state = d / "state"
        self.rootfs = rootfs
        self.ids = set()

    def __call__(self, *args, check=False, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        if "stdin" not in kw and "input" not in kw:
            kw["stdin"] = subprocess.DEVNULL
        p = subprocess.run([RUNC, "--root", str(self.state), *args], **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"vserver-runc {args} exited {p.returncode}: {p.stderr}")
        return p

    def bundle(self, name, args, edit=None):
        """A bundle NAME: `spec`'s config, no terminal, @args, our rootfs, our cgroup."""
        import json
        b = self.dir / f"bundle-{name}"
        b.mkdir(parents=True, exist_ok=True)
        cfg = b / "config.json"
        if cfg.exists():
            cfg.unlink()
        self("spec", "--bundle", str(b), check=True)
        c = json.loads(cfg.read_text())
        c["process"]["terminal"] = False
        c["process"]["args"] = list(args)
        c["root"] = {"path": str(self.rootfs), "readonly": False}
        c["linux"]["cgroupsPath"] = f"{CG_PARENT}/oci-{name}"
        if edit:
            edit(c)
        cfg.write_text(json.dumps(c, indent=1))
        self.ids.add(name)
        return b

    def run(self, name, args, edit=None, **kw):
        """run (foreground): its output, exit code."""
        b = self.bundle(name, args, edit)
        return self("run", "--bundle", str(b), name, **kw)

    def create(self, name, args, edit=None, opts=()):
        """create, the process's stdout and stderr on a pipe (read with output())."""
        b = self.bundle(name, args, edit)
        r, w = os.pipe()
        p = subprocess.run([RUNC, "--root", str(self.state), "create", "--bundle", str(b),
                            *opts, name], stdin=subprocess.DEVNULL, stdout=w, stderr=w,
                           timeout=60)
        os.close(w)
        os.set_blocking(r, False)
        self.pipes = getattr(self, "pipes", {})
        self.pipes[name] = r
        return p.returncode

    def output(self, name, wait=5.0, until=None):
        """What the container wrote so far (up to @until, or until its end)."""
        r = self.pipes[name]
        out = b""
        deadline = time.time() + wait
        while time.time() < deadline:
            ready, _, _ = select.select([r], [], [], 0.1)
            if not ready:
                if until is not None and until.encode() in out:
                    break
                continue
            try:
                chunk = os.read(r, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            out += chunk
            if until is not None and until.encode() in out:
                break
        return out.decode(errors="replace")

    def state_of(self, name):
        import json
        p = self("state", name)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def cleanup(self):
        for name in self.ids:
            self("delete", "--force", name)
        for r in getattr(self, "pipes", {}).values():
            os.close(r)


@pytest.fixture
def oci(workdir, rootfs, request):
    d = workdir / f"oci-{request.node.name[:40]}"
    d.mkdir()
    o = Oci(d, rootfs)
    yield o
    o.cleanup()
    shutil.rmtree(d, ignore_errors=True)
