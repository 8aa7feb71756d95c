"""Copy-on-write unification (vserver unify --mode overlay, the default where the
kernel has data-only overlay layers): shared files are stubs in each guest's
base layer over one read-only store copy; a guest writes, truncates, chmods,
renames and removes them as its own, and the others never see it."""
import errno
import hashlib
import json
import os
import random
import signal
import stat
import subprocess
import time
from pathlib import Path

from conftest import VSERVER, pty_session
from test_unify import (FS_IMMUTABLE_FL, MARK, flags, guest_manifest, host_manifest,
                        make_different, populate)

CORPUS = "usr/share/corpus"


def unify(vs, *args):
    return json.loads(vs("unify", *args, "--json", check=True).stdout)


def store(vs):
    return vs.root / "var/lib/vserver/store"


def store_sums(vs):
    """Every store file and its sha256."""
    out = {}
    for p in store(vs).rglob("*"):
        if p.is_file():
            out[p.relative_to(store(vs)).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def base(vs, name):
    return vs.root / f"var/lib/vserver/guests/{name}/base"


def no_data(path):
    """A file without a byte on disk (all hole; its xattrs may take a block)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 0, os.SEEK_DATA)
        return False
    except OSError as e:
        return e.errno == errno.ENXIO
    finally:
        os.close(fd)


def build_pair(vs):
    vs("build", "a", "--net", "none", check=True)
    populate(vs.rootfs("a"), n_small=60, libs=10)
    vs("build", "b", "--net", "none", "--template", "clone:a", check=True)
    for g in "ab":  # /etc is left out by default: this config-like file is shared on purpose
        with open(vs.conf(g), "a") as f:
            f.write("\n[unify]\nexclude = +/etc/corpus.conf\n")


def test_guests_write_their_own_copies_and_the_store_stays(vs):
    build_pair(vs)
    s = unify(vs, "a", "b")
    assert s["mode"] == "overlay" and s["shared"] > 100, s
    # each shared path left the guest's rootfs for a stub in its base; one store copy each
    for g in "ab":
        assert not (vs.rootfs(g) / CORPUS / "sub/f00001").exists()
        stub = base(vs, g) / CORPUS / "sub/f00001"
        assert os.getxattr(stub, "trusted.overlay.redirect").startswith(b"/")
        assert no_data(stub) and stub.stat().st_size == 100
    # copies that look the same in both guests share one stub inode (two links)
    stubs = [base(vs, g) / CORPUS / "sub/f00001" for g in "ab"]
    assert os.lstat(stubs[0]).st_ino == os.lstat(stubs[1]).st_ino
    sums = store_sums(vs)
    assert len(sums) >= 60
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    before = {g: guest_manifest(vs, g) for g in "ab"}
    assert "corpus/sub/f00001" in before["a"]
    # inside a: sed -i, append, truncate, chmod, chown, rename, rm of shared files
    vs.exec_out("a", f"""set -e
        sed -i s/setting/changed/ /etc/corpus.conf
        echo more >> /{CORPUS}/sub/f00002
        : > /{CORPUS}/sub/f00003
        chmod 600 /{CORPUS}/sub/f00004
        chown 1000:1000 /{CORPUS}/sub/f00005
        mv /{CORPUS}/sub/f00006 /{CORPUS}/sub/renamed
        rm /{CORPUS}/sub/f00007
        """)
    assert vs.exec_out("a", "head -c 13 /etc/corpus.conf") == "changed = 1\nc"
    assert vs.exec_out("a", f"stat -c '%a %u' /{CORPUS}/sub/f00004 /{CORPUS}/sub/f00005") \
        .split() == ["600", "0", "644", "1000"]
    assert "No such file or directory" in vs.exec_out("a", f"ls /{CORPUS}/sub/f00007 2>&1 || true")
    # b and the store saw nothing
    assert guest_manifest(vs, "b") == before["b"]
    assert store_sums(vs) == sums
    # the chmodded file still reads its bytes (a metadata-only copy-up)
    h = vs.exec_out("b", f"sha256sum /{CORPUS}/sub/f00004").split()[0]
    assert vs.exec_out("a", f"sha256sum /{CORPUS}/sub/f00004").split()[0] == h
    # what becomes the same again is shared again, by the next unify of the stopped guests
    vs.exec_out("a", "sed -i s/changed/setting/ /etc/corpus.conf")
    vs("stop", "a", check=True)
    vs("stop", "b", check=True)
    assert (vs.rootfs("a") / "etc/corpus.conf").exists()
    s = unify(vs, "a", "b")
    assert s["shared"] >= 1 and not (vs.rootfs("a") / "etc/corpus.conf").exists()
    # a's metadata-only copy-up was left alone, not shared as the zeros it holds on disk
    assert (vs.rootfs("a") / CORPUS / "sub/f00004").exists()
    vs("start", "a", check=True)
    assert vs.exec_out("a", f"sha256sum /{CORPUS}/sub/f00004").split()[0] == h
    assert vs.exec_out("a", "head -c 13 /etc/corpus.conf") == "setting = 1\ns"
    vs("stop", "a", check=True)


def test_deunify_gives_private_files_and_gc_empties_the_store(vs):
    build_pair(vs)
    unify(vs, "a", "b")
    vs("start", "a", check=True)
    vs.exec_out("a", f"chmod 700 /{CORPUS}/sub/f00001 && mv /{CORPUS}/sub/f00002 /{CORPUS}/moved")
    corpus = (f"cd /{CORPUS} && find . -type f | sort | while read -r f; do "
              "stat -c '%n %s %a %u %g %Y' \"$f\"; sha256sum \"$f\"; done")
    seen = vs.exec_out("a", corpus)
    assert "./moved" in seen and "./sub/f00001 70000 700" in seen or "./sub/f00001" in seen
    p = vs("deunify", "a")
    assert p.returncode == 1 and "a runs: stop it first" in p.stderr
    vs("stop", "a", check=True)
    d = json.loads(vs("deunify", "a", "/" + CORPUS + "/sub", "--json", check=True).stdout)
    assert d["deunified"] > 50
    assert base(vs, "a").exists()  # the rest stays shared
    vs("deunify", "a", check=True)
    assert not base(vs, "a").exists()
    assert not list(vs.rootfs("a").rglob("*")) or all(
        not (p.is_char_device() and os.lstat(p).st_rdev == 0) for p in vs.rootfs("a").rglob("*"))
    vs("start", "a", check=True)
    assert vs.exec_out("a", corpus) == seen
    vs("stop", "a", check=True)
    # b alone names the store now; once b is gone, --gc empties it
    assert unify(vs, "--gc")["removed"] == 0
    vs("delete", "--force", "b", check=True)
    g = unify(vs, "--gc")
    assert g["removed"] >= 60 and g["bytes_freed"] > 0
    assert store_sums(vs) == {}


def test_a_clone_of_a_unified_guest_shares_the_store_at_once(vs):
    build_pair(vs)
    unify(vs, "a", "b")
    vs("build", "c", "--net", "none", "--template", "clone:a", check=True)
    stub = base(vs, "c") / CORPUS / "sub/f00001"
    assert no_data(stub) and os.getxattr(stub, "trusted.overlay.metacopy") == b""
    vs("start", "a", check=True)
    vs("start", "c", check=True)
    sums = f"cd /{CORPUS} && find . -type f | sort | xargs sha256sum"
    assert vs.exec_out("c", sums) == vs.exec_out("a", sums)
    vs("stop", "a", check=True)
    vs("stop", "c", check=True)


def busybox_pss(init):
    """Rss and Pss (KiB) of busybox's mappings in all processes of @init's pid namespace."""
    ns = os.readlink(f"/proc/{init}/ns/pid")
    rss = pss = 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.readlink(f"/proc/{pid}/ns/pid") == ns:
                r, p = mapping_pss(pid)
                rss, pss = max(rss, r), pss + p
        except OSError:
            pass
    return rss, pss


def mapping_pss(pid):
    rss = pss = 0
    cur = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        f = line.split()
        if f and "-" in f[0] and len(f) >= 5:
            cur = f[-1] if len(f) >= 6 else ""
        elif cur and cur.endswith("busybox") and f[0] in ("Rss:", "Pss:"):
            if f[0] == "Rss:":
                rss += int(f[1])
            else:
                pss += int(f[1])
    return rss, pss


def test_five_guests_share_one_copy_in_the_page_cache(vs):
    names = [f"p{i}" for i in range(5)]
    vs("build", names[0], "--net", "none", check=True)
    for n in names[1:]:
        vs("build", n, "--net", "none", "--template", "clone:" + names[0], check=True)
    # the last one rewrites its busybox before unify: it keeps its own
    unify(vs, *names)
    vs("start", names[4], check=True)
    vs.exec_out(names[4], "cp /bin/busybox /tmp/bb && cat /tmp/bb > /bin/busybox.new && "
                "chmod 755 /bin/busybox.new && mv /bin/busybox.new /bin/busybox")
    vs("stop", names[4], check=True)
    for n in names:
        vs("start", n, check=True)
    pids = [json.loads(vs("status", n, "--json", check=True).stdout)["init_pid"] for n in names]
    use = [busybox_pss(p) for p in pids]  # (largest Rss of a process, Pss of all)
    assert all(rss > 0 for rss, _ in use), use
    shared_rss = max(rss for rss, _ in use[:4])
    # four guests: their busybox pages are about one copy between them all
    assert sum(pss for _, pss in use[:4]) < shared_rss * 1.6, use
    # the fifth, which wrote its own: its pages are its own (at least one process's worth)
    assert use[4][1] > use[4][0] * 0.9, use
    for n in names:
        vs("stop", n, check=True)


def test_enter_reads_the_login_shell_from_a_shared_passwd(vs):
    """A shared /etc/passwd is a stub in the base, not in the rootfs: enter
    must read it as the guest sees it (through its init's root)."""
    vs("build", "a", check=True)
    root = vs.rootfs("a")
    passwd = (root / "etc/passwd").read_text()
    (root / "etc/passwd").write_text(passwd.replace(":/root:/bin/sh", ":/root:/bin/ash", 1))
    if not (root / "bin/ash").exists():
        (root / "bin/ash").symlink_to("busybox")
    vs("build", "b", "--template", "clone:a", check=True)
    for g in "ab":
        with open(vs.conf(g), "a") as f:
            f.write("\n[unify]\nexclude = +/etc/passwd\n")
    unify(vs, "a", "b")
    assert not (vs.rootfs("a") / "etc/passwd").exists()
    vs("start", "a", check=True)
    text, code = pty_session([VSERVER, "enter", "a"], vs.env, b"echo A$0; exit 3\n")
    assert code == 3 and "A-ash" in text, text
    vs("stop", "a", check=True)


def view(vs, name):
    """A stopped guest's files as it will see them, in test_unify's host_manifest
    terms: its rootfs over the stubs of its base, each read from the store."""
    out = {}
    layers = (base(vs, name), vs.rootfs(name))  # lower first: the rootfs wins
    for layer in layers:
        for dirpath, _, files in os.walk(layer):
            for f in files:
                p = os.path.join(dirpath, f)
                st = os.lstat(p)
                if not stat.S_ISREG(st.st_mode):
                    continue
                names = os.listxattr(p, follow_symlinks=False)
                if layer == vs.rootfs(name) and "trusted.overlay.metacopy" in names:
                    continue  # a guest's metadata-only copy-up: none here
                if layer == base(vs, name):
                    if f.startswith(".vserver-unify."):
                        continue
                    data = (store(vs) / os.getxattr(p, "trusted.overlay.redirect")
                            .decode()[1:]).read_bytes()
                else:
                    data = Path(p).read_bytes()
                xa = {k: os.getxattr(p, k, follow_symlinks=False) for k in names
                      if not k.startswith("trusted.overlay.") and k != MARK}
                out[os.path.relpath(p, layer)] = (
                    hashlib.sha256(data).hexdigest(), st.st_size, st.st_mode, st.st_uid,
                    st.st_gid, st.st_mtime_ns, tuple(sorted(xa.items())),
                    flags(p) & ~FS_IMMUTABLE_FL)
    return out


def test_unify_killed_at_random_points_loses_nothing(vs):
    vs("build", "a", "--init", "none", "--net", "none", check=True)
    populate(vs.rootfs("a"), n_small=3000, libs=60)
    for n in ("b", "c"):
        vs("build", n, "--init", "none", "--net", "none", "--template", "clone:a", check=True)
    make_different(vs.rootfs("b"))
    names = ("a", "b", "c")
    before = {n: host_manifest(vs.rootfs(n)) for n in names}
    rnd = random.Random(11)
    kills = 0
    for _ in range(8):
        p = vs.popen("unify", "--mode", "overlay", "--all", "--jobs", "1",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.01, 0.4))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        for n in names:  # no path lost or changed, whatever the moment
            assert view(vs, n) == before[n], n
    assert kills >= 2, "every run ended before it could be killed"
    vs("unify", "--mode", "overlay", "--all", check=True)
    for n in names:
        assert view(vs, n) == before[n], n
        assert not (vs.rootfs(n) / CORPUS / "sub/f02999").exists()
        for dirpath, _, files in os.walk(base(vs, n)):
            assert not [f for f in files if f.startswith(".vserver-unify.")], dirpath
    # the store holds exactly what some stub names: what killed runs copied is gone
    assert set(store_sums(vs)) == named_by_stubs(vs, names)


def test_link_unified_guests_convert_with_one_command(vs):
    """Guests unified with immutable hard links (the old way) become copy-on-write
    with one unify --mode overlay: same files, writable, and dpkg's hook gone."""
    vs("build", "a", "--net", "none", check=True)
    populate(vs.rootfs("a"), n_small=40, libs=5)
    (vs.rootfs("a") / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True)
    vs("build", "b", "--net", "none", "--template", "clone:a", check=True)
    s = unify(vs, "--mode", "link", "a", "b")
    assert s["mode"] == "link" and s["shared"] > 40
    f = vs.rootfs("a") / CORPUS / "sub/f00001"
    assert flags(f) & FS_IMMUTABLE_FL and os.lstat(f).st_nlink == 2
    assert (vs.rootfs("a") / "etc/dpkg/dpkg.cfg.d/vserver-unified").exists()
    before = {n: host_manifest(vs.rootfs(n)) for n in "ab"}
    s = unify(vs, "--mode", "overlay", "a", "b")
    assert s["mode"] == "overlay" and s["shared"] > 80, s
    for n in "ab":
        now = view(vs, n)
        want = {k: v for k, v in before[n].items() if "vserver-unified" not in k}
        assert now == want, n
        assert not (vs.rootfs(n) / "etc/dpkg/dpkg.cfg.d/vserver-unified").exists()
        assert not (vs.rootfs(n) / CORPUS / "sub/f00001").exists()
    vs("start", "a", check=True)
    vs.exec_out("a", f"echo mine >> /{CORPUS}/sub/f00001")
    vs("stop", "a", check=True)
    assert view(vs, "b")[f"{CORPUS}/sub/f00001"] == before["b"][f"{CORPUS}/sub/f00001"]


def test_a_store_file_a_killed_unify_left_linked_to_a_guest_is_repaired(vs):
    """unify links a keeper's inode into the store (no bytes copied) and makes
    it the store's alone once its guest paths are stubs.  Killed in between,
    a guest and the store share an inode: no guest may start until the next
    unify gives the store a copy of its own."""
    build_pair(vs)
    unify(vs, "a", "b")
    # the moment between the link and the stub, made by hand: a store file
    # that stubs name, still a path of guest a
    kept = next(p for p in store(vs).rglob("*") if p.is_file())
    f = vs.rootfs("a") / "srv-linked"
    os.link(kept, f)
    (vs.root / "run/vserver").mkdir(parents=True, exist_ok=True)
    (vs.root / "run/vserver/unify.pending").write_text("")
    p = vs("start", "a")
    assert p.returncode != 0 and "interrupted vserver unify" in p.stderr, p.stderr
    r = vs("unify", "--gc", check=True)
    assert "repairing" in r.stderr
    assert os.lstat(kept).st_ino != os.lstat(f).st_ino
    assert kept.read_bytes() == f.read_bytes()
    assert os.lstat(f).st_nlink == 1 and os.lstat(kept).st_nlink == 1
    # and what unify links in itself ends up the store's: root's, 0444, one link
    for p in store(vs).rglob("*"):
        if p.is_file():
            st = os.lstat(p)
            assert (st.st_nlink, st.st_uid, st.st_mode & 0o7777) == (1, 0, 0o444), p
    vs("start", "a", check=True)
    vs("stop", "a", check=True)


def test_more_than_64_identical_files_share_one_store_copy(vs):
    """Files are proved side by side 64 at a time; a larger group must still end
    as one store file, not one per slice."""
    vs("build", "a", "--net", "none", check=True)
    d = vs.rootfs("a") / "srv/many"
    d.mkdir(parents=True)
    data = os.urandom(3000)
    for i in range(150):
        (d / f"f{i:03d}").write_bytes(data)
    vs("build", "b", "--net", "none", "--template", "clone:a", check=True)
    s = unify(vs, "a", "b")
    assert s["shared"] >= 300, s
    names = {os.getxattr(base(vs, g) / f"srv/many/f{i:03d}", "trusted.overlay.redirect")
             for g in "ab" for i in range(150)}
    assert len(names) == 1, len(names)


def kill_at_random(vs, args, runs, seed, most=0.4):
    """`vserver ARGS` SIGKILLed at a random moment, RUNS times; yields after each
    run; returns how many were killed before they ended."""
    rnd = random.Random(seed)
    kills = 0
    for _ in range(runs):
        p = vs.popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.01, most))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        yield kills


