"""What the Python benches share: paths, commands, peer installs, the machine
line, summary statistics and the markdown/JSON writers."""
import ctypes
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
V = str(REPO / "build/vserver")


def sh(*cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def install(need):
    """Install from Debian what is missing: need maps a command to its package."""
    missing = sorted({pkg for cmd, pkg in need.items() if not shutil.which(cmd)})
    if missing:
        print(f"== installing {' '.join(missing)}", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh("apt-get", "update", "-qq", stdout=subprocess.DEVNULL, env=env)
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
           stdout=subprocess.DEVNULL, env=env)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    return (f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
            f"{mem / 1048576:.0f} GiB")


def today():
    return time.strftime("%Y-%m-%d")


def summary(xs):
    """Median and spread (min, max, and the max-min range as a share of the median)."""
    m = statistics.median(xs)
    return {"median": m, "min": min(xs), "max": max(xs),
            "spread_pct": 100.0 * (max(xs) - min(xs)) / m if m else 0.0, "samples": list(xs)}


def table(head, rows):
    """A markdown table: head is a list of column titles; numbers right-aligned."""
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def write(out: Path, stem, md_lines, result):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text("\n".join(md_lines) + "\n")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(md_lines))


def meminfo():
    m = {}
    for l in open("/proc/meminfo"):
        k, v = l.split(":", 1)
        m[k] = int(v.split()[0])
    return m


def drop_caches():
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def in_cgroup_v1_view(fn):
    """Run fn in a child with a private mount namespace where the cgroup2 tree
    is unmounted (crun refuses hybrid hosts); returns what fn returns."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        libc = ctypes.CDLL(None, use_errno=True)
        res = {"error": "cannot make a cgroup v1 view"}
        try:
            if (libc.unshare(0x00020000) == 0 and  # CLONE_NEWNS
                    libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) == 0):  # MS_REC|MS_PRIVATE
                libc.umount2(b"/sys/fs/cgroup/unified", 2)  # MNT_DETACH (hybrid hosts only)
                res = fn()
        except Exception as e:  # reported by the parent, which goes on
            res = {"error": f"{type(e).__name__}: {e}"}
        finally:
            os.write(w, json.dumps(res).encode())
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def rmdirs(pattern_names):
    """Remove the (empty) cgroups our peers made, deepest first."""
    for base in Path("/sys/fs/cgroup").iterdir():
        found = [d for name in pattern_names for d in base.glob(f"**/{name}")]
        for d in sorted(found, key=lambda p: -len(p.parts)):
            for sub in sorted(d.glob("**/"), key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass


def deny_list():
    """Our default seccomp deny list, read from the source, for the peers."""
    src = (REPO / "src/lib/seccomp.c").read_text()
    body = src[src.index("default_deny[] = {"):]
    return re.findall(r'"([a-z0-9_]+)"', body[:body.index("NULL")])


def oci_spec(bundle: Path, root, args):
    """runc's default spec in BUNDLE for ROOT running ARGS.  It drops caps,
    masks /proc paths and isolates pid, mount, ipc, uts and net, but loads no
    seccomp filter: it gets our deny list, so no figure wins by doing less."""
    bundle.mkdir(parents=True)
    sh("runc", "spec", cwd=bundle)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(args=list(args), terminal=False)
    spec["root"].update(path=str(root), readonly=False)  # runc refuses a symlinked rootfs
    spec["linux"].pop("resources", None)
    spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": deny_list(), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    return spec
