"""A hostile guest root against the host: every way out the audit found (issue 13),
each played for real and harmless by construction (a copy of the binary as the
overwrite target, files under the test's own directory, marks of our own)."""
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import VSERVER, pty_session, sealed_exe

HELPERS = Path(__file__).parent / "helpers"


def arm(rootfs: Path):
    """The attacker's tools in a guest tree: vs-attack, a loader standing in for
    ld-linux-x86-64.so.2 (vserver's ELF interpreter), and links to /proc/self/exe."""
    subprocess.run(["gcc", "-static", "-O2", "-o", str(rootfs / "bin/vs-attack"),
                    str(HELPERS / "attack.c")], check=True)
    (rootfs / "lib64").mkdir(exist_ok=True)
    (rootfs / "vs-out").mkdir(exist_ok=True)  # not /tmp: a tmpfs in booted guests
    subprocess.run(["gcc", "-nostdlib", "-static-pie", "-fPIE", "-O2", "-fno-stack-protector",
                    "-o", str(rootfs / "lib64/ld-linux-x86-64.so.2"), str(HELPERS / "loader.c")],
                   check=True)
    for name in ("exe-link", "ps"):
        p = rootfs / "bin" / name
        if p.is_symlink() or p.exists():
            p.unlink()
        os.symlink("/proc/self/exe", p)