def named_by_stubs(vs, names):
    named = set()
    for n in names:
        for dirpath, _, files in os.walk(base(vs, n)):
            for f in files:
                named.add(os.getxattr(os.path.join(dirpath, f), "trusted.overlay.redirect")
                          .decode()[1:])
    return named


def test_conversion_killed_at_random_points_loses_nothing(vs):
    """Link-mode guests converted to copy-on-write, the run SIGKILLed at random
    moments: every guest's files stay whole and the same, and the next run
    finishes the conversion (no immutable inode, no dpkg hook left)."""
    vs("build", "a", "--init", "none", "--net", "none", check=True)
    populate(vs.rootfs("a"), n_small=2000, libs=40)
    (vs.rootfs("a") / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True)
    for n in ("b", "c"):
        vs("build", n, "--init", "none", "--net", "none", "--template", "clone:a", check=True)
    make_different(vs.rootfs("b"))
    names = ("a", "b", "c")
    unify(vs, "--mode", "link", "--all")
    hook = "etc/dpkg/dpkg.cfg.d/vserver-unified"
    assert (vs.rootfs("a") / hook).exists()
    before = {n: {k: v for k, v in host_manifest(vs.rootfs(n)).items() if k != hook}
              for n in names}
    kills = 0
    for kills in kill_at_random(vs, ("unify", "--mode", "overlay", "--all", "--jobs", "1"),
                                8, seed=12):
        for n in names:
            now = {k: v for k, v in view(vs, n).items() if k != hook}
            assert now == before[n], n
    assert kills >= 2, "every run ended before it could be killed"
    vs("unify", "--mode", "overlay", "--all", check=True)
    for n in names:
        assert view(vs, n) == before[n], n
        assert not (vs.rootfs(n) / hook).exists()
        for dirpath, _, files in os.walk(vs.rootfs(n)):
            for f in files:
                p = os.path.join(dirpath, f)
                if not os.path.islink(p):
                    assert not flags(p) & FS_IMMUTABLE_FL, p
    assert set(store_sums(vs)) == named_by_stubs(vs, names)


