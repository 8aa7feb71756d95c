"""A guest against its disk limit: project id, inheritance, remount, the loop device.

Played with and without a user namespace (conftest parametrizes userns_mode).
Where the guest shares the host's user namespace the kernel lets a file's
owner change its project id and inheritance (which quota it is charged to):
our seccomp filter refuses those calls, with EPERM.  Before that filter the
inheritance change went through and the project id change came back from
the filesystem instead.  In its own user namespace the kernel refuses.  The
project-quota side of it runs in the VM (tools/check-vm.sh).
"""
import shutil
from pathlib import Path

import pytest

from conftest import compile_static

DISK_SRC = Path(__file__).parents[1] / "integration" / "helpers" / "disk.c"


@pytest.fixture(scope="session")
def disk_attacker(workdir):
    out = workdir / "vs-disk-attack"
    return compile_static(DISK_SRC, out)


def guest(vs, helper, name):
    vs("build", name, "--init", "none", "--net", "none", "--disk", "64M", check=True)
    shutil.copy2(helper, vs.rootfs(name) / "bin" / "vs-disk")
    vs("start", name, check=True)


def test_project_id_and_inheritance_stay_out_of_reach(vs, disk_attacker, userns_mode):
    guest(vs, disk_attacker, "pa")
    vs.exec_out("pa", "mkdir -p /d && : > /d/f")
    for cmd in ("projid /d/f 4242", "projid /d 4242", "setattr /d/f 4242"):
        p = vs("exec", "pa", "--", "/bin/sh", "-c", f"/bin/vs-disk {cmd}")
        assert p.returncode == 1, (cmd, p.stdout)
        if userns_mode == "no-userns":
            assert "Operation not permitted" in p.stdout, (cmd, p.stdout)
    p = vs("exec", "pa", "--", "/bin/vs-disk", "noinherit", "/d")
    if userns_mode == "no-userns":
        assert p.returncode == 1 and p.stdout.count("Operation not permitted") == 2, p.stdout


def test_the_guest_cannot_remount_or_reach_its_image(vs, disk_attacker, userns_mode):
    guest(vs, disk_attacker, "pm")
    dev = [l.split()[0] for l in open("/proc/self/mountinfo")
           if str(vs.rootfs("pm")) in l]
    src = [l.split(" - ")[1].split()[1] for l in open("/proc/self/mountinfo")
           if str(vs.rootfs("pm")) in l][0]
    assert dev and src.startswith("/dev/loop")
    for script in ("mount -o remount,rw /", f"mount -t ext4 {src} /mnt",
                   "mount -o remount,size=1G /", f"mknod /root/loop b 7 {src[9:]}",
                   "ls /dev/loop-control"):
        p = vs("exec", "pm", "--", "/bin/sh", "-c", script)
        assert p.returncode != 0, (script, p.stdout, p.stderr)
    # and the limit still holds after all that
    p = vs("exec", "pm", "--", "/bin/vs-disk", "fill", "/big", "100")
    assert p.returncode == 1 and "No space left on device" in p.stdout