@pytest.fixture
def copy(vs, workdir):
    """A copy of vserver to run the guests with: the only thing an overwrite could hit."""
    path = vs.root / "vserver-copy"
    shutil.copy2(VSERVER, path)

    def run(*args, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        kw.setdefault("env", vs.env)
        return subprocess.run([str(path), *args], **kw)
    run.path = path
    run.digest = lambda: hashlib.sha256(path.read_bytes()).hexdigest()
    return run


def wait_for(path: Path, secs=15.0):
    end = time.time() + secs
    while time.time() < end:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    return None


def assert_not_overwritten(vs, copy, before):
    """What the guest's loader saw of the binary, what its overwrite got, the copy."""
    seen = wait_for(vs.rootfs("x") / "vs-out/exe-seen")
    assert sealed_exe(seen), seen  # never the file on the host
    result = wait_for(vs.rootfs("x") / "vs-out/overwrite")
    # refused (a read-only mount, or the seals), or still busy (the console keeper runs it)
    assert result and result.split()[0] in ("REFUSED", "BUSY"), result
    assert copy.digest() == before
    vs("stop", "x", "--timeout", "1")


def test_overwriting_the_host_binary_through_init_is_refused(vs, copy):
    """Item 1, via start: init links to /proc/self/exe, so the kernel runs our binary
    as the guest's init with the guest's loader, which keeps a descriptor of it."""
    before = copy.digest()
    copy("build", "x", "--init", "/bin/exe-link", check=True)
    arm(vs.rootfs("x"))
    p = copy("start", "x")
    assert p.returncode == 0, p.stderr
    assert_not_overwritten(vs, copy, before)


def test_overwriting_the_host_binary_through_exec_is_refused(vs, copy):
    """Item 1, via exec: a guest's `ps` links to /proc/self/exe."""
    before = copy.digest()
    copy("build", "x", check=True)
    arm(vs.rootfs("x"))
    copy("start", "x", check=True)
    p = copy("exec", "x", "--", "ps")
    assert p.returncode == 0, p.stderr
    assert_not_overwritten(vs, copy, before)


def test_overwriting_the_host_binary_through_run_sees_no_host_file(run, workdir):
    """Item 1, via run: PID 1 is our binary; what it sees of itself is the sealed copy."""
    rootfs = workdir / "rootfs-armed"
    if not rootfs.exists():
        shutil.copytree(run.rootfs, rootfs, symlinks=True)
        arm(rootfs)
    (rootfs / "vs-out/exe-seen").unlink(missing_ok=True)
    (rootfs / "vs-out/overwrite").unlink(missing_ok=True)
    # PID 1 waits for the overwrite forever: end it from outside once it has looked
    args = [VSERVER, "run", "--rootfs", str(rootfs), "--", "/bin/exe-link"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = wait_for(rootfs / "vs-out/exe-seen")
        assert sealed_exe(seen), seen
    finally:
        p.terminate()  # forwarded to PID 1, which ignores it: take the context down
        for line in subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True,
                                   text=True).stdout.splitlines():
            f = line.split(None, 2)
            if len(f) == 3 and f[1] == str(p.pid):
                os.kill(int(f[0]), 9)
        p.wait(timeout=30)


@pytest.mark.parametrize("how", ["exec --cwd", "home link"])
def test_a_magic_link_cwd_reaches_no_host_directory(vs, how):
    """Item 2: a cwd of /proc/self/fd/N would land in whatever N is (CVE-2024-21626)."""
    vs("build", "x", check=True)
    marker = vs.root / "host-only-marker"
    marker.write_text("secret")
    marker.chmod(0o600)
    vs("start", "x", check=True)
    for fd in range(3, 12):
        if how == "exec --cwd":
            p = vs("exec", "x", "--cwd", f"/proc/self/fd/{fd}", "--", "/bin/sh", "-c", "pwd; ls -a")
        else:
            root_home = vs.rootfs("x") / "root"
            shutil.rmtree(root_home, ignore_errors=True)
            if root_home.is_symlink():
                root_home.unlink()
            os.symlink(f"/proc/self/fd/{fd}", root_home)
            p = vs("exec", "x", "--cwd", "/root", "--", "/bin/sh", "-c", "pwd; ls -a")
        # refused, never started somewhere outside the guest
        assert p.returncode != 0, (fd, p.stdout)
        assert "chdir" in p.stderr, p.stderr
    # and what an exec'd process holds: its three pipes, nothing else of ours
    p = vs("exec", "x", "--", "/bin/sh", "-c",
           "ls /proc/self/fd; for f in 0 1 2; do readlink /proc/self/fd/$f; done")
    fds = p.stdout.split()
    assert fds[:4] == ["0", "1", "2", "3"] and len(fds) == 7, p.stdout  # 3: ls's own dir
    assert all(l.startswith("pipe:") for l in fds[4:]), p.stdout
    vs("stop", "x", "--timeout", "1")


def test_host_stdio_never_reaches_the_guest(vs, workdir):
    """Item 4: exec's redirections are the caller's files; the guest gets pipes."""
    vs("build", "x", check=True)
    vs("start", "x", check=True)
    src, dst = vs.root / "stdin-file", vs.root / "stdout-file"
    src.write_text("host input\n")
    src.chmod(0o600)
    with open(src) as i, open(dst, "w") as o:
        p = subprocess.run([VSERVER, "exec", "x", "--", "/bin/sh", "-c",
                            "cat; chmod 666 /proc/self/fd/0 /proc/self/fd/1 2>/dev/null; "
                            "echo overwritten > /proc/self/fd/0; readlink /proc/self/fd/0"],
                           stdin=i, stdout=o, stderr=subprocess.PIPE, env=vs.env, timeout=30)
    assert p.returncode == 0, p.stderr
    out = dst.read_text()
    assert out.startswith("host input\n"), out  # relayed both ways
    assert "pipe:" in out
    assert src.read_text() == "host input\n"
    assert (src.stat().st_mode & 0o777, dst.stat().st_mode & 0o777) == (0o600, 0o644)
    vs("stop", "x", "--timeout", "1")


def test_exec_shows_the_guest_no_host_mount(vs, workdir):
    """Item 5: a process the guest can see was once in the host's mount namespace."""
    vs("build", "x", check=True)
    arm(vs.rootfs("x"))
    vs("start", "x", check=True)
    mark = vs.root / "host-mount-mark-5"
    mark.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "vs-mark-5", str(mark)], check=True)
    try:
        scan = vs.popen("exec", "x", "--", "/bin/vs-attack", "scan-mountinfo", "vs-mark-5", "4",
                        stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        for _ in range(60):
            vs("exec", "x", "--", "/bin/true", check=True)
        out, _ = scan.communicate(timeout=30)
        assert out.startswith("CLEAN"), out
        assert int(out.split()[1]) > 60  # it did look at the execs
    finally:
        subprocess.run(["umount", str(mark)], check=True)
    vs("stop", "x", "--timeout", "1")


def host_links():
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("mode", ["netns", "none", "isolate"])
def test_no_guest_holds_net_admin_of_the_host(vs, mode, userns_mode):
    """Item 3: NET_ADMIN of the initial user namespace reaches every netns by nsid."""
    vs("build", "x", "--net", mode, check=True)
    arm(vs.rootfs("x"))
    vs("start", "x", check=True)
    status = vs.exec_out("x", "grep CapBnd /proc/self/status")
    bnd = int(status.split()[1], 16)
    before = host_links()
    if userns_mode == "userns" and mode != "isolate":
        # NET_ADMIN over its own user namespace: its own stack is its own, and no other
        assert bnd & (1 << 12), status
        vs("exec", "x", "--", "ip", "link", "set", "lo", "mtu", "1280", check=True)
        assert "mtu 1280" in vs.exec_out("x", "ip -o link show lo")
        p = vs("exec", "x", "--", "/bin/vs-attack", "nsid-link")
        assert p.stdout.strip().startswith("error"), p.stdout + p.stderr
    else:
        p = vs("exec", "x", "--", "ip", "link", "add", "vs-evil0", "type", "dummy")
        if userns_mode != "userns":
            assert not bnd & (1 << 12) and not bnd & (1 << 13), status  # NET_ADMIN, NET_RAW
        assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr
    assert host_links() == before
    vs("stop", "x", "--timeout", "1")
    if userns_mode == "userns":
        return
    # and the guest file cannot hand it out without a user namespace
    p = vs("build", "y", "--net", mode, "--set", "security.capabilities.add=NET_ADMIN")
    assert p.returncode == 2 and "NET_ADMIN" in p.stderr, p.stderr


def enter(vs, binary, name, typed: bytes, secs=20):
    return pty_session([binary, "enter", name], vs.env, typed, secs)


def test_enter_with_a_magic_link_home_stays_in_the_guest(vs):
    """Item 2 via enter: root's home is a link to /proc/self/fd/N."""
    vs("build", "x", check=True)
    vs("start", "x", check=True)
    home = vs.rootfs("x") / "root"
    shutil.rmtree(home)
    for fd in (3, 4, 5):
        if home.is_symlink():
            home.unlink()
        os.symlink(f"/proc/self/fd/{fd}", home)
        out, code = enter(vs, VSERVER, "x", b"echo at:$(pwd):; ls /proc/self/cwd/ | head -3; exit 7\n")
        assert code == 7, out
        assert "at:/:" in out, out  # not found inside the guest: its root, never the link
        assert "cgroup.procs" not in out and "cgroup.controllers" not in out, out
    vs("stop", "x", "--timeout", "1")


def test_overwriting_the_host_binary_through_enter_is_refused(vs, copy):
    """Item 1 via enter: root's login shell is a link to /proc/self/exe."""
    before = copy.digest()
    copy("build", "x", check=True)
    arm(vs.rootfs("x"))
    passwd = vs.rootfs("x") / "etc/passwd"
    passwd.write_text(passwd.read_text().replace("/root:/bin/sh", "/root:/bin/exe-link"))
    copy("start", "x", check=True)
    out, code = enter(vs, copy.path, "x", b"", secs=3)
    assert code == 0, out
    assert_not_overwritten(vs, copy, before)
