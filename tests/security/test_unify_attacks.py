"""Attacks on copy-on-write unification (vserver unify --mode overlay) from
inside a guest: the store never changes and is never named from a guest,
and nothing a guest does to its own files fools the next unify into
sharing wrong bytes or hiding a file."""
import hashlib
import json
import os

import pytest

from test_escapes import arm

DATA = "srv/data"


def sums(root):
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def store(vs):
    return vs.root / "var/lib/vserver/store"


def unify(vs, *names):
    s = json.loads(vs("unify", "--mode", "overlay", *names, "--json", check=True).stdout)
    assert s["mode"] == "overlay", s
    return s


def build(vs, name, files, clone=None):
    """A guest with @files ({path under /srv/data: bytes}) and the attack helper."""
    if clone:
        vs("build", name, "--net", "none", "--template", "clone:" + clone, check=True)
    else:
        vs("build", name, "--net", "none", check=True)
        arm(vs.rootfs(name))
    d = vs.rootfs(name) / DATA
    d.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)


def in_guest(vs, name, path):
    return vs.exec_out(name, f"sha256sum /{DATA}/{path}").split()[0]


FILES = {f"f{i}": os.urandom(5000 + i) for i in range(8)}


@pytest.fixture
def pair(vs):
    build(vs, "a", FILES)
    build(vs, "b", FILES, clone="a")
    unify(vs, "a", "b")
    return vs


def test_a_guest_cannot_forge_overlayfs_xattrs(pair):
    """A stub is a metacopy file with a redirect into the store: a guest that
    could write either on its own files could read any store file, or make
    unify trust a file that holds no bytes."""
    vs = pair
    vs("start", "a", check=True)
    for name in ("trusted.overlay.redirect", "trusted.overlay.metacopy",
                 "trusted.overlay.opaque", "trusted.overlay.origin"):
        for target in (f"/{DATA}/f0", f"/{DATA}"):
            out = vs.exec_out("a", f"/bin/vs-attack setxattr {target} {name} /00/x")
            assert out != "ok", (name, target, out)
    vs("stop", "a", check=True)


def test_writes_never_reach_the_store_or_the_other_guest(pair):
    vs = pair
    before_store, before_b = sums(store(vs)), sums(vs.rootfs("b").parent / "base" / DATA)
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    want = {p: in_guest(vs, "b", p) for p in FILES}
    vs.exec_out("a", f"""set -e; cd /{DATA}
        dd if=/dev/zero of=f0 bs=100 count=1 conv=notrunc 2>/dev/null
        : > f1
        echo tail >> f2
        cat f3 f3 > f4
        mv f5 f6
        ln f7 hard && echo x >> hard
        """)
    assert in_guest(vs, "a", "f7") != want["f7"]  # the hard link is the same copy-up
    assert {p: in_guest(vs, "b", p) for p in FILES} == want
    assert sums(store(vs)) == before_store
    assert sums(vs.rootfs("b").parent / "base" / DATA) == before_b
    vs("stop", "a", check=True)
    vs("stop", "b", check=True)


def test_a_metadata_only_copy_up_is_not_taken_for_zeros(vs):
    """A chmod copies only the metadata up: on disk the guest's file is all
    hole, and read directly it is zeros.  Another guest's real file of zeros,
    of the same size, must not make unify share those zeros in its place."""
    build(vs, "a", FILES)
    build(vs, "b", FILES, clone="a")
    unify(vs, "a", "b")
    vs("start", "a", check=True)
    want = in_guest(vs, "a", "f0")
    vs.exec_out("a", f"chmod 600 /{DATA}/f0")
    vs("stop", "a", check=True)
    build(vs, "c", {"zeros": bytes(len(FILES["f0"]))})
    unify(vs, "a", "b", "c")
    vs("start", "a", check=True)
    assert in_guest(vs, "a", "f0") == want
    assert vs.exec_out("a", f"stat -c %a /{DATA}/f0").strip() == "600"
    vs("stop", "a", check=True)


def test_files_under_a_renamed_directory_stay_whole(pair):
    """A guest that renames a shared directory leaves a redirect on it in its
    rootfs: a stub made below the new name would never be seen, and the
    file would vanish from the guest."""
    vs = pair
    vs("start", "a", check=True)
    vs.exec_out("a", f"mv /{DATA} /srv/moved && cp /srv/moved/f1 /srv/moved/copy")
    want = vs.exec_out("a", "cd /srv/moved && sha256sum * | sort")
    vs("stop", "a", check=True)
    unify(vs, "a", "b")
    assert (vs.rootfs("a") / "srv/moved/copy").exists()  # left alone
    vs("start", "a", check=True)
    assert vs.exec_out("a", "cd /srv/moved && sha256sum * | sort") == want
    vs("stop", "a", check=True)


def test_no_path_of_the_store_is_reachable_from_a_guest(pair):
    vs = pair
    names = {p.name for p in store(vs).rglob("*") if p.is_file()}
    assert names
    vs("start", "a", check=True)
    found = vs.exec_out("a", "find / -xdev -type f 2>/dev/null | sed 's,.*/,,' | sort -u")
    assert not names & set(found.split()), names & set(found.split())
    vs("stop", "a", check=True)
