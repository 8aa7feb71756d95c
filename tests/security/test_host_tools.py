"""A hostile guest against the host's own tools and limits (issue 13, items 8-11):
cgroup trees and directory trees nested to crash a recursive walker, a cgroup
made to slip the v1 I/O throttle, a guest that freezes itself under our feet."""
import json
import os
import re
import subprocess
import time

import pytest

from test_escapes import HELPERS, arm


def guest_cgroup_mounts(vs, name):
    """(mount point, fstype, options) of the cgroup mounts a guest sees."""
    out = vs.exec_out(name, "cat /proc/self/mountinfo")
    mounts = []
    for line in out.splitlines():
        left, right = line.split(" - ", 1)
        fstype, _src, opts = right.split()[:3]
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((left.split()[4], fstype, opts))
    return mounts


def v2_root(vs, name):
    """Where the guest sees its cgroup2 root."""
    for mp, fstype, _ in guest_cgroup_mounts(vs, name):
        if fstype == "cgroup2":
            return mp
    return None


def arm_cgnest(root):
    """helpers/cgnest.c in a guest tree: a cgroup mount from a user namespace of its own."""
    (root / "vs-out").mkdir(exist_ok=True)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(root / "bin/vs-cgnest"),
                    str(HELPERS / "cgnest.c")], check=True)


def test_v1_controllers_are_out_of_a_guests_reach(vs):
    """Item 8: a child cgroup in v1 blkio escapes its parent's throttle (v1 throttling is
    not hierarchical); the v1 freezer would let a guest freeze itself. Only the
    name=systemd hierarchy and cgroup2 stay writable (systemd needs them)."""
    vs("build", "x", "--processes", "40", "--set", "security.allow-userns=yes", check=True)
    arm_cgnest(vs.rootfs("x"))
    vs("start", "x", check=True)
    mounts = guest_cgroup_mounts(vs, "x")
    v1 = [(mp, opts) for mp, fstype, opts in mounts if fstype == "cgroup"]
    if not v1:
        pytest.skip("no cgroup v1 hierarchy on this host: cgroup2's io and freezer are "
                    "hierarchical and the guest's root is below its limits")
    for mp, opts in v1:
        p = vs("exec", "x", "--", "mkdir", f"{mp}/escape")
        if "name=systemd" in opts:
            assert p.returncode == 0, p.stderr
            vs.exec_out("x", f"rmdir {mp}/escape")
        else:
            assert p.returncode != 0 and "Read-only file system" in p.stderr, (mp, p.stderr)
    # the io limit is on the guest's own cgroup, above its root, where it cannot write
    # its processes are in PARENT/NAME there: a cgroup namespace of a user namespace of its
    # own making is rooted there, but what it mounts it cannot write either
    out = vs.exec_out("x", "vs-cgnest pids pids.max max; vs-cgnest blkio blkio.weight 500")
    assert "WROTE" not in out and len(out.splitlines()) == 2, out
    for d in vs.cgroup("x"):
        if os.path.exists(d + "/pids.max"):
            assert open(d + "/pids.max").read().strip() == "40"
    vs("stop", "x", "--timeout", "1")


