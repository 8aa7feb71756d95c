"""Unification: vserver unify / deunify with real guests.  Trees are compared
from the host (content, owner, mode, mtime, xattrs) and from inside each
guest (sha256sum and stat), before and after."""
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import cgroup_dirs

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x10
FS_NODUMP_FL = 0x40
MARK = "trusted.vserver.unified"
LIBS = Path("/usr/lib/x86_64-linux-gnu")


def flags(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]
    finally:
        os.close(fd)


def set_flags(path, value):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", value))
    finally:
        os.close(fd)


def populate(root: Path, n_small=300, seed=1, libs=40):
    """/usr/share/corpus: host libraries, small random files, a few
    in-guest duplicates, an empty file, a setuid file; /etc/corpus.conf."""
    c = root / "usr/share/corpus"
    (c / "sub").mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    picked = sorted(p for p in LIBS.glob("lib*.so*") if p.is_file() and not p.is_symlink())
    for p in picked[:libs]:
        shutil.copy2(p, c / p.name)
    for i in range(n_small):
        data = rnd.randbytes(rnd.choice([100, 512, 4096, 5000, 70000]))
        (c / "sub" / f"f{i:05d}").write_bytes(data)
    for i in range(3):  # the same bytes thrice in one guest
        (c / f"dup{i}").write_bytes(b"duplicate\n" * 1000)
    (c / "empty").write_bytes(b"")
    (c / "suid").write_bytes(b"#!/bin/sh\necho suid\n" * 100)
    os.chmod(c / "suid", 0o4755)
    for name in ("own", "mode", "xattr", "flag", "mtime"):
        (c / name).write_bytes(name.encode() * 5000)
    (root / "etc/corpus.conf").write_bytes(b"setting = 1\n" * 100)
    # one timestamp for everything, so a clone or a second populate matches
    for p in list(c.rglob("*")) + [root / "etc/corpus.conf"]:
        if p.is_file():
            os.utime(p, ns=(1700000000 * 10**9, 1700000000 * 10**9))


def make_different(root: Path):
    """Copies that differ from the first guest's in one thing each."""
    c = root / "usr/share/corpus"
    os.chown(c / "own", 1000, 1000)
    os.chmod(c / "mode", 0o600)
    os.setxattr(c / "xattr", "user.note", b"mine")
    set_flags(c / "flag", flags(c / "flag") | FS_NODUMP_FL)
    os.utime(c / "mtime", ns=(1600000000 * 10**9, 1600000000 * 10**9))