def test_gc_killed_at_random_points_keeps_every_named_store_file(vs):
    """unify --gc SIGKILLed while it removes the store files of deleted guests:
    no file a stub still names goes, and the next --gc finishes."""
    vs("build", "a", "--init", "none", "--net", "none", check=True)
    populate(vs.rootfs("a"), n_small=1500, libs=20)
    vs("build", "b", "--init", "none", "--net", "none", "--template", "clone:a", check=True)
    make_different(vs.rootfs("b"))
    # c's files are its own: once c is deleted, only gc frees their store copies
    vs("build", "c", "--init", "none", "--net", "none", check=True)
    populate(vs.rootfs("c"), n_small=1500, libs=0, seed=3)
    vs("build", "d", "--init", "none", "--net", "none", "--template", "clone:c", check=True)
    unify(vs, "--mode", "overlay", "--all")
    before = {n: view(vs, n) for n in "ab"}
    for n in "cd":
        vs("delete", "--force", n, check=True)
    unnamed = set(store_sums(vs)) - named_by_stubs(vs, "ab")
    assert len(unnamed) > 1000, len(unnamed)
    kills, left = 0, []
    for kills in kill_at_random(vs, ("unify", "--gc"), 8, seed=13, most=0.15):
        for n in "ab":
            assert view(vs, n) == before[n], n
        assert named_by_stubs(vs, "ab") <= set(store_sums(vs))
        left.append(len(set(store_sums(vs)) - named_by_stubs(vs, "ab")))
    print(f"unnamed store files after each run: {len(unnamed)} -> {left}")
    assert kills >= 2, "every run ended before it could be killed"
    vs("unify", "--gc", check=True)
    assert set(store_sums(vs)) == named_by_stubs(vs, "ab")
    for n in "ab":
        assert view(vs, n) == before[n], n