def test_a_guest_not_delegated_reaches_no_cgroup_at_all(vs, userns_mode):
    """delegate = no puts the guest's processes right where its limits are (PARENT/NAME,
    no leaf between): its limits are then the files of its own cgroup namespace root.
    Whatever its root tries (writing them, remounting the tree read-write, a fresh
    cgroup mount of its own, sub-cgroups, moving itself up), the host's limits, its
    cgroups and where its processes are stay as they were. In a user namespace its
    root may remount its own mount namespace's mounts (as in any container runtime):
    the files stay the host root's, whom it does not map, and max.depth is 0."""
    vs("build", "x", "--delegate", "no", "--processes", "40",
       "--set", "security.allow-userns=yes", check=True)
    arm_cgnest(vs.rootfs("x"))
    vs("start", "x", check=True)
    dirs = vs.cgroup("x")
    before = {d: sorted(os.listdir(d)) for d in dirs}
    out = vs.exec_out("x", " ; ".join([
        "for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max "
        "/sys/fs/cgroup/unified/cgroup.max.depth /sys/fs/cgroup/unified/cgroup.subtree_control "
        "/sys/fs/cgroup/memory/memory.limit_in_bytes; do [ -e $f ] && echo 1000 > $f 2>&1 && "
        "echo WROTE $f; done",
        "for d in /sys/fs/cgroup/*; do mount -o remount,rw,bind $d 2>/dev/null "
        "&& echo REMOUNTED $d; mkdir $d/x 2>/dev/null && echo MADE $d; "
        "echo 1000 > $d/pids.max 2>/dev/null && echo WROTE $d; done",
        "mkdir -p /tmp/c2 /tmp/c1",
        "mount -t cgroup2 none /tmp/c2 2>/dev/null && echo MOUNTED2 && "
        "(mkdir /tmp/c2/x 2>/dev/null && echo MADE2; echo 5 > /tmp/c2/cgroup.max.depth "
        "2>/dev/null && echo WROTE2; echo $$ > /tmp/c2/cgroup.procs 2>/dev/null && echo MOVED2)",
        "mount -t cgroup -o pids none /tmp/c1 2>/dev/null && echo MOUNTED1 && "
        "(echo max > /tmp/c1/pids.max 2>/dev/null && echo WROTE1; mkdir /tmp/c1/x 2>/dev/null "
        "&& echo MADE1)",
        "echo $$ > /sys/fs/cgroup/unified/cgroup.procs 2>/dev/null && echo MOVED",
        # a user namespace of its own making, its root mapped to itself (the host's root
        # without one), and a cgroup namespace of that one's, rooted at PARENT/NAME
        "vs-cgnest pids pids.max max", "vs-cgnest cgroup2 cgroup.max.depth 5",
        "vs-cgnest memory memory.limit_in_bytes 1073741824",
        "true"]))
    for bad in ("WROTE", "MADE", "MOVED"):
        assert bad not in out, out
    # each nested attempt ran and said how far it got
    nested = re.findall(r"(?m)^(unshare|mount|write) .*: (.*)$", out)
    assert len(nested) == 3, out
    if userns_mode == "no-userns":  # no mount calls at all
        assert "MOUNTED" not in out, out
    for d in dirs:
        assert sorted(os.listdir(d)) == before[d], d
        if os.path.exists(d + "/pids.max"):
            assert open(d + "/pids.max").read().strip() == "40"
        if os.path.exists(d + "/cgroup.max.depth"):
            assert open(d + "/cgroup.max.depth").read().strip() == "0"
            assert open(d + "/cgroup.subtree_control").read().strip() == ""
    # every process in its pid namespace is still in PARENT/NAME, in every hierarchy
    init = json.loads(vs("status", "x", "--json", check=True).stdout)["init_pid"]
    ns = os.readlink(f"/proc/{init}/ns/pid")
    def guest_pids():
        pids = set()
        for p in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{p}/ns/pid") == ns:
                    pids.add(p)
            except OSError:
                pass
        return pids
    inside = guest_pids()
    assert str(init) in inside
    for d in dirs:
        assert inside <= set(open(d + "/cgroup.procs").read().split()), d
    vs("stop", "x", "--timeout", "1", check=True)


