"""A Debian guest built with debootstrap boots systemd to multi-user in its context.

Slow (debootstrap from the mirror): runs when VSERVER_TEST_DEBIAN=1.
"""
import json
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("VSERVER_TEST_DEBIAN") != "1",
                                reason="slow: set VSERVER_TEST_DEBIAN=1")


SANDBOXED = """[Service]
Type=oneshot
PrivateTmp=yes
ProtectSystem=strict
ExecStart=/bin/sh -c 'touch /tmp/private; touch /usr/x || echo usr-read-only; ls /tmp'
"""


@pytest.mark.parametrize("userns", ["--userns", "--no-userns"])
def test_debian_boots_systemd_to_multi_user(vs, userns):
    p = vs("build", "deb1", "--template", "debian", userns, timeout=1200)
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
    assert st["running_userns"] is (userns == "--userns")
    if userns == "--userns":
        # its root may set up namespaces: systemd's sandboxing is applied, not skipped
        (root / "etc/systemd/system/sandboxed.service").write_text(SANDBOXED)
        vs("exec", "deb1", "--", "systemctl", "daemon-reload", check=True)
        vs("exec", "deb1", "--", "systemctl", "start", "sandboxed", check=True)
        log = vs("exec", "deb1", "--", "journalctl", "-b", "--no-pager", check=True).stdout
        assert "prohibited" not in log
        unit = vs("exec", "deb1", "--", "journalctl", "-u", "sandboxed", "--no-pager",
                  check=True).stdout
        assert "usr-read-only" in unit and "private" in unit, unit
        assert not (root / "tmp/private").exists()
        vs.exec_out("deb1", "mount -t tmpfs t /mnt && touch /mnt/only-inside")
        assert not (root / "mnt/only-inside").exists()
        assert not [l for l in open("/proc/self/mountinfo") if str(root) + "/mnt" in l]
    t = time.time()
    p = vs("stop", "deb1", check=True)
    assert "killed every process" not in p.stderr  # SIGRTMIN+3 ended it in time
    assert time.time() - t < 10
    for d in vs.cgroup("deb1"):
        assert not os.path.exists(d)


def test_unified_debian_guest_refuses_package_changes_until_deunify(vs):
    """dpkg in a unified guest stops at once with the fix, and works after deunify."""
    p = vs("build", "d1", "--template", "debian", "--init", "none", "--net", "none",
           timeout=1200)
    assert p.returncode == 0, p.stderr
    vs("build", "d2", "--template", "clone:d1", check=True)
    s = json.loads(vs("unify", "--mode", "link", "d1", "d2", "--json", check=True).stdout)
    assert s["mode"] == "link" and s["shared"] > 1000
    vs("start", "d1", check=True)
    p = vs("exec", "d1", "--", "dpkg", "--configure", "-a")
    assert p.returncode != 0
    assert "unified with other guests and cannot change; on the host, run: " \
           "vserver deunify d1" in p.stderr, p.stderr
    p = vs("exec", "d1", "--", "apt-get", "install", "--reinstall", "-y", "--no-download",
           "base-files")
    assert p.returncode != 0 and "vserver deunify d1" in p.stdout + p.stderr
    vs("deunify", "d1", check=True)
    assert vs("exec", "d1", "--", "dpkg", "--configure", "-a").returncode == 0


