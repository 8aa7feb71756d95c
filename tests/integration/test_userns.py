"""Guests in a user namespace of their own (userns = yes, the default for new guests).

Looked at from both sides: the host sees only the guest's id range, the guest
sees a root that may mount, nest namespaces and bind port 80, and whose
files on disk are unchanged (the tree is idmapped, never chowned).
"""
import json
import os
import subprocess
import time
import urllib.request

import pytest

COUNT = 65536


def id_range(vs, name):
    for line in (vs.root / "etc/vserver/subid").read_text().splitlines():
        if line.startswith(name + ":"):
            _n, start, count = line.split(":")
            return int(start), int(count)
    return None


def host_uids(vs, name):
    """uid and gid (real, effective) of every host process in the guest's cgroup."""
    out = []
    leaf = vs.cgroup(name)[0] + "/guest"
    for dirpath, _dirs, files in os.walk(leaf):
        if "cgroup.procs" in files:
            for pid in open(os.path.join(dirpath, "cgroup.procs")).read().split():
                try:
                    st = open(f"/proc/{pid}/status").read()
                except OSError:
                    continue
                uid = [int(x) for x in st.split("Uid:")[1].split("\n")[0].split()]
                gid = [int(x) for x in st.split("Gid:")[1].split("\n")[0].split()]
                out.append((int(pid), uid, gid))
    return out


def test_guest_root_is_its_range_on_the_host_and_files_stay_unchanged(vs):
    vs("build", "u1", "--net", "none", check=True)
    assert "userns = yes" in vs.conf("u1").read_text()  # the default, written down
    vs("start", "u1", check=True)
    start, count = id_range(vs, "u1")
    assert count == COUNT and start >= COUNT
    # inside: root, mapped to the range
    assert vs.exec_out("u1", "id -u; cat /proc/self/uid_map").split() == \
        ["0", "0", str(start), str(COUNT)]
    # outside: every process of the guest runs as an id of its range, none as root
    procs = host_uids(vs, "u1")
    assert len(procs) >= 2
    for pid, uid, gid in procs:
        assert all(start <= u < start + COUNT for u in uid + gid), (pid, uid, gid)
    # a file guest root creates is owned by 0 on disk: the idmapped mount maps it
    vs.exec_out("u1", "echo hi > /root/made-inside; chown 1000:1000 /root; touch /root/x")
    f = vs.rootfs("u1") / "root/made-inside"
    assert (os.stat(f).st_uid, os.stat(f).st_gid) == (0, 0)
    assert os.stat(vs.rootfs("u1") / "root").st_uid == 1000  # guest uid 1000 is 1000 on disk
    st = json.loads(vs("status", "u1", "--json", check=True).stdout)
    assert st["userns"] is True and st["running_userns"] is True
    assert st["id_range"] == {"start": start, "count": COUNT}
    assert f"its root is host uid {start}" in vs("status", "u1").stdout
    # vserver ps maps the guest's processes to it
    assert "u1" in vs("ps", check=True).stdout
    vs("stop", "u1", check=True)


def test_guest_root_mounts_and_nests_namespaces_inside_only(vs):
    vs("build", "u1", "--net", "none", check=True)
    vs("start", "u1", check=True)
    out = vs.exec_out("u1", "mkdir -p /mnt/t && mount -t tmpfs tmp /mnt/t && echo x > /mnt/t/f"
                            " && grep -c ' /mnt/t ' /proc/self/mountinfo")
    assert out.strip() == "1"
    assert not [l for l in open("/proc/self/mountinfo") if " /mnt/t " in l]
    # the tmpfs is in the guest's mount namespace: not on the host's disk
    assert not (vs.rootfs("u1") / "mnt/t/f").exists()
    # proc, sysfs of its own network namespace, bind mounts, nested user namespaces
    out = vs.exec_out("u1", "mkdir -p /mnt/p /mnt/s /mnt/b && mount -t proc proc /mnt/p && "
                            "mount -t sysfs sys /mnt/s && mount --bind /etc /mnt/b && "
                            "ls /mnt/s/class/net && unshare -U -r -n id -u && "
                            "unshare -m -p -f --mount-proc ps -o pid | tail -n +2")
    assert out.split() == ["lo", "0", "1", "2"] or out.split()[:3] == ["lo", "0", "1"], out
    # caps: full in its namespace, minus what only the host's namespace honours
    caps = int(vs.exec_out("u1", "grep CapEff /proc/self/status").split()[1], 16)
    assert caps & (1 << 21)  # SYS_ADMIN, over its own namespaces
    assert caps & (1 << 12)  # NET_ADMIN, over its own network
    assert not caps & (1 << 25) and not caps & (1 << 16)  # no SYS_TIME, no SYS_MODULE
    # and still nothing over the host: the clock, modules, the host's hostname
    p = vs("exec", "u1", "--", "/bin/sh", "-c", "date -s 2001-01-01")
    assert "can't set date: Operation not permitted" in p.stderr and time.time() > 1.7e9
    vs("stop", "u1", check=True)