def host_manifest(root: Path):
    """Every regular file: content hash, size, mode, owner, mtime, xattrs
    (but our own mark) and flags (but immutable)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            h = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            xa = {k: os.getxattr(p, k, follow_symlinks=False)
                  for k in os.listxattr(p, follow_symlinks=False) if k != MARK}
            out[os.path.relpath(p, root)] = (h, st.st_size, st.st_mode, st.st_uid, st.st_gid,
                                             st.st_mtime_ns, tuple(sorted(xa.items())),
                                             flags(p) & ~FS_IMMUTABLE_FL)
    return out


def guest_manifest(vs, name):
    """What the guest itself sees of its files."""
    return vs.exec_out(name, "find / -xdev -type f | sort | while read -r f; do "
                       "stat -c '%n %s %a %u %g %Y' \"$f\"; sha256sum \"$f\"; done")


def usage(*roots):
    """Blocks of every file under @roots, each inode once (du's rule)."""
    seen, total = set(), 0
    for root in roots:
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def ino(path):
    return os.lstat(path).st_ino


def build_pair(vs, **kw):
    vs("build", "a", "--init", "none", "--net", "none", check=True)
    populate(vs.rootfs("a"), **kw)
    vs("build", "b", "--init", "none", "--net", "none", "--template", "clone:a", check=True)
    # the clone has new hostname files; everything else is as in a
    return vs.rootfs("a"), vs.rootfs("b")


def unify(vs, *args):
    p = vs("unify", "--mode", "link", *args, "--json", check=True)
    return json.loads(p.stdout)


def test_two_running_guests_unify_and_see_no_change(vs):
    ra, rb = build_pair(vs)
    make_different(rb)
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    before_host = {n: host_manifest(vs.rootfs(n)) for n in "ab"}
    before_guest = {n: guest_manifest(vs, n) for n in "ab"}
    used_before = usage(ra, rb)

    s = unify(vs, "a", "b")
    assert s["mode"] == "link" and s["dry_run"] is False
    corpus_a, corpus_b = ra / "usr/share/corpus", rb / "usr/share/corpus"
    # identical files are one inode now, immutable and marked
    for rel in ["sub/f00000", "sub/f00299", "dup0"] + [p.name for p in corpus_a.glob("lib*")]:
        assert ino(corpus_a / rel) == ino(corpus_b / rel), rel
        assert flags(corpus_a / rel) & FS_IMMUTABLE_FL, rel
        assert os.getxattr(corpus_a / rel, MARK) == b"1"
    assert ino(corpus_a / "dup0") == ino(corpus_a / "dup1") == ino(corpus_b / "dup2")
    assert ino(ra / "bin/busybox") == ino(rb / "bin/busybox")
    # not interchangeable: owner, mode, xattr, flags, mtime differ; setuid; empty; /etc
    for rel in ("own", "mode", "xattr", "flag", "mtime", "suid", "empty"):
        assert ino(corpus_a / rel) != ino(corpus_b / rel), rel
        assert not flags(corpus_b / rel) & FS_IMMUTABLE_FL, rel
    assert ino(ra / "etc/corpus.conf") != ino(rb / "etc/corpus.conf")
    assert s["skipped_setuid"] >= 2
    # the space: one corpus is gone
    corpus_bytes = usage(corpus_a)
    saved = used_before - usage(ra, rb)
    assert saved > 0.9 * corpus_bytes, (saved, corpus_bytes)
    assert abs(s["bytes_saved"] - saved) < 0.05 * saved + 65536, (s["bytes_saved"], saved)
    # nothing changed, seen from the host and from inside each guest
    for n in "ab":
        assert host_manifest(vs.rootfs(n)) == before_host[n]
        assert guest_manifest(vs, n) == before_guest[n]
        st = json.loads(vs("stats", n, "--json", check=True).stdout)
        assert st["state"] == "running", st  # thawed after the freeze

    # a rerun finds everything shared already
    s2 = unify(vs, "a", "b")
    assert s2["shared"] == 0 and s2["already_shared"] >= s["shared"]


def test_guest_cannot_write_through_a_shared_file(vs):
    ra, rb = build_pair(vs, n_small=5, libs=3)
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    unify(vs, "a", "b")
    f = "/usr/share/corpus/sub/f00001"
    want = hashlib.sha256((ra / f[1:]).read_bytes()).hexdigest()
    assert ino(ra / f[1:]) == ino(rb / f[1:])
    attempts = {
        "append": f"echo x >> {f}",
        "truncate": f": > {f}",
        "truncate(2)": f"truncate -s 0 {f}",
        "chmod": f"chmod 4777 {f}",
        "chown": f"chown 1234 {f}",
        "touch": f"touch {f}",
        "rm": f"rm -f {f}",
        "mv": f"mv {f} /usr/share/corpus/moved",
        "rename over": f"echo evil > /usr/share/corpus/new && mv -f /usr/share/corpus/new {f}",
        "hard link": f"ln {f} /usr/share/corpus/link",
    }
    for what, script in attempts.items():
        p = vs("exec", "b", "--", "/bin/sh", "-c", script)
        assert p.returncode != 0, f"{what} succeeded in b"
    # the file is whole, for both guests, and still one
    assert hashlib.sha256((ra / f[1:]).read_bytes()).hexdigest() == want
    assert vs.exec_out("a", f"sha256sum {f}").split()[0] == want
    assert vs.exec_out("b", f"sha256sum {f}").split()[0] == want
    assert oct(os.lstat(ra / f[1:]).st_mode & 0o7777) == oct(0o644)
    assert not (rb / "usr/share/corpus/link").exists()


def test_deunify_gives_private_copies_and_lifts_the_dpkg_hook(vs):
    ra, rb = build_pair(vs, n_small=20, libs=5)
    for r in (ra, rb):  # a dpkg guest, as far as the hook is concerned
        (r / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True)
    before = {n: host_manifest(vs.rootfs(n)) for n in "ab"}
    s = unify(vs, "a", "b")
    assert s["shared"] > 20
    for r, n in ((ra, "a"), (rb, "b")):
        hook = (r / "etc/dpkg/dpkg.cfg.d/vserver-unified").read_text()
        assert f"vserver deunify {n}" in hook and "pre-invoke=" in hook and "exit 1" in hook
    shared = [p for p in (rb / "usr/share/corpus").rglob("*")
              if p.is_file() and ino(p) == ino(ra / p.relative_to(rb))]
    assert len(shared) > 20

    p = vs("deunify", "b", "--json", check=True)
    assert json.loads(p.stdout)["deunified"] >= len(shared)
    for q in shared:
        assert ino(q) != ino(ra / q.relative_to(rb)), q
        assert os.lstat(q).st_nlink == 1 and not flags(q) & FS_IMMUTABLE_FL
        assert MARK not in os.listxattr(q)
    assert not (rb / "etc/dpkg/dpkg.cfg.d/vserver-unified").exists()
    assert (ra / "etc/dpkg/dpkg.cfg.d/vserver-unified").exists()
    b_now = host_manifest(rb)
    b_now.pop("etc/dpkg/dpkg.cfg.d/vserver-unified", None)
    assert b_now == before["b"]
    # b writes its own copy; a's stays as it was
    vs("start", "b", check=True)
    vs.exec_out("b", "echo mine >> /usr/share/corpus/sub/f00003")
    assert (rb / "usr/share/corpus/sub/f00003").read_bytes().endswith(b"mine\n")
    assert host_manifest(ra)["usr/share/corpus/sub/f00003"] == \
        before["a"]["usr/share/corpus/sub/f00003"]
    # a still shares nothing with b, and a path-limited deunify works on a
    p = vs("deunify", "a", "/usr/share/corpus/sub", check=True)
    assert not flags(ra / "usr/share/corpus/sub/f00003") & FS_IMMUTABLE_FL
    assert flags(ra / "usr/share/corpus/dup0") & FS_IMMUTABLE_FL  # outside the path


def test_delete_of_a_unified_guest_keeps_the_others_protected(vs):
    ra, rb = build_pair(vs, n_small=10, libs=3)
    vs("build", "c", "--init", "none", "--net", "none", "--template", "clone:a", check=True)
    unify(vs, "--all")
    f = "usr/share/corpus/sub/f00004"
    assert ino(ra / f) == ino(rb / f) == ino(vs.rootfs("c") / f)
    vs("start", "c", check=True)  # frozen with every guest while b's links go, then thawed
    vs("delete", "b", check=True)
    assert not vs.rootfs("b").exists()
    assert os.lstat(ra / f).st_nlink == 2
    assert flags(ra / f) & FS_IMMUTABLE_FL and flags(vs.rootfs("c") / f) & FS_IMMUTABLE_FL
    assert json.loads(vs("stats", "c", "--json", check=True).stdout)["state"] == "running"
    assert not (vs.root / "run/vserver/unify.frozen").exists()
    # a delete killed while every guest is frozen: the next unify thaws them
    parent = next(d for d in cgroup_dirs() if os.path.exists(f"{d}/cgroup.freeze") or
                  os.path.exists(f"{d}/freezer.state"))
    knob = "cgroup.freeze" if os.path.exists(f"{parent}/cgroup.freeze") else "freezer.state"
    Path(parent, knob).write_text("1" if knob == "cgroup.freeze" else "FROZEN")
    (vs.root / "run/vserver/unify.frozen").write_text("*\n")
    (vs.root / "run/vserver/unify.pending").write_text("")
    assert json.loads(vs("stats", "c", "--json", check=True).stdout)["state"] == "suspended"
    r = vs("unify", "--mode", "link", "a", "c", check=True)
    assert "repairing" in r.stderr
    assert json.loads(vs("stats", "c", "--json", check=True).stdout)["state"] == "running"
    assert vs.exec_out("c", "echo thawed").strip() == "thawed"


def test_unify_killed_at_random_points_loses_nothing(vs):
    vs("build", "a", "--init", "none", "--net", "none", check=True)
    populate(vs.rootfs("a"), n_small=3000, libs=60)
    for n in ("b", "c"):
        vs("build", n, "--init", "none", "--net", "none", "--template", "clone:a", check=True)
    vs("start", "c", check=True)  # a running guest: frozen around batches
    names = ("a", "b", "c")
    before = {n: host_manifest(vs.rootfs(n)) for n in names}
    rnd = random.Random(7)
    kills = 0
    for _ in range(8):
        p = vs.popen("unify", "--mode", "link", "--all", "--jobs", "1", stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.01, 0.5))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        # no path lost, whatever the moment
        for n in names:
            now = host_manifest(vs.rootfs(n))
            missing = set(before[n]) - set(now)
            assert not missing, f"{n} lost {sorted(missing)[:5]}"
    assert kills >= 2, "every run ended before it could be killed"
    r = vs("unify", "--mode", "link", "--all", check=True)
    for n in names:
        assert host_manifest(vs.rootfs(n)) == before[n], n
        for dirpath, _, files in os.walk(vs.rootfs(n)):
            assert not [f for f in files if f.startswith(".vserver-unify.")], dirpath
    assert not (vs.root / "run/vserver/unify.pending").exists()
    st = json.loads(vs("stats", "c", "--json", check=True).stdout)
    assert st["state"] == "running"
    # every shared inode is immutable
    f = vs.rootfs("a") / "usr/share/corpus/sub/f02999"
    assert os.lstat(f).st_nlink == 3 and flags(f) & FS_IMMUTABLE_FL
    assert r.returncode == 0


