"""What a user namespace adds: guest root is not the host's root, so a host
file it reaches by a mistake (a bind mount of a host directory) stays the host's.
Harmless by construction: the "host" files live under the test's own directory."""
import os


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
