"""A Debian guest built with debootstrap boots systemd to multi-user in its context.

Slow (debootstrap from the mirror): runs when VSERVER_TEST_DEBIAN=1.
"""
import json
import os
import time

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("VSERVER_TEST_DEBIAN") != "1",
                                reason="slow: set VSERVER_TEST_DEBIAN=1")


def test_debian_boots_systemd_to_multi_user(vs):
    p = vs("build", "deb1", "--template", "debian", timeout=1200)
    assert p.returncode == 0, p.stderr
    assert "I: Base system installed successfully." in p.stderr  # debootstrap's progress
    root = vs.rootfs("deb1")
    assert os.readlink(root / "etc/systemd/system/console-getty.service") == "/dev/null"
    assert os.readlink(root / "etc/systemd/system/systemd-udevd.service") == "/dev/null"
    assert "No disks" in (root / "etc/fstab").read_text()
    vs("start", "deb1", check=True)
    state = ""
    deadline = time.time() + 120
    while time.time() < deadline:
        state = vs("exec", "deb1", "--", "systemctl", "is-system-running").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.5)
    failed = vs("exec", "deb1", "--", "systemctl", "--failed", "--no-legend", "--plain").stdout
    assert state == "running", failed
    assert failed.strip() == ""
    assert vs("exec", "deb1", "--", "systemctl", "is-active", "multi-user.target").stdout \
        .strip() == "active"
    assert vs.exec_out("deb1", "cat /proc/1/comm").strip() == "systemd"
    assert vs.exec_out("deb1", "hostname").strip() == "deb1"
    # systemd runs its services in cgroups below the guest's own
    assert "system.slice" in os.listdir(vs.cgroup("deb1")[0] + "/guest")
    st = json.loads(vs("status", "deb1", "--json", check=True).stdout)
    assert st["processes"] >= 3
    t = time.time()
    p = vs("stop", "deb1", check=True)
    assert "killed every process" not in p.stderr  # SIGRTMIN+3 ended it in time
    assert time.time() - t < 10
    for d in vs.cgroup("deb1"):
        assert not os.path.exists(d)