def test_a_killed_unify_is_repaired_before_a_guest_starts(vs):
    ra, rb = build_pair(vs, n_small=10, libs=2)
    # what a SIGKILL between link and protection leaves: a shared, marked inode
    # without its flag, a temporary name, and the pending note
    f = "usr/share/corpus/sub/f00002"
    os.setxattr(ra / f, MARK, b"1")
    os.unlink(rb / f)
    os.link(ra / f, rb / f)
    os.link(ra / f, rb / "usr/share/corpus/sub/.vserver-unify.0123456789abcdef")
    (vs.root / "run/vserver").mkdir(parents=True, exist_ok=True)
    (vs.root / "run/vserver/unify.pending").write_text("")
    p = vs("start", "a")
    assert p.returncode != 0 and "interrupted vserver unify" in p.stderr
    r = vs("unify", "--mode", "link", "a", "b", check=True)
    assert "repairing" in r.stderr
    assert flags(ra / f) & FS_IMMUTABLE_FL
    assert not (rb / "usr/share/corpus/sub/.vserver-unify.0123456789abcdef").exists()
    vs("start", "a", check=True)


def test_excludes_dry_run_and_caps(vs):
    ra, rb = build_pair(vs, n_small=20, libs=2)
    for r in (ra, rb):
        (r / "etc/shared").mkdir()
        (r / "etc/shared/big").write_bytes(b"s" * 100000)
        os.utime(r / "etc/shared/big", ns=(10**18, 10**18))
    with open(vs.conf("a"), "a") as f:
        f.write("\n[unify]\nexclude = +/etc/shared\nexclude = /usr/share/corpus/sub/f0000*\n")
    with open(vs.conf("b"), "a") as f:
        f.write("\n[unify]\nexclude = +/etc/shared\n")
    (vs.root / "etc/vserver/vserver.conf").write_text(
        "[host]\nunify-exclude = /usr/share/corpus/dup*\n")
    d = vs("unify", "--mode", "link", "a", "b", "--dry-run", check=True)
    assert "would share" in d.stdout and "b:/usr/share/corpus/sub/f00010 = a:/" in d.stdout
    assert ino(ra / "usr/share/corpus/sub/f00010") != ino(rb / "usr/share/corpus/sub/f00010")
    j = json.loads(vs("unify", "--mode", "link", "a", "b", "--dry-run", "--json", check=True).stdout)
    assert j["dry_run"] and j["bytes_saved"] > 0 and len(j["links"]) == j["shared"]
    s = unify(vs, "a", "b")
    assert s["shared"] == j["shared"] and s["bytes_saved"] == j["bytes_saved"]
    assert ino(ra / "etc/shared/big") == ino(rb / "etc/shared/big")     # +/etc/shared
    assert ino(ra / "etc/corpus.conf") != ino(rb / "etc/corpus.conf")   # /etc by default
    assert ino(ra / "usr/share/corpus/sub/f00005") != ino(rb / "usr/share/corpus/sub/f00005")
    assert ino(ra / "usr/share/corpus/sub/f00010") == ino(rb / "usr/share/corpus/sub/f00010")
    assert ino(ra / "usr/share/corpus/dup0") != ino(rb / "usr/share/corpus/dup0")  # host's
    # a guest that may set file flags is never linked
    vs("build", "c", "--init", "none", "--net", "none", "--template", "clone:a", check=True)
    with open(vs.conf("c"), "a") as f:
        f.write("\n[security]\ncapabilities.add = LINUX_IMMUTABLE\n")
    p = vs("unify", "--mode", "link", "a", "c", check=True)
    assert "c may change file flags" in p.stderr
    rc = vs.rootfs("c")
    assert ino(rc / "usr/share/corpus/sub/f00010") != ino(ra / "usr/share/corpus/sub/f00010")


