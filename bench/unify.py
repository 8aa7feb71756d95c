#!/usr/bin/python3
"""Unification against the general dedup tools, on one corpus, in one run.

Ten guests: Debian bookworm minbase (debootstrap, cached in
/var/cache/vserver-bench), half of them with extra packages (python3, perl,
git, curl, openssl); in four of them 100 files each differ from the others only
in owner, mode, mtime or an xattr.  Each tool gets a fresh copy of the corpus
(cp -a, then sync and a dropped page cache, the same cold start for all) and
works on the guests' /usr (vserver: the whole trees, its default exclusions apply).  Measured per
tool: wall time, CPU time, peak RSS (wait4 of the tool alone), bytes saved (du:
each inode once; for vserver's overlay mode its store and the guests' base
layers count too), and wrong merges: files now sharing an inode whose copies
differed in owner, group, mode, mtime or xattrs before (overlay: a guest's
file whose bytes or metadata as the guest sees them are not what they were).
vserver runs twice on ext4: overlay (copy on write, the default) and link.  On
a btrfs loop image the reflink tools: vserver unify (FIDEDUPERANGE) and
duperemove.  Then the page-cache effect: the summed PSS of one program running
in five guests, before and after vserver unify (overlay), and the start time of
those guests before and after.

  bench/unify.py [--quick|--smoke]    (--quick/--smoke: a small synthetic corpus)
"""
import argparse
import filecmp
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
V = str(REPO / "build/vserver")
CACHE = Path("/var/cache/vserver-bench")
MIRROR = "http://deb.debian.org/debian"
GUESTS = [f"g{i}" for i in range(10)]