def test_deep_cgroup_trees_do_not_crash_host_tools(vs):
    """Item 9: 2100 nested cgroups made status, list, exec and stop crash (recursion)."""
    vs("build", "x", check=True)
    vs("start", "x", check=True)
    depth = {}
    for mp, fstype, opts in guest_cgroup_mounts(vs, "x"):
        if fstype == "cgroup" and "name=systemd" not in opts:
            continue
        out = vs.exec_out("x", f"cd {mp} && i=0; while [ $i -lt 2100 ] && mkdir d 2>/dev/null "
                               "&& cd d; do i=$((i+1)); done; "
                               "sleep 600 </dev/null >/dev/null 2>&1 & echo $! > cgroup.procs; echo $i")
        depth[fstype] = int(out.split()[-1])
    if "cgroup2" in depth:
        assert depth["cgroup2"] <= 32, depth  # cgroup.max.depth, set above the guest's reach
    assert max(depth.values()) >= 32, depth
    for args in (["status", "x"], ["list"], ["list", "--json"], ["exec", "x", "--", "true"],
                 ["stats", "x"], ["limits", "x"], ["set", "x", "limits.nofile=2048"],
                 ["set", "x", "limits.io.write-bps=unlimited"], ["ps"]):
        p = vs(*args)
        assert p.returncode >= 0 and p.returncode in (0, 3), (args, p.returncode, p.stderr)
    p = vs("stop", "x", "--timeout", "1")
    assert p.returncode == 0, p.stderr
    assert all(not os.path.exists(d) for d in vs.cgroup("x")), "cgroups left"