@pytest.mark.parametrize("args,msg", [
    ((), "name the guests, or say --all"),
    (("nosuch",), 'no guest "nosuch"'),
    (("a", "--mode", "magic"), '--mode "magic": say auto, overlay, link or reflink'),
    (("a", "--jobs", "0"), '--jobs "0" is not a number of threads'),
    (("a", "a"), "a is named twice"),
    (("a", "--all"), "name the guests, or say --all"),
    (("a", "--bogus"), "unknown option --bogus"),
    (("a", "--gc"), "--gc works on the whole store: name no guest"),
])
def test_unify_bad_input(vs, args, msg):
    vs("build", "a", "--init", "none", "--net", "none", check=True)
    p = vs("unify", *args)
    assert p.returncode != 0 and msg in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_deunify_and_file_bad_input(vs):
    vs("build", "a", "--init", "none", "--net", "none", check=True)
    for args, msg in [((), "name a guest"), (("a", "usr"), '"usr" is not a path in the guest'),
                      (("a", "/nonexistent"), "no /nonexistent in the guest"),
                      (("zz",), 'no guest "zz"')]:
        p = vs("deunify", *args)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
    conf = vs.conf("a").read_text()
    for text, msg in [("[unify]\nexclude = usr\n", '"usr" is not a guest path'),
                      ("[unify]\nexclude = /a/../etc\n", "no .. in a pattern"),
                      ("[unify]\nfoo = 1\n", "unknown key (known: exclude)")]:
        vs.conf("a").write_text(conf + "\n" + text)
        p = vs("unify", "a")
        assert p.returncode != 0 and msg in p.stderr, (text, p.stderr)
    vs.conf("a").write_text(conf)
    (vs.root / "etc/vserver/vserver.conf").write_text("[host]\nunify-exclude = /ok relative\n")
    p = vs("unify", "a")
    assert p.returncode != 0 and '"relative" is not a guest path' in p.stderr, p.stderr