def test_overlay_unified_debian_guests_upgrade_as_usual(vs):
    """Unified copy on write, a Debian guest reinstalls, replaces and removes
    shared files with dpkg, apt-get, sed and rm; its twin and the store see nothing.
    Meanwhile the host unifies every guest: the running ones are left alone."""
    p = vs("build", "d1", "--template", "debian", "--init", "none", "--net", "none",
           timeout=1200)
    assert p.returncode == 0, p.stderr
    vs("build", "d2", "--template", "clone:d1", check=True)
    for g in ("d1", "d2"):  # a config-like file, shared on purpose
        with open(vs.conf(g), "a") as f:
            f.write("\n[unify]\nexclude = +/etc/debian_version\n")
    s = json.loads(vs("unify", "d1", "d2", "--json", check=True).stdout)
    assert s["mode"] == "overlay" and s["shared"] > 1000, s
    store = vs.root / "var/lib/vserver/store"
    before_store = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                          for p in store.rglob("*") if p.is_file())
    vs("build", "d3", "--template", "clone:d1", "--init", "none", "--net", "none", check=True)
    vs("deunify", "d3", check=True)  # private files, for the unify below to share again
    vs("start", "d1", check=True)
    vs("start", "d2", check=True)
    unifying = vs.popen("unify", "--all", "--json", stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    verify = "dpkg --verify; sha256sum /usr/bin/which /etc/debian_version /usr/lib/x86_64-linux-gnu/libz.so.1"
    twin = vs.exec_out("d2", verify)
    # a shared package reinstalled from the guest's own cache
    p = vs("exec", "d1", "--", "sh", "-c", "apt-get install --reinstall -y --no-download "
           "base-files 2>&1 || (ls /var/cache/apt/archives; exit 1)")
    assert p.returncode == 0, p.stdout + p.stderr
    # a local .deb that replaces a shared file
    vs.exec_out("d1", """set -e; d=/root/pkg; mkdir -p $d/DEBIAN $d/usr/bin
        printf 'Package: vstest\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n' > $d/DEBIAN/control
        printf '#!/bin/sh\necho replaced\n' > $d/usr/bin/which; chmod 755 $d/usr/bin/which
        dpkg-deb -b $d /root/vstest.deb >/dev/null
        dpkg -i --force-overwrite /root/vstest.deb >/dev/null 2>&1""")
    assert vs.exec_out("d1", "which").strip() == "replaced"
    out, err = unifying.communicate(timeout=600)
    assert unifying.returncode == 0, err
    assert "d1 runs" in err and "d2 runs" in err, err
    assert json.loads(out)["shared"] > 1000, out
    vs.exec_out("d1", "sed -i 's/$/-mine/' /etc/debian_version; "
                "rm /usr/lib/x86_64-linux-gnu/libz.so.1")
    assert vs.exec_out("d1", "cat /etc/debian_version").strip().endswith("-mine")
    assert vs.exec_out("d2", verify) == twin
    # d3 shared into the store (new files may come), nothing that was there changed
    assert set(before_store) <= {(p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                 for p in store.rglob("*") if p.is_file()}
    # dpkg removes the package; the file it replaced is the guest's own copy to restore
    vs.exec_out("d1", "dpkg -r vstest >/dev/null 2>&1; apt-get install --reinstall -y "
                "--no-download debianutils zlib1g >/dev/null 2>&1; "
                "sed -i 's/-mine$//' /etc/debian_version")
    vs("stop", "d1", check=True)
    vs("stop", "d2", check=True)
    # what became the same again is shared again
    s = json.loads(vs("unify", "d1", "d2", "--json", check=True).stdout)
    assert s["shared"] >= 2, s
    assert not (vs.rootfs("d1") / "etc/debian_version").exists()


def test_debian_sees_its_own_machine(vs):
    """procps, coreutils and glibc in a Debian guest read the guest's views."""
    p = vs("build", "deb2", "--template", "debian", "--init", "none", "--memory", "256M",
           "--set", "limits.swap=0", "--cpuset", "0", timeout=1200)
    assert p.returncode == 0, p.stderr
    vs("start", "deb2", check=True)
    free = vs.exec_out("deb2", "free -m").splitlines()
    assert free[1].split()[1] in ("255", "256"), free  # procps: /proc/meminfo
    assert free[2].split()[1] == "0", free
    assert vs.exec_out("deb2", "nproc").strip() == "1"  # coreutils: the affinity
    # glibc: /sys/devices/system/cpu/online (what Python's os.cpu_count() asks too)
    assert vs.exec_out("deb2", "getconf _NPROCESSORS_ONLN").strip() == "1"
    # glibc's physical pages come from sysinfo(2)
    pages = int(vs.exec_out("deb2", "getconf _PHYS_PAGES"))
    assert pages * os.sysconf("SC_PAGE_SIZE") == 256 << 20
    top = vs.exec_out("deb2", "top -bn1 | head -5")
    assert "MiB Mem :    256.0 total" in top, top
    assert "%Cpu" in top
    up = vs.exec_out("deb2", "uptime")
    assert "load average" in up
    assert vs.exec_out("deb2", "grep -c ^processor /proc/cpuinfo").strip() == "1"
    vs("stop", "deb2", check=True)