def test_a_clone_holds_its_source_and_the_store_still(vs):
    """A clone copies a unified guest's stubs: meanwhile no unify, gc, deunify or
    delete may change that tree or free the store files its stubs name, and the
    source may not start.  With either lock held elsewhere, the clone is refused
    at once (and leaves nothing); once they are free, it goes through."""
    import fcntl
    build_pair(vs)
    unify(vs, "a", "b")
    run = vs.root / "run/vserver"
    for lock, said in ((run / "unify.lock", "is at work"),
                       (run / "a.lock", "another vserver command is working on a")):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            p = vs("build", "c", "--template", "clone:a")
            assert p.returncode != 0 and said in p.stderr, p.stderr
            assert not vs.conf("c").exists()
        finally:
            os.close(fd)
    vs("build", "c", "--template", "clone:a", check=True)
    own = ("etc/hostname", "etc/machine-id", "etc/hosts")  # each guest's own
    assert {k: v for k, v in view(vs, "c").items() if k not in own} == \
        {k: v for k, v in view(vs, "a").items() if k not in own}


def test_a_guest_upgrading_while_the_host_unifies(vs):
    """Guest a replaces and removes shared files the way dpkg does (a new file
    beside, renamed over) while the host unifies every guest: a runs, so it is
    left alone and named; the others are unified; a's upgrade is whole, and the
    next unify after its stop shares what is still the same."""
    vs("build", "a", "--net", "none", check=True)
    populate(vs.rootfs("a"), n_small=400, libs=10)
    for n in ("b", "c"):
        vs("build", n, "--net", "none", "--template", "clone:a", check=True)
    unify(vs, "--all")
    before = {n: view(vs, n) for n in "bc"}
    sums = store_sums(vs)
    vs("start", "a", check=True)
    upgrade = ("cd /usr/share/corpus/sub && for i in $(seq 0 299); do f=$(printf f%05d $i); "
               "echo new-$i > $f.dpkg-new && mv $f.dpkg-new $f; done && rm f0038* && "
               "touch /upgraded")
    vs("exec", "a", "--", "/bin/sh", "-c", f"({upgrade}) >/dev/null 2>&1 &", check=True)
    p = vs("unify", "--all", "--json", check=True)
    assert "a runs: its files are shared once it is stopped" in p.stderr, p.stderr
    assert wait_for(lambda: vs("exec", "a", "--", "/bin/sh", "-c", "test -e /upgraded").returncode == 0)
    got = vs.exec_out("a", "cd /usr/share/corpus/sub && for i in $(seq 0 299); do "
                           "cat $(printf f%05d $i); done; ls | grep -c ^f0038 || true")
    assert got.split() == [f"new-{i}" for i in range(300)] + ["0"]
    for n in "bc":
        assert view(vs, n) == before[n], n
    assert all(store_sums(vs).get(k) == v for k, v in sums.items() if k in named_by_stubs(vs, "bc"))
    vs("stop", "a", check=True)
    # b takes the same upgrade; then one unify shares the new files of both
    vs("start", "b", check=True)
    vs("exec", "b", "--", "/bin/sh", "-c", upgrade, check=True)
    vs("stop", "b", check=True)
    s = unify(vs, "--all")
    assert s["shared"] >= 2 * 290, s
    redirect = lambda g, f: os.getxattr(base(vs, g) / CORPUS / "sub" / f, "trusted.overlay.redirect")
    assert redirect("a", "f00007") == redirect("b", "f00007") != redirect("c", "f00007")
    assert redirect("a", "f00350") == redirect("c", "f00350")  # never changed: still shared
    for g in "ab":
        vs("start", g, check=True)
        assert vs.exec_out(g, "cat /usr/share/corpus/sub/f00007").strip() == "new-7"
        assert vs.exec_out(g, "ls /usr/share/corpus/sub | grep -c ^f0038 || true").strip() == "0"
        vs("stop", g, check=True)


def wait_for(fn, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.3)
    return False