@pytest.fixture
def btrfs(workdir):
    """A btrfs filesystem on a loop device, mounted for the test."""
    if not shutil.which("mkfs.btrfs"):
        pytest.fail("mkfs.btrfs missing (btrfs-progs; tools/deps.sh installs it)")
    img, mnt = workdir / "btrfs.img", workdir / "btrfs"
    with open(img, "wb") as f:
        f.truncate(1 << 30)
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(img)], check=True)
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)
    img.unlink()


def btrfs_exclusive(path):
    out = subprocess.run(["btrfs", "filesystem", "du", "-s", "--raw", str(path)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return int(out[-1].split()[1])


def test_reflink_mode_on_btrfs(btrfs):
    from conftest import Install
    vs = Install(btrfs / "inst")
    vs.root.mkdir()
    try:
        for n, seed in (("a", 1), ("b", 1)):  # written twice, not cloned: no shared extents
            vs("build", n, "--init", "none", "--net", "none", check=True)
            populate(vs.rootfs(n), n_small=50, libs=10, seed=seed)
        make_different(vs.rootfs("b"))
        ca, cb = vs.rootfs("a") / "usr/share/corpus", vs.rootfs("b") / "usr/share/corpus"
        subprocess.run(["btrfs", "filesystem", "sync", str(btrfs)], check=True)
        excl_before = btrfs_exclusive(cb)
        before = {n: host_manifest(vs.rootfs(n)) for n in "ab"}
        s = unify(vs, "--mode", "reflink", "a", "b")
        assert s["mode"] == "reflink" and s["shared"] > 40  # files kept inline cannot share
        subprocess.run(["btrfs", "filesystem", "sync", str(btrfs)], check=True)
        # each guest keeps its own inode, not immutable; extents are shared
        for rel in ("sub/f00001", "own", "mode"):
            assert ino(ca / rel) != ino(cb / rel)
            assert not flags(cb / rel) & FS_IMMUTABLE_FL
        assert btrfs_exclusive(cb) < excl_before * 0.1, (btrfs_exclusive(cb), excl_before)
        for n in "ab":
            assert host_manifest(vs.rootfs(n)) == before[n]
        # copy on write: b's change stays in b
        with open(cb / "sub/f00001", "r+b") as f:
            f.write(b"changed")
        assert hashlib.sha256((ca / "sub/f00001").read_bytes()).hexdigest() == \
            before["a"]["usr/share/corpus/sub/f00001"][0]
        s2 = unify(vs, "--mode", "reflink", "a", "b")
        assert s2["shared"] <= 1 and s2["already_shared"] > 40
    finally:
        for n in vs.guests():
            vs("delete", "--force", n)
