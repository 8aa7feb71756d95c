"""What a user namespace adds: guest root is not the host's root, so a host
file it reaches by a mistake (a bind mount of a host directory) stays the host's.
Harmless by construction: the "host" files live under the test's own directory."""
import json
import os
from pathlib import Path


def test_a_host_directory_bound_in_by_mistake_stays_the_hosts(vs, tmp_path):
    host = tmp_path / "etc-by-mistake"
    host.mkdir(mode=0o755)
    secret = host / "shadow"
    secret.write_text("root:hash\n")
    secret.chmod(0o600)
    (host / "motd").write_text("host\n")
    os.chmod(host / "motd", 0o644)
    for mode in ("--userns", "--no-userns"):
        name = "u" if mode == "--userns" else "p"
        vs("build", name, mode, "--net", "none", "--set", f"mount.bind={host}:/hostetc",
           check=True)
        vs("start", name, check=True)
        p = vs("exec", name, "--", "/bin/sh", "-c",
               "echo owned >> /hostetc/motd; echo rc=$?; cat /hostetc/shadow; echo rc=$?; "
               "touch /hostetc/new; echo rc=$?; chmod 666 /hostetc/motd; echo rc=$?; "
               "stat -c %u /hostetc/motd")
        rcs = [l for l in p.stdout.splitlines() if l.startswith("rc=")]
        if mode == "--userns":
            # root there is nobody here: every write, read and chmod of root's files fails
            assert len(rcs) == 4 and "rc=0" not in rcs, p.stdout + p.stderr
            assert p.stdout.strip().endswith("65534")  # the host's root, unmapped
            assert "hash" not in p.stdout
        else:
            # the same mistake with a privileged guest: the test can fail
            assert rcs == ["rc=0"] * 4, p.stdout + p.stderr
        vs("stop", name, check=True)
    assert (host / "motd").read_text() == "host\nowned\n"  # only the privileged guest wrote
    assert os.stat(host / "new").st_uid == 0  # made by the privileged guest


def test_no_host_mount_hides_under_the_guests_sys(vs):
    """An isolate guest in a user namespace cannot mount sysfs itself (the network
    namespace is the host's): a recursive bind of the host's /sys brought the host's
    cgroup, tracing and bpf mounts along, hidden under its own but in its mount table
    (and a guest root may unmount what hides them)."""
    vs("build", "x", "--init", "none", check=True)
    vs("start", "x", check=True)
    points = [l.split()[4] for l in vs.exec_out("x", "cat /proc/self/mountinfo").splitlines()]
    # (its console: a pty of its own bound over the null device it has without one)
    twice = sorted({p for p in points if points.count(p) > 1} - {"/dev/console"})
    assert twice == [], twice
    for host_only in ("/sys/kernel/tracing", "/sys/fs/bpf", "/sys/kernel/config",
                      "/sys/fs/fuse/connections"):
        assert host_only not in points
    # its /sys is read-only and still names the host's interfaces (the host's stack)
    p = vs("exec", "x", "--", "/bin/sh", "-c", "ls /sys/class/net; touch /sys/x; echo rc=$?")
    assert "lo" in p.stdout.split() and "rc=0" not in p.stdout
    vs("stop", "x", "--timeout", "1")


def test_guests_of_two_installations_never_run_as_the_same_host_ids(vs, tmp_path):
    """Every installation handed out ranges from the same pool on its own record, so the
    first guests of two installations ran as the same host ids: one's root owned what the
    other's root made, here a file in a sticky directory both have bound in.  Now an
    allocation keeps clear of every installation's ranges, and a start refuses ids a
    running guest of any installation holds (a record from before, edited here)."""
    from conftest import Install
    other = Install(tmp_path / "inst-ids")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp: anyone makes files, only their owner removes them
    sleeper = ("--userns", "--init", "/bin/sleep 1000000", "--net", "none",
               "--set", f"mount.bind={shared}:/shared")
    try:
        vs("build", "u1", "--context", "1701", *sleeper, check=True)
        other("build", "u2", "--context", "1702", *sleeper, check=True)
        vs("start", "u1", check=True)
        other("start", "u2", check=True)

        def host_ids(inst, name):
            st = json.loads(inst("status", name, "--json", check=True).stdout)
            return Path(f"/proc/{st['init_pid']}/uid_map").read_text().split()

        ours, theirs = host_ids(vs, "u1"), host_ids(other, "u2")
        assert ours[1] != theirs[1], (ours, theirs)
        p = vs("exec", "u1", "--", "/bin/sh", "-c", "echo mine > /shared/f")
        assert p.returncode == 0, p.stderr
        p = other("exec", "u2", "--", "/bin/sh", "-c",
                  "echo theirs > /shared/f; echo rc=$?; rm -f /shared/f; echo rc=$?")
        assert p.stdout.split() == ["rc=1", "rc=1"], p.stdout + p.stderr
        assert (shared / "f").read_text() == "mine\n"

        # a range from a record of before, shared with a running guest: its start is refused
        other("stop", "u2", "--timeout", "1")
        rec = other.root / "etc/vserver/subid"
        rec.write_text(rec.read_text().replace(f"u2:{theirs[1]}:", f"u2:{ours[1]}:"))
        p = other("start", "u2")
        first, last = int(ours[1]), int(ours[1]) + 65535
        assert p.returncode == 1 and p.stderr.count("\n") == 1 and \
            f"host ids {first}-{last} are in use by the running guest u1 of the installation " \
            f"under {vs.root} (stop one of them, or remove u2's line from {rec}" in p.stderr, \
            p.stderr
        # the remedy it names: a free range at the next start
        rec.write_text("".join(l for l in rec.read_text().splitlines(True)
                               if not l.startswith("u2:")))
        other("start", "u2", check=True)
        assert host_ids(other, "u2")[1] not in (ours[1],), host_ids(other, "u2")
        other("stop", "u2", "--timeout", "1")
        vs("stop", "u1", "--timeout", "1")
        assert not list(Path("/run/vserver-host").glob(f"ids.{ours[1]}"))
    finally:
        for name in other.guests():
            other("delete", "--force", name)