def test_ranges_are_distinct_stable_and_freed(vs):
    vs("build", "a", "--net", "none", check=True)
    vs("build", "b", "--net", "none", check=True)
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    ra, rb = id_range(vs, "a"), id_range(vs, "b")
    assert ra[0] + COUNT <= rb[0] or rb[0] + COUNT <= ra[0]
    vs("restart", "a", check=True)
    assert id_range(vs, "a") == ra
    assert vs.exec_out("a", "cat /proc/self/uid_map").split()[1] == str(ra[0])
    vs("delete", "--force", "a", check=True)
    assert id_range(vs, "a") is None
    # a's block is free again: the next guest gets it
    vs("build", "c", "--net", "none", check=True)
    vs("start", "c", check=True)
    assert id_range(vs, "c") == ra
    vs("stop", "b", check=True)
    vs("stop", "c", check=True)


def test_a_range_that_may_own_host_files_is_never_reused(vs, tmp_path):
    shared = tmp_path / "data"
    shared.mkdir()
    shared.chmod(0o777)
    vs("build", "a", "--net", "none", "--set", f"mount.bind={shared}:/data", check=True)
    vs("start", "a", check=True)
    start, _ = id_range(vs, "a")
    vs.exec_out("a", "echo x > /data/made-by-a")
    assert os.stat(shared / "made-by-a").st_uid == start  # not idmapped: the range owns it
    vs("delete", "--force", "a", check=True)
    assert f"a~deleted:{start}:{COUNT}" in (vs.root / "etc/vserver/subid").read_text()
    vs("build", "b", "--net", "none", check=True)
    vs("start", "b", check=True)
    assert id_range(vs, "b")[0] != start
    vs("stop", "b", check=True)


def test_no_free_range_says_so_before_anything_is_made(vs):
    # room for one guest, high in the default pool: other installations' guests (their
    # ranges are kept clear of) take the lowest free blocks
    first = 27466 * COUNT
    vs.host_conf(f"[host]\nuserns-ids = {first}-{first + COUNT - 1}\n")
    full = f"no free range of 65536 ids left in the pool {first}-{first + COUNT - 1} (widen " \
           "the host setting userns-ids, or delete guests)"
    vs("build", "a", "--net", "none", check=True)
    # the range is the build's: taken before a's first start
    assert id_range(vs, "a") == (first, COUNT)
    p = vs("build", "b", "--net", "none")
    assert p.returncode == 1 and full in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not vs.conf("b").exists() and not (vs.root / "var/lib/vserver/guests/b").exists()
    assert id_range(vs, "b") is None
    # a guest turned to userns = yes takes its range at its next start
    vs("build", "b", "--net", "none", "--no-userns", check=True)
    vs("set", "b", "security.userns=yes", "--save", check=True)
    vs("start", "a", check=True)
    p = vs("start", "b")
    assert p.returncode == 1
    assert full in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not any(os.path.exists(d) for d in vs.cgroup("b"))
    vs("stop", "a", check=True)
    vs.host_conf("[host]\nuserns-ids = 5-10\n")
    p = vs("list")
    assert p.returncode != 0 and "userns-ids" in p.stderr and "FIRST-LAST" in p.stderr


def test_converting_a_guest_is_one_command_each_way(vs):
    vs("build", "c", "--net", "none", "--no-userns", check=True)
    vs("start", "c", check=True)
    assert vs.exec_out("c", "cat /proc/self/uid_map").split() == ["0", "0", "4294967295"]
    vs.exec_out("c", "echo before > /root/f")
    vs("stop", "c", check=True)
    vs("set", "c", "security.userns=yes", "--save", check=True)
    vs("start", "c", check=True)
    start, _ = id_range(vs, "c")
    assert vs.exec_out("c", "cat /root/f; stat -c %u /root/f; cat /proc/self/uid_map").split() \
        == ["before", "0", "0", str(start), str(COUNT)]
    # the mode a guest runs in is the mode it was started in: exec says so
    vs("set", "c", "security.userns=no", "--save", check=True)
    p = vs("exec", "c", "--", "true")
    assert p.returncode == 1 and "runs in a user namespace of its own, but its file now says " \
        "userns = no (say vserver restart c)" in p.stderr, p.stderr
    vs("restart", "c", check=True)
    assert vs.exec_out("c", "cat /proc/self/uid_map").split() == ["0", "0", "4294967295"]
    vs("stop", "c", check=True)