def test_sibling_cgroups_of_a_guest_are_all_walked(vs):
    """The walk reads a cgroup directory only until its link count's sub-cgroups are found,
    and looks for a lone one by the name of a guest's leaf first: a lone sub-cgroup of
    another name, and siblings the guest makes in its delegated tree, are each counted,
    and each emptied."""
    vs("build", "x", check=True)
    vs("start", "x", check=True)
    v2 = [mp for mp, fstype, _ in guest_cgroup_mounts(vs, "x") if fstype == "cgroup2"]
    assert v2, guest_cgroup_mounts(vs, "x")

    def processes():  # what list (the brief state) and status (the whole one) count
        return [json.loads(vs("list", "--json", check=True).stdout)[0]["processes"],
                json.loads(vs("status", "x", "--json", check=True).stdout)["processes"]]

    def sleeper_in(d):
        vs.exec_out("x", f"cd {v2[0]} && mkdir {d} && "
                         f"(sleep 600 </dev/null >/dev/null 2>&1 & echo $! > {d}/cgroup.procs)")

    before = processes()
    sleeper_in("a")  # the leaf's one sub-cgroup, not called like a leaf
    assert processes() == [n + 1 for n in before], (before, processes())
    for d in ("b", "c"):
        sleeper_in(d)
    assert processes() == [n + 3 for n in before], (before, processes())
    # and a sibling of the leaf the host made, with a process of the guest in it: the
    # guest's own cgroup is then read (list reads it through a copy of its open directory)
    v2_outer = next(d for d in vs.cgroup("x") if os.path.exists(d + "/cgroup.controllers"))
    os.mkdir(v2_outer + "/host-made")
    pid = vs.exec_out("x", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!").split()[-1]
    def guest_pid(host):
        status = open(f"/proc/{host}/status").read()
        return status.split("NSpid:")[1].split("\n")[0].split()[-1]
    host_pid = next(p for p in open(f"{v2_outer}/guest/cgroup.procs").read().split()
                    if guest_pid(p) == pid)
    with open(v2_outer + "/host-made/cgroup.procs", "w") as f:
        f.write(host_pid)
    assert processes() == [n + 4 for n in before], (before, processes())
    p = vs("stop", "x", "--timeout", "1")
    assert p.returncode == 0, p.stderr
    assert all(not os.path.exists(d) for d in vs.cgroup("x")), "cgroups left"


def nest(top, levels):
    """@levels nested directories below @top, made through descriptors (no path limit)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        f = os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(f, b"x" * 100)
        os.close(f)
        nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)


def test_deep_guest_trees_do_not_crash_host_tools(vs):
    """Item 9: a 2000-deep directory in a guest crashed unify, deunify and delete."""
    vs("build", "x", check=True)
    vs("build", "y", check=True)
    (vs.rootfs("x") / "srv").mkdir(exist_ok=True)
    nest(vs.rootfs("x") / "srv", 2000)
    for args in (["unify", "--all", "--dry-run"], ["unify", "--all"], ["deunify", "x"],
                 ["build", "z", "--template", "clone:x"]):
        p = vs(*args)
        assert p.returncode >= 0, (args, p.returncode, p.stderr)
        if args[0] == "build":  # a clone refuses such a tree, in one line
            assert p.returncode == 1 and "nested deeper than" in p.stderr, p.stderr
        else:
            assert p.returncode == 0, (args, p.stderr)
    p = vs("delete", "x")
    assert p.returncode == 0, p.stderr
    assert not vs.rootfs("x").exists()


def test_a_guest_that_freezes_itself_hangs_no_host_tool(vs, userns_mode):
    """Item 10: a guest writing 1 to its own cgroup.freeze made exec hang, and resume
    did nothing."""
    vs("build", "x", check=True)
    vs("start", "x", check=True)
    root = v2_root(vs, "x")
    assert root, "no cgroup2 tree in the guest"
    if userns_mode == "userns":
        # its delegated root holds cgroup.procs, threads and subtree_control, not freeze
        p = vs("exec", "x", "--", "/bin/sh", "-c", f"echo 1 > {root}/cgroup.freeze")
        assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr
        assert vs("exec", "x", "--", "true", timeout=30).returncode == 0
        vs("stop", "x", "--timeout", "1")
        return
    vs.popen("exec", "x", "--", "/bin/sh", "-c", f"echo 1 > {root}/cgroup.freeze",
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    leaf = [d + "/guest" for d in vs.cgroup("x") if os.path.exists(d + "/guest/cgroup.freeze")]
    end = time.time() + 10
    while time.time() < end and "frozen 1" not in open(leaf[0] + "/cgroup.events").read():
        time.sleep(0.1)
    t = time.time()
    p = vs("exec", "x", "--", "true", timeout=60)
    assert p.returncode == 1 and "frozen" in p.stderr, p.stderr
    assert time.time() - t < 40
    p = vs("resume", "x")
    assert p.returncode == 0, p.stderr
    assert vs("exec", "x", "--", "true", timeout=30).returncode == 0
    vs("stop", "x", "--timeout", "1")


def test_delete_never_leaves_a_shared_file_writable_to_a_running_guest(vs):
    """Item 11: delete lifts the immutable flag of a shared inode for a moment, to
    unlink its name; a running guest sharing that inode must not win a writable
    descriptor then (it watches the flag and opens at once)."""
    for name in ("x", "y"):
        vs("build", name, check=True)
        share = vs.rootfs(name) / "srv/share"
        share.mkdir(parents=True)
        for i in range(1500):
            (share / f"f{i}").write_text(f"file {i}, the same bytes in both guests\n" * 40)
            os.utime(share / f"f{i}", (1700000000, 1700000000))
    arm(vs.rootfs("y"))
    vs("unify", "--mode", "link", "--all", check=True)
    assert (vs.rootfs("y") / "srv/share/f0").stat().st_nlink == 2
    vs("start", "y", check=True)
    racer = vs.popen("exec", "y", "--", "/bin/vs-attack", "race-write", "/srv/share", "25", "1500",
                     stdout=subprocess.PIPE, text=True)
    assert racer.stdout.readline().split() == ["WATCHING", "1500"]
    p = vs("delete", "x")
    assert p.returncode == 0, p.stderr
    out = racer.communicate(timeout=60)[0].split()
    assert out[0] == "LOST" and int(out[1]) >= 1500, out  # it saw every flag change (queued while frozen)
    assert (vs.rootfs("y") / "srv/share/f0").read_text().startswith("file 0, the same bytes")
    vs("stop", "y", "--timeout", "1")