def sh(*cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def debian(kind):
    """A cached debootstrap tree (minbase, or minbase with extra packages)."""
    d = CACHE / kind
    if not d.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = CACHE / f"{kind}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        inc = ["--include=python3,perl,git,curl,openssl"] if kind == "extra" else []
        print(f"== debootstrap {kind} (once, cached in {CACHE})", file=sys.stderr)
        sh("debootstrap", "--variant=minbase", *inc, "bookworm", tmp, MIRROR,
           stdout=subprocess.DEVNULL)
        tmp.rename(d)
    return d


def synthetic(root: Path, extra: bool):
    """Small stand-in for a Debian tree: host libraries and binaries, random files."""
    rnd = random.Random(1)
    usr = root / "usr/lib/bench"
    usr.mkdir(parents=True, exist_ok=True)
    libs = sorted(p for p in Path("/usr/lib/x86_64-linux-gnu").glob("lib*.so*")
                  if p.is_file() and not p.is_symlink() and p.stat().st_size < 2 << 20)
    for p in libs[:60 if extra else 30]:
        shutil.copy2(p, usr / p.name)
    for i in range(200):
        (usr / f"data{i:04d}").write_bytes(rnd.randbytes(rnd.choice([200, 3000, 40000])))
        os.utime(usr / f"data{i:04d}", ns=(1700000000 * 10**9,) * 2)


def build_corpus(inst: Path, quick: bool):
    env = dict(os.environ, VSERVER_ROOT=str(inst))
    for i, g in enumerate(GUESTS):
        extra = i >= 5
        if quick:
            sh(V, "build", g, "--init", "none", "--net", "none", env=env,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            synthetic(inst / f"var/lib/vserver/guests/{g}/rootfs", extra)
        else:
            sh(V, "build", g, "--init", "none", "--net", "none", "--template",
               debian("extra" if extra else "minbase"), env=env, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
    # files that differ only in their metadata
    rnd = random.Random(2)
    for g, how in zip(GUESTS[1:5], ("owner", "mode", "mtime", "xattr")):
        usr = inst / f"var/lib/vserver/guests/{g}/rootfs/usr"
        files = sorted(p for p in usr.rglob("*") if p.is_file() and not p.is_symlink()
                       and p.stat().st_size > 0 and not p.stat().st_mode & 0o6000)
        for p in rnd.sample(files, min(100, len(files))):
            if how == "owner":
                os.chown(p, 1000, 1000)
            elif how == "mode":
                os.chmod(p, 0o600)
            elif how == "mtime":
                os.utime(p, ns=(1500000000 * 10**9,) * 2)
            else:
                os.setxattr(p, "user.bench", b"differs")
    return env


def meta(p):
    st = os.lstat(p)
    xa = tuple(sorted((k, os.getxattr(p, k, follow_symlinks=False))
                      for k in os.listxattr(p, follow_symlinks=False)
                      if k != "trusted.vserver.unified"))
    return (st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns, xa)


def files_of(roots):
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                if not os.path.islink(p) and os.path.isfile(p):
                    yield p


def pristine_meta(roots):
    return {p: meta(p) for p in files_of(roots)}


def layers(inst):
    """What an overlay unify adds beside the guests' trees: their base layers, the store."""
    g = inst / "var/lib/vserver/guests"
    return [g / n / "base" for n in GUESTS] + [inst / "var/lib/vserver/store"]


def du(roots):
    seen, total = set(), 0
    for p in files_of([r for r in roots if os.path.isdir(r)]):
        st = os.lstat(p)
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def wrong_merges(roots, before, prefix_from, prefix_to):
    """Files now sharing an inode with files whose copies had other metadata
    before: those of each shared inode that differ from its most common."""
    by_ino = {}
    for p in files_of(roots):
        st = os.lstat(p)
        if st.st_nlink > 1:
            by_ino.setdefault((st.st_dev, st.st_ino), []).append(p)
    wrong = 0
    for paths in by_ino.values():
        metas = [before.get(p.replace(prefix_from, prefix_to, 1)) for p in paths]
        metas = [m for m in metas if m is not None]
        if metas:
            common = max(set(metas), key=metas.count)
            wrong += sum(1 for m in metas if m != common)
    return wrong


def wrong_views(inst, before, prefix_from, prefix_to):
    """Overlay: stubs whose metadata or store bytes are not the pristine file's."""
    wrong = 0
    store = inst / "var/lib/vserver/store"
    for n in GUESTS:
        base = inst / f"var/lib/vserver/guests/{n}/base"
        for p in files_of([base]):
            orig = p.replace(f"/{n}/base/", f"/{n}/rootfs/", 1).replace(prefix_from, prefix_to, 1)
            m = meta(p)
            m = m[:4] + (tuple(x for x in m[4] if not x[0].startswith("trusted.overlay.")),)
            data = store / os.getxattr(p, "trusted.overlay.redirect").decode()[1:]
            if before.get(orig) != m or not filecmp.cmp(data, orig, shallow=False):
                wrong += 1
    return wrong


def cold():
    """Every tool starts from disk: dirty data written, the page cache dropped
    (this VM keeps little cache anyway, so a warm start would be luck)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(cmd, env=None, cwd=None):
    """Wall, CPU (user+sys) and peak RSS of the tool alone, by GNU time."""
    cold()
    with tempfile.NamedTemporaryFile("r") as out:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", out.name] +
                           [str(c) for c in cmd], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {p.stderr.strip()[-400:]}")
        wall, user, sys_, rss = out.read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss) / 1024.0


def copy(src: Path, dst: Path):
    sh("cp", "-a", "--reflink=never", src, dst)


def peers():
    need = {"jdupes": "jdupes", "rdfind": "rdfind", "duperemove": "duperemove",
            "/usr/bin/time": "time", "mkfs.btrfs": "btrfs-progs", "debootstrap": "debootstrap"}
    missing = [pkg for cmd, pkg in need.items() if not shutil.which(cmd)]
    if missing:
        print(f"== installing {' '.join(missing)}", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh("apt-get", "update", "-qq", stdout=subprocess.DEVNULL, env=env)
        sh("apt-get", "install", "-y", "-qq", *missing, stdout=subprocess.DEVNULL, env=env)


def drop(inst: Path):
    """Remove a copy: its unified files are immutable, vserver delete knows how."""
    e = dict(os.environ, VSERVER_ROOT=str(inst))
    for g in GUESTS:
        subprocess.run([V, "delete", "--force", g], env=e, capture_output=True)
    shutil.rmtree(inst, ignore_errors=True)


def btrfs_used(path):
    """Bytes the tree takes on btrfs: exclusive plus shared extents, each once."""
    line = sh("btrfs", "filesystem", "du", "-s", "--raw", path, capture_output=True,
              text=True).stdout.splitlines()[-1].split()
    return int(line[1]) + int(line[2])


def pss_of_marked(marker):
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if marker.encode() not in cmd:
                continue
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def pss_run(env, names, program, starts):
    """Start the guests, run @program in each, sum its PSS (KiB), stop them;
    each start's wall time (ms) into @starts."""
    for n in names:
        cold()
        t0 = time.monotonic()
        sh(V, "start", n, env=env)
        starts.append((time.monotonic() - t0) * 1000)
    marker = f"vsbench{os.getpid()}"
    for n in names:
        sh(V, "exec", n, "--", "/bin/sh", "-c",
           f"exec 0</dev/null >/dev/null 2>&1; {program} {marker} &", env=env)
    time.sleep(2.0)
    pss = pss_of_marked(marker)
    for n in names:
        sh(V, "stop", n, "--timeout", "0", env=env, stderr=subprocess.DEVNULL)
    return pss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    small = a.quick or a.smoke
    # a smoke run writes where the caller says (the tests: their own directory)
    out = Path(os.environ.get("VS_BENCH_OUT") or tempfile.mkdtemp()) if a.smoke else REPO / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    peers()
    work = Path(tempfile.mkdtemp(prefix="vs-bench-unify.", dir="/var/tmp"))
    mnt = work / "btrfs"
    rows, pss = [], {}
    try:
        pristine = work / "pristine"
        env = build_corpus(pristine, small)
        gdir = lambda inst: [inst / f"var/lib/vserver/guests/{g}/rootfs" for g in GUESTS]
        usr = lambda inst: [r / "usr" for r in gdir(inst)]
        before = pristine_meta(gdir(pristine))
        nfiles = len(before)
        size = sum(os.lstat(p).st_size for p in before)
        print(f"== corpus: {len(GUESTS)} guests, {nfiles} files, {size / 2**30:.2f} GiB",
              file=sys.stderr)

        def one(tool, cmd, inst, roots, env_=None, cwd=None, pre=None):
            d0 = du(gdir(inst) + layers(inst))
            wall, cpu, rss = timed(cmd, env=env_, cwd=cwd)
            saved = d0 - du(gdir(inst) + layers(inst))
            wrong = wrong_merges(gdir(inst), before, str(inst), str(pristine)) + \
                wrong_views(inst, before, str(inst), str(pristine))
            rows.append({"tool": tool, "fs": "ext4" if "btrfs" not in str(inst) else "btrfs",
                         "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                         "peak_rss_mib": round(rss, 1), "saved_mib": round(saved / 2**20, 1),
                         "wrong_merges": wrong})
            print(f"   {tool}: {wall:.2f} s, saved {saved / 2**20:.0f} MiB, {wrong} wrong",
                  file=sys.stderr)

        # vserver first, on a copy that also serves the page-cache measurement
        w = work / "vserver"
        copy(pristine, w)
        wenv = dict(os.environ, VSERVER_ROOT=str(w), VSERVER_CGROUP_PARENT="vs-bench-unify")
        program = ("/usr/bin/python3 -c 'import sys,time,json,ssl,email,http.client,sqlite3; "
                   "time.sleep(600)'" if not small else "/bin/busybox sh -c 'sleep 600; :'")
        # the program's marker becomes its last argument (python: sys.argv)
        five = GUESTS[5:]
        plain, unified = [], []
        pss["separate_kib"] = pss_run(wenv, five, program, plain)
        one("vserver unify", [V, "unify", "--all"], w, gdir(w), env_=wenv)
        pss["unified_kib"] = pss_run(wenv, five, program, unified)
        pss["start_ms_plain"] = round(sorted(plain)[len(plain) // 2], 1)
        pss["start_ms_unified"] = round(sorted(unified)[len(unified) // 2], 1)
        drop(w)
        w = work / "vserver-link"
        copy(pristine, w)
        one("vserver unify --mode link", [V, "unify", "--all", "--mode", "link"], w, gdir(w),
            env_=dict(os.environ, VSERVER_ROOT=str(w)))
        drop(w)
        for tool, cmd in (("jdupes -L", ["jdupes", "-r", "-L", "-q"]),
                          ("rdfind", ["rdfind", "-makehardlinks", "true", "-outputname",
                                      "/dev/null"]),
                          ("hardlink", ["hardlink", "-q"])):
            w = work / tool.split()[0]
            copy(pristine, w)
            one(tool, cmd + [str(p) for p in usr(w)], w, usr(w), cwd=work)
            drop(w)
        # reflinks on btrfs
        img = work / "btrfs.img"
        with open(img, "wb") as f:
            f.truncate(max(4 << 30, int(du(gdir(pristine)) * 3)))
        sh("mkfs.btrfs", "-q", "-f", img, stdout=subprocess.DEVNULL)
        mnt.mkdir()
        sh("mount", "-o", "loop", img, mnt)
        for tool in ("vserver unify (reflink)", "duperemove -dr"):
            w = mnt / tool.split()[0]
            copy(pristine, w)
            sh("btrfs", "filesystem", "sync", mnt)
            wenv = dict(os.environ, VSERVER_ROOT=str(w))
            if tool.startswith("vserver"):
                cmd, roots = [V, "unify", "--all", "--mode", "reflink"], gdir(w)
            else:
                cmd, roots = ["duperemove", "-dr", "-q"] + [str(p) for p in usr(w)], usr(w)
            used0 = btrfs_used(w)
            wall, cpu, rss = timed(cmd, env=wenv, cwd=work)
            sh("btrfs", "filesystem", "sync", mnt)
            saved = used0 - btrfs_used(w)
            rows.append({"tool": tool, "fs": "btrfs", "wall_s": round(wall, 3),
                         "cpu_s": round(cpu, 3), "peak_rss_mib": round(rss, 1),
                         "saved_mib": round(saved / 2**20, 1), "wrong_merges": 0})
            print(f"   {tool}: {wall:.2f} s, saved {saved / 2**20:.0f} MiB", file=sys.stderr)
            drop(w)
    finally:
        subprocess.run(["umount", str(mnt)], stderr=subprocess.DEVNULL)
        for inst in (work / "vserver", work / "vserver-link", work / "pristine"):
            if inst.is_dir():
                drop(inst)
        shutil.rmtree(work, ignore_errors=True)
        for d in Path("/sys/fs/cgroup").glob("*/**/vs-bench-unify"):
            try:
                d.rmdir()
            except OSError:
                pass

    base = {}
    for r in rows:
        if r["tool"].startswith("vserver"):
            base.setdefault(r["fs"], r["wall_s"])
    for r in rows:
        r["time_ratio"] = round(r["wall_s"] / base[r["fs"]], 2) if base.get(r["fs"]) else None
    result = {"corpus": {"guests": len(GUESTS), "files": nfiles, "bytes": size,
                         "kind": "synthetic" if small else "debian bookworm minbase (+extra)"},
              "machine": os.uname().nodename + " " + os.uname().release + f", {os.cpu_count()} CPUs",
              "date": time.strftime("%Y-%m-%d"), "tools": rows, "pss": pss}
    md = [f"# Unification: vserver unify vs jdupes, rdfind, hardlink, duperemove\n",
          f"{result['date']}, {result['machine']}. Corpus: {len(GUESTS)} guests "
          f"({result['corpus']['kind']}), {nfiles} files, {size / 2**30:.2f} GiB; 100 files in "
          "each of four guests differ only in owner, mode, mtime or an xattr. "
          "Each tool works on a fresh copy, from a cold page cache (sync, drop_caches); peers on the guests' /usr, "
          "vserver on the whole trees with its default exclusions. Wrong merges: files now "
          "sharing an inode although their copies differed in owner, mode, mtime or xattrs.\n",
          "| tool | fs | wall s | CPU s | peak RSS MiB | saved MiB | wrong merges | time / vserver |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['tool']} | {r['fs']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
                  f"{r['peak_rss_mib']:.1f} | {r['saved_mib']:.1f} | {r['wrong_merges']} | "
                  f"{r['time_ratio']:.2f} |")
    md += ["", "Page cache: the summed PSS of the same program running in five guests "
           f"({'python3 importing ssl, json, email, http.client, sqlite3' if not small else 'busybox sh'}).", "",
           "| guests | PSS total KiB |", "|---|---:|",
           f"| separate copies | {pss['separate_kib']} |",
           f"| unified (overlay) | {pss['unified_kib']} |", "",
           "Start of those guests (median `vserver start`, cold page cache):", "",
           "| guests | start ms |", "|---|---:|",
           f"| plain tree | {pss['start_ms_plain']} |",
           f"| unified (overlay) | {pss['start_ms_unified']} |", ""]
    (out / "unify.md").write_text("\n".join(md))
    (out / "unify.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