def test_a_filesystem_without_idmapped_mounts_is_named(vs, tmp_path):
    vs("build", "r", "--net", "none", check=True)
    root = vs.rootfs("r")
    subprocess.run(["mount", "-t", "ramfs", "-o", "mode=755", "ramfs", str(root)], check=True)
    try:
        p = vs("start", "r")
        assert p.returncode == 1
        assert f"the guest's tree {root} is on ramfs, which has no idmapped mounts " \
               "(put it on ext4, xfs, btrfs or tmpfs, or set userns = no)" in p.stderr, p.stderr
        assert not any(os.path.exists(d) for d in vs.cgroup("r"))
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_host_wide_capabilities_are_refused_with_userns(vs):
    p = vs("build", "h", "--set", "security.capabilities.host-wide=SYS_TIME")
    assert p.returncode == 2
    assert "capabilities.host-wide = SYS_TIME: a guest with userns = yes holds no capability " \
           "over the host (say userns = no if it must)" in p.stderr, p.stderr


def test_isolate_userns_guest_serves_port_80_on_its_address(vs):
    addr = "198.18.14.80"
    vs("build", "web", "--address", f"{addr}/32", check=True)
    vs("start", "web", check=True)
    vs.exec_out("web", "mkdir -p /www && echo served-from-userns > /www/index.html && "
                       "httpd -p 0.0.0.0:80 -h /www")
    body = ""
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://{addr}/", timeout=2).read().decode()
            break
        except OSError:
            time.sleep(0.1)
    assert body == "served-from-userns\n"
    # port 80 on an address that is not its own stays refused
    p = vs("exec", "web", "--", "/bin/sh", "-c", "nc -l -s 127.0.0.53 -p 81 -w 1; echo rc=$?")
    assert "rc=0" not in p.stdout
    # its root holds no capability over the host's network: it cannot add an address
    p = vs("exec", "web", "--", "/bin/sh", "-c", "ip addr add 198.18.14.81/32 dev lo")
    assert p.returncode != 0
    vs("stop", "web", check=True)


def test_unified_files_are_each_guests_own_roots(vs):
    vs("build", "s1", "--net", "none", check=True)
    vs("build", "s2", "--template", "clone:s1", "--net", "none", check=True)
    out = json.loads(vs("unify", "--mode", "link", "s1", "s2", "--json", check=True).stdout)
    assert out["shared"] > 0
    a, b = vs.rootfs("s1") / "bin/busybox", vs.rootfs("s2") / "bin/busybox"
    assert os.stat(a).st_ino == os.stat(b).st_ino
    vs("start", "s1", check=True)
    vs("start", "s2", check=True)
    r1, r2 = id_range(vs, "s1")[0], id_range(vs, "s2")[0]
    assert r1 != r2
    for g in ("s1", "s2"):
        assert vs.exec_out(g, "stat -c '%u %g %U' /bin/busybox").split() == ["0", "0", "root"]
    # the one file serves both guests' processes, each as its own range
    assert {u[0] for _p, u, _g in host_uids(vs, "s1")} == {r1}
    assert {u[0] for _p, u, _g in host_uids(vs, "s2")} == {r2}
    vs("stop", "s1", check=True)
    vs("stop", "s2", check=True)


def test_run_takes_a_free_range_and_gives_it_back(vs, rootfs):
    p = vs("run", "--userns", "--rootfs", str(rootfs), "--", "/bin/sh", "-c",
           "cat /proc/self/uid_map; mount -t tmpfs t /mnt && echo mounted", check=True)
    _zero, start, count, mounted = p.stdout.split()
    assert int(start) >= COUNT and int(count) == COUNT and mounted == "mounted"
    assert "@run-" not in (vs.root / "etc/vserver/subid").read_text()
    p = vs("run", "--userns=1879048192", "--rootfs", str(rootfs), "--", "cat",
           "/proc/self/uid_map", check=True)
    assert p.stdout.split() == ["0", "1879048192", str(COUNT)]
    p = vs("run", "--userns=12", "--rootfs", str(rootfs), "--", "true")
    assert p.returncode == 2 and "--userns=12: say the first host id" in p.stderr


def test_run_named_like_a_guest_takes_a_range_of_its_own(vs, rootfs):
    """run --userns recorded its range under its --name: named like a guest, it took that
    guest's range, and gave the guest's line back at its exit, so the next build was handed
    the ids of a guest still running."""
    vs("build", "g1", "--userns", "--init", "/bin/sleep 1000000", "--net", "none", check=True)
    mine = id_range(vs, "g1")
    vs("start", "g1", check=True)
    p = vs("run", "--name", "g1", "--userns", "--rootfs", str(rootfs), "--", "true")
    assert p.returncode == 1 and "already exists" in p.stderr, p.stderr  # its cgroup is g1's
    assert id_range(vs, "g1") == mine
    vs("stop", "g1", "--timeout", "1")
    p = vs("run", "--name", "g1", "--userns", "--rootfs", str(rootfs), "--", "cat",
           "/proc/self/uid_map", check=True)
    assert int(p.stdout.split()[1]) != mine[0], p.stdout
    assert id_range(vs, "g1") == mine
    vs("build", "g2", "--userns", "--init", "none", "--net", "none", check=True)
    assert id_range(vs, "g2")[0] != mine[0]

