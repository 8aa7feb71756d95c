"""The engines from Debian driving vserver-runc: podman (with conmon) and containerd
(ctr with the runc shim).  Each on its own storage, state and socket under the test's
directory; cgroupfs and file events (systemd is not PID 1 here)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CG_PARENT, RUNC

# ulimits within this machine's hard limits (root lacks CAP_SYS_RESOURCE here)
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def gone(d: Path):
    """Remove @d; an engine's helper may still be writing its last file there."""
    for _ in range(50):
        shutil.rmtree(d, ignore_errors=True)
        if not d.exists():
            return
        time.sleep(0.1)
    assert not d.exists(), f"{d} left behind"


def need(prog):
    if not shutil.which(prog):
        pytest.fail(f"{prog} is not installed (tools/deps.sh installs it)")


class Podman:
    def __init__(self, d: Path, rootfs: Path):
        self.d = d
        self.rootfs = rootfs
        self.base = ["podman", "--root", str(d / "storage"), "--runroot", str(d / "run"),
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--runtime", RUNC,
                     "--tmpdir", str(d / "tmp")]
        # conmon's own cgroup and the containers' go under the runner's, as every test's
        self.cg = ["--cgroup-parent", f"/{own_cgroup()}/{CG_PARENT}"]

    def __call__(self, *args, timeout=90, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.base + list(args), timeout=timeout, **kw)

    def run(self, *args, **kw):
        return self("run", *self.cg, *ULIMITS, "--network", "none", *args, **kw)


def own_cgroup():
    """Our cgroup in the memory hierarchy (v1) or the cgroup2 tree, without the leading /."""
    for line in open("/proc/self/cgroup"):
        _h, ctrls, path = line.rstrip("\n").split(":", 2)
        if "memory" in ctrls.split(",") or (ctrls == "" and path != "/"):
            return path.strip("/")
    return ""


def cgroup_mounts():
    return [l.split()[4] for l in open("/proc/self/mountinfo")
            if l.split(" - ", 1)[1].split()[0] in ("cgroup", "cgroup2")]


def parent_dirs():
    """Every directory podman's --cgroup-parent names, in every hierarchy: it makes the
    same absolute path in each, also where our own cgroup is elsewhere."""
    parts = f"{own_cgroup()}/{CG_PARENT}".strip("/").split("/")
    return [os.path.join(m, *parts[:i]) for m in cgroup_mounts()
            for i in range(1, len(parts) + 1)]


def remove_made(before):
    """What podman (and the runtime, following its cgroupsPath) made there: conmon's
    cgroup and the parents that were not there before, deepest first.  A conmon that
    ended is reaped by the machine's init in its own time: retry while busy."""
    made = [d for d in parent_dirs() if d not in before]
    made += [os.path.join(d, "conmon") for d in parent_dirs()]
    for d in sorted(set(made), key=len, reverse=True):
        for _ in range(300):
            try:
                if os.path.isdir(d):
                    os.rmdir(d)
                break
            except OSError:
                time.sleep(0.1)
        assert not os.path.isdir(d) or d in before, f"cgroup {d} left behind"


@pytest.fixture
def podman(workdir, rootfs, request):
    need("podman")
    need("conmon")
    # podman wants a runroot of at most 50 characters
    d = Path(tempfile.mkdtemp(prefix="vsp-"))
    (d / "tmp").mkdir()
    state_root_before = os.path.exists("/run/vserver-runc")  # podman passes no --root
    cgroups_before = {c for c in parent_dirs() if os.path.isdir(c)}
    p = Podman(d, rootfs)
    yield p
    p("rm", "--all", "--force", "--time", "0")
    subprocess.run(["umount", "-R", str(d)], capture_output=True)
    gone(d)
    if not state_root_before and os.path.isdir("/run/vserver-runc"):
        os.rmdir("/run/vserver-runc")  # empty: every container was deleted
    # podman's cgroupfs manager puts conmon in PARENT/conmon and leaves it there
    remove_made(cgroups_before)


