"""A hostile image or client against vserver-runc: its config.json and its root are
the attacker's.  Harmless by construction: a copy of the binary as the overwrite
target, directories of the test's own, marks of our own."""
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import RUNC, sealed_exe
from test_escapes import arm, wait_for


def armed_rootfs(oci):
    r = oci.dir / "armed"
    if not r.exists():
        shutil.copytree(oci.rootfs, r, symlinks=True)
        arm(r)
    return r


def runc_copy(oci):
    """A copy of the binary, named so it runs as vserver-runc: all an overwrite could hit."""
    path = oci.dir / "bin" / "vserver-runc"
    path.parent.mkdir(exist_ok=True)
    shutil.copy2(os.path.realpath(RUNC), path)
    return path


def digest(p: Path):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_exec_of_proc_self_exe_cannot_overwrite_the_runtime(oci):
    """CVE-2019-5736 through exec: the container's `ps` links to /proc/self/exe."""
    root = armed_rootfs(oci)
    runc = runc_copy(oci)
    before = digest(runc)

    def edit(c):
        c["root"]["path"] = str(root)
    b = oci.bundle("ow1", ["sleep", "1000"], edit)
    r, w = os.pipe()
    p = subprocess.run([str(runc), "--root", str(oci.state), "run", "-d", "--bundle", str(b),
                        "ow1"], stdin=subprocess.DEVNULL, stdout=w, stderr=w, timeout=60)
    os.close(w)
    os.close(r)
    assert p.returncode == 0
    subprocess.run([str(runc), "--root", str(oci.state), "exec", "ow1", "ps"],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    seen = wait_for(root / "vs-out/exe-seen")
    assert sealed_exe(seen), seen  # never the file on the host
    result = wait_for(root / "vs-out/overwrite")
    assert result and result.split()[0] in ("REFUSED", "BUSY"), result
    assert digest(runc) == before


def test_init_of_proc_self_exe_cannot_overwrite_the_runtime(oci):
    """The same through create: the container's process is a link to /proc/self/exe."""
    root = armed_rootfs(oci)
    for f in ("exe-seen", "overwrite"):
        (root / "vs-out" / f).unlink(missing_ok=True)
    runc = runc_copy(oci)
    before = digest(runc)

    def edit(c):
        c["root"]["path"] = str(root)
    b = oci.bundle("ow2", ["/bin/exe-link"], edit)
    r, w = os.pipe()
    p = subprocess.run([str(runc), "--root", str(oci.state), "run", "-d", "--bundle", str(b),
                        "ow2"], stdin=subprocess.DEVNULL, stdout=w, stderr=w, timeout=60)
    os.close(w)
    os.close(r)
    assert p.returncode == 0
    seen = wait_for(root / "vs-out/exe-seen")
    assert sealed_exe(seen), seen
    result = wait_for(root / "vs-out/overwrite")
    assert result and result.split()[0] in ("REFUSED", "BUSY"), result
    assert digest(runc) == before


def test_no_host_descriptor_reaches_the_container(oci):
    """Only stdio crosses: not the exec fifo, the state directory, a namespace or a cgroup."""
    assert oci.create("fd1", ["sleep", "1000"]) == 0
    oci("start", "fd1", check=True)
    p = oci("exec", "fd1", "sh", "-c", "ls /proc/1/fd; echo --; ls -l /proc/1/fd /proc/self/fd")
    assert p.returncode == 0, p.stderr
    first = p.stdout.split("--")[0].split()
    assert sorted(first) == ["0", "1", "2"], p.stdout
    assert "exec.fifo" not in p.stdout and str(oci.state) not in p.stdout


def test_cwd_through_a_magic_link_is_refused(oci):
    """CVE-2024-21626: a cwd of /proc/self/fd/N must never lead to a host directory."""
    def edit(c):
        c["process"]["cwd"] = "/proc/self/fd/3"
    p = oci.run("cwd1", ["pwd"], edit)
    assert p.returncode != 0 and "process.cwd" in p.stderr, p.stdout + p.stderr
    assert oci.create("cwd2", ["sleep", "1000"]) == 0
    oci("start", "cwd2", check=True)
    for cwd in ("/proc/self/fd/3", "/proc/1/cwd", "/proc/self/root/.."):
        p = oci("exec", "--cwd", cwd, "cwd2", "pwd")
        assert p.returncode != 0 or p.stdout.strip() == "/", (cwd, p.stdout, p.stderr)


def test_mount_destination_symlinks_resolve_inside_the_root(oci, tmp_path):
    """A destination through the image's absolute symlink lands in the root, not the host."""
    host = tmp_path / "host-target"
    host.mkdir()
    root = oci.dir / "symroot"
    shutil.copytree(oci.rootfs, root, symlinks=True)
    os.symlink(str(host), root / "evil")
    # the same path inside the root: where the symlink leads when resolved in it
    (root / str(host).lstrip("/")).mkdir(parents=True)

    def edit(c):
        c["root"]["path"] = str(root)
        c["mounts"].append({"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs"})
    p = oci.run("sym1", ["sh", "-c", "grep ' /evil/sub \\| " + str(host) +
                         "/sub ' /proc/mounts; echo x > /evil/sub/f && echo wrote"], edit)
    assert p.returncode == 0, p.stderr
    assert "wrote" in p.stdout
    assert not (host / "sub").exists(), "the host's directory was used as the mount point"
    assert (root / str(host).lstrip("/") / "sub").is_dir()


def test_device_cgroup_fails_closed_without_rules(oci):
    """No linux.resources.devices: only the devices it lists and the basic ones, even
    for a container that may mknod."""
    def edit(c):
        c["process"]["capabilities"] = {k: ["CAP_MKNOD", "CAP_DAC_OVERRIDE", "CAP_SYS_RAWIO"]
                                        for k in ("bounding", "effective", "permitted")}
        c["linux"].pop("resources", None)
    p = oci.run("dev1", ["sh", "-c",
                         "mknod /dev/kmsg2 c 1 11 && echo made; "
                         "cat /dev/kmsg2 >/dev/null 2>&1 & sleep 0.3; kill $! 2>/dev/null; "
                         "head -c1 /dev/kmsg2 >/dev/null 2>&1 && echo opened || echo denied; "
                         "echo ok > /dev/null && echo null-ok"], edit)
    assert "denied" in p.stdout and "opened" not in p.stdout, p.stdout + p.stderr
    assert "null-ok" in p.stdout


def test_sysctls_of_the_host_are_refused(oci):
    """net.* with the host's network namespace would change the host's own."""
    before = open("/proc/sys/net/ipv4/ip_default_ttl").read()

    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"]
                                    if n["type"] != "network"]
        c["linux"]["sysctl"] = {"net.ipv4.ip_default_ttl": "17"}
    p = oci.run("sys1", ["true"], edit)
    assert p.returncode != 0 and "would change the host" in p.stderr, p.stderr
    assert open("/proc/sys/net/ipv4/ip_default_ttl").read() == before

    def dots(c):
        c["linux"]["sysctl"] = {"net/../../kernel/panic": "1"}
    p = oci.run("sys2", ["true"], dots)
    assert p.returncode != 0, p.stderr


def test_state_and_ids_cannot_name_paths_outside_the_root(oci):
    for bad in ("../escape", "..", "a/b", ".hidden/../x"):
        p = oci("state", bad)
        assert p.returncode != 0 and "not a container id" in p.stderr, (bad, p.stderr)
    b = oci.bundle("idb", ["true"])
    p = oci("create", "--bundle", str(b), "../../tmp/evil")
    assert p.returncode != 0 and "not a container id" in p.stderr
    assert not Path("/tmp/evil").exists()
    # a state.json pointing at another process is checked against its start time
    assert oci.create("pid1", ["sleep", "1000"]) == 0
    st = oci.state / "pid1" / "state.json"
    j = json.loads(st.read_text())
    j["pid"] = os.getpid()
    st.write_text(json.dumps(j))
    p = oci("kill", "pid1", "KILL")
    assert p.returncode != 0 and "not running" in p.stderr
    time.sleep(0.1)  # and we are still here