def test_podman_run_exit_code_and_output(podman):
    p = podman.run("--rm", "--rootfs", str(podman.rootfs), "sh", "-c",
                   "echo hello; hostname; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout.splitlines()[0] == "hello"


def test_podman_detached_exec_logs_pause_stop(podman):
    p = podman.run("-d", "--name", "w1", "--rootfs", str(podman.rootfs), "sh", "-c",
                   "echo started; trap 'exit 0' TERM; while true; do sleep 0.2; done")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    ps = podman("ps", "--format", "{{.Names}} {{.Status}}")
    assert ps.stdout.startswith("w1 Up"), ps.stdout + ps.stderr
    e = podman("exec", "w1", "sh", "-c", "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '")
    assert e.returncode == 0, e.stderr
    assert "in-exec" in e.stdout and "while true" in e.stdout
    assert podman("exec", "w1", "sh", "-c", "exit 9").returncode == 9
    assert "started" in podman("logs", "w1").stdout
    assert podman("pause", "w1").returncode == 0
    assert "Paused" in podman("ps", "-a", "--format", "{{.Status}}").stdout
    assert podman("unpause", "w1").returncode == 0
    top = podman("top", "w1")
    assert top.returncode == 0 and "while true" in top.stdout, top.stderr
    st = podman("stop", "-t", "5", "w1")
    assert st.returncode == 0, st.stderr
    insp = json.loads(podman("inspect", "w1").stdout)[0]
    assert insp["State"]["Status"] == "exited" and insp["State"]["ExitCode"] == 0
    assert podman("rm", "w1").returncode == 0
    assert not (podman.d / "run" / "runc" / cid).exists()


def test_podman_kill_and_terminal(podman):
    p = podman.run("-d", "--name", "k1", "--rootfs", str(podman.rootfs), "sleep", "1000")
    assert p.returncode == 0, p.stderr
    assert podman("kill", "-s", "KILL", "k1").returncode == 0
    podman("wait", "k1")
    insp = json.loads(podman("inspect", "k1").stdout)[0]
    assert insp["State"]["ExitCode"] == 137
    # -t: conmon takes the pty through --console-socket
    t = subprocess.run(["script", "-qec",
                        " ".join(podman.base + ["run", *podman.cg, *ULIMITS, "--rm", "-t",
                                                "--network", "none", "--rootfs",
                                                str(podman.rootfs), "sh", "-c",
                                                "'tty; echo tty-done'"]),
                        "/dev/null"], capture_output=True, text=True, timeout=90,
                       stdin=subprocess.DEVNULL)
    assert "/dev/pts/0" in t.stdout and "tty-done" in t.stdout, t.stdout + t.stderr


def test_podman_memory_limit_oom_kills(podman):
    p = podman.run("--rm", "-m", "32m", "--memory-swap", "32m", "--rootfs", str(podman.rootfs),
                   "sh", "-c", "x=a; while true; do x=$x$x; done")
    assert p.returncode == 137, p.stderr


def test_podman_pair_shares_a_netns(podman):
    p = podman.run("-d", "--name", "n1", "--rootfs", str(podman.rootfs), "sleep", "1000")
    assert p.returncode == 0, p.stderr
    pid = json.loads(podman("inspect", "n1").stdout)[0]["State"]["Pid"]
    q = podman("run", *podman.cg, *ULIMITS, "--rm", "--network", "container:n1", "--ipc",
               "container:n1", "--rootfs", str(podman.rootfs), "sh", "-c",
               "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc")
    assert q.returncode == 0, q.stderr
    assert q.stdout.split() == [os.readlink(f"/proc/{pid}/ns/net"),
                                os.readlink(f"/proc/{pid}/ns/ipc")]


class Containerd:
    def __init__(self, d: Path):
        self.d = d
        self.sock = d / "containerd.sock"
        (d / "config.toml").write_text(f"""version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
""")
        self.log = open(d / "containerd.log", "w")
        self.proc = subprocess.Popen(["containerd", "--config", str(d / "config.toml")],
                                     stdout=self.log, stderr=self.log)
        for _ in range(100):
            if self.sock.exists():
                break
            time.sleep(0.1)

    def __call__(self, *args, timeout=90, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(["ctr", "--address", str(self.sock), *args], timeout=timeout, **kw)

    def stop(self):
        for t in self("task", "ls", "-q").stdout.split():
            self("task", "kill", "-s", "KILL", t)
            time.sleep(0.3)
            self("task", "rm", "-f", t)
        for c in self("containers", "ls", "-q").stdout.split():
            self("containers", "rm", c)
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def ctr(workdir, request):
    need("containerd")
    need("ctr")
    d = workdir / f"ctd-{request.node.name[:30]}"
    d.mkdir()
    run_before = os.path.exists("/run/containerd")
    c = Containerd(d)
    yield c
    c.stop()
    subprocess.run(["umount", "-R", str(d)], capture_output=True)
    gone(d)
    # containerd keeps fifos and shim sockets in /run/containerd whatever its config says
    if not run_before:
        shutil.rmtree("/run/containerd", ignore_errors=True)


def ctr_run(ctr, rootfs, name, *cmd, opts=()):
    return ctr("run", *opts, "--runc-binary", RUNC, "--cgroup", f"{CG_PARENT}/ctr-{name}",
               "--rootfs", str(rootfs), name, *cmd)


def test_containerd_run_exit_code(ctr, rootfs):
    p = ctr_run(ctr, rootfs, "c1", "sh", "-c", "echo hello from ctr; exit 5", opts=("--rm",))
    assert p.returncode == 5, p.stderr
    assert "hello from ctr" in p.stdout


def test_containerd_detached_exec_pause_kill(ctr, rootfs):
    p = ctr_run(ctr, rootfs, "c2", "sh", "-c", "while true; do sleep 0.2; done", opts=("-d",))
    assert p.returncode == 0, p.stderr
    assert "RUNNING" in ctr("task", "ls").stdout
    e = ctr("task", "exec", "--exec-id", "e1", "c2", "sh", "-c", "echo exec-ok; exit 6")
    assert e.returncode == 6 and "exec-ok" in e.stdout, e.stderr
    assert ctr("task", "pause", "c2").returncode == 0
    assert "PAUSED" in ctr("task", "ls").stdout
    assert ctr("task", "resume", "c2").returncode == 0
    assert "RUNNING" in ctr("task", "ls").stdout
    m = ctr("task", "metrics", "c2")
    assert m.returncode == 0 and "memory" in m.stdout, m.stderr
    assert ctr("task", "kill", "-s", "KILL", "c2").returncode == 0
    for _ in range(100):
        if "STOPPED" in ctr("task", "ls").stdout:
            break
        time.sleep(0.1)
    assert "STOPPED" in ctr("task", "ls").stdout
    assert ctr("task", "rm", "c2").returncode == 0
    assert ctr("containers", "rm", "c2").returncode == 0
