"""vserver-runc, the OCI runtime: each verb and each config.json field, against the
runtime specification, with real containers (the engines are in test_oci_engines.py)."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CG_PARENT, RUNC, cgroup_dirs, process_ended


def cg_file(name, ctrl, f):
    """The file @f of container @name's cgroup in controller @ctrl's hierarchy."""
    for d in cgroup_dirs(f"{CG_PARENT}/oci-{name}"):
        p = Path(d) / f
        if p.exists() and (f"/{ctrl}" in d or ctrl in d):
            return p
    return None


def cg_exists(name):
    return any(os.path.isdir(d) for d in cgroup_dirs(f"{CG_PARENT}/oci-{name}"))


def test_run_passes_output_and_exit_code(oci):
    p = oci.run("r1", ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert p.returncode == 7, p.stderr
    assert p.stdout == "out\n"
    assert "err" in p.stderr
    assert not (oci.state / "r1").exists(), "run without --keep removes the container"
    assert not cg_exists("r1")


def test_lifecycle_create_start_state_kill_delete(oci):
    pidfile = oci.dir / "pid"
    assert oci.create("l1", ["sh", "-c", "echo started; exec sleep 1000"],
                      opts=("--pid-file", str(pidfile))) == 0
    s = oci.state_of("l1")
    assert s["status"] == "created"
    assert s["ociVersion"].startswith("1.")
    assert s["id"] == "l1"
    assert int(pidfile.read_text()) == s["pid"] > 0
    # created: the process exists, its program has not run yet
    assert oci.output("l1", wait=0.5) == ""
    assert open(f"/proc/{s['pid']}/comm").read().strip() != "sleep"
    assert oci("start", "l1").returncode == 0
    assert "started" in oci.output("l1", until="started")
    s = oci.state_of("l1")
    assert s["status"] == "running"
    assert oci("start", "l1").returncode != 0, "a second start is refused"
    p = oci("delete", "l1")
    assert p.returncode != 0 and "not stopped: running" in p.stderr
    assert oci("kill", "l1", "KILL").returncode == 0
    for _ in range(100):
        if oci.state_of("l1")["status"] == "stopped":
            break
        time.sleep(0.05)
    assert oci.state_of("l1")["status"] == "stopped"
    assert oci.state_of("l1")["pid"] == 0
    assert oci("delete", "l1").returncode == 0
    assert oci("state", "l1").returncode != 0
    assert not (oci.state / "l1").exists()
    assert not cg_exists("l1")


def test_a_leaf_cgroup_only_where_the_container_may_write_its_tree(oci):
    """The spec's cgroup mount is read-only: the processes live in cgroupsPath itself,
    as with runc and crun (one cgroup a hierarchy). A writable one (or SYS_ADMIN without
    a user namespace) gets the leaf cgroupsPath/guest, so its limits stay above it."""
    def rw(c):
        for m in c["mounts"]:
            if m["type"] in ("cgroup", "cgroup2"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    for name, edit, leaf in (("c0", None, False), ("c1", rw, True)):
        assert oci.create(name, ["sh", "-c", "echo up; exec sleep 1000"], edit=edit) == 0
        oci("start", name, check=True)
        assert "up" in oci.output(name, until="up")
        pid = str(oci.state_of(name)["pid"])
        dirs = cgroup_dirs(f"{CG_PARENT}/oci-{name}")
        v1_controller = [d for d in dirs if not os.path.exists(d + "/cgroup.controllers")
                         and "/systemd/" not in d]
        for d in dirs:
            has_leaf = os.path.isdir(d + "/guest")
            assert has_leaf == (leaf and d not in v1_controller), d
            procs = open(d + ("/guest" if has_leaf else "") + "/cgroup.procs").read().split()
            assert pid in procs, d
        oci("kill", name, "KILL", check=True)
        for _ in range(100):
            if oci.state_of(name)["status"] == "stopped":
                break
            time.sleep(0.05)
        oci("delete", name, check=True)
        assert not cg_exists(name)


def test_kill_signal_names_and_all(oci):
    assert oci.create("k1", ["sh", "-c", "trap 'echo got-usr1' USR1; sleep 1000 & wait; "
                             "sleep 1000 & wait"]) == 0
    oci("start", "k1", check=True)
    time.sleep(0.3)
    assert oci("kill", "k1", "SIGUSR1").returncode == 0
    assert "got-usr1" in oci.output("k1", until="got-usr1")
    p = oci("kill", "k1", "NOSUCH")
    assert p.returncode == 2 and "not a signal" in p.stderr
    pids = json.loads(oci("ps", "--format", "json", "k1", check=True).stdout)
    assert len(pids) >= 2
    assert oci("kill", "--all", "k1", "9").returncode == 0
    for _ in range(100):
        if all(process_ended(p) for p in pids):
            break
        time.sleep(0.05)
    assert oci.state_of("k1")["status"] == "stopped"


def test_exec_args_env_cwd_user_and_exit_code(oci):
    assert oci.create("e1", ["sleep", "1000"]) == 0
    oci("start", "e1", check=True)
    p = oci("exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "65534:65534",
            "--additional-gids", "5", "e1", "sh", "-c", "echo $FOO; pwd; id; exit 4")
    assert p.returncode == 4, p.stderr
    assert p.stdout.splitlines()[:2] == ["bar", "/tmp"]
    assert "uid=65534" in p.stdout and "gid=65534" in p.stdout and "5" in p.stdout
    # the same process namespace: exec sees the container's PID 1
    p = oci("exec", "e1", "cat", "/proc/1/comm", check=True)
    assert p.stdout.strip() == "sleep"
    p = oci("exec", "e1", "nosuchprogram")
    assert p.returncode != 0 and "executable file not found in $PATH" in p.stderr
    proc = oci.dir / "process.json"
    proc.write_text(json.dumps({"args": ["sh", "-c", "echo from-process-file; id -u"],
                                "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 7, "gid": 7}}))
    p = oci("exec", "--process", str(proc), "e1", check=True)
    assert p.stdout.split() == ["from-process-file", "7"]
    # detached, with a pid file: the process runs on, then ends
    pf = oci.dir / "exec.pid"
    oci("exec", "-d", "--pid-file", str(pf), "e1", "sleep", "30", check=True)
    pid = int(pf.read_text())
    assert open(f"/proc/{pid}/comm").read().strip() == "sleep"
    os.kill(pid, signal.SIGKILL)


def test_pause_resume_freezes_every_process(oci):
    assert oci.create("p1", ["sh", "-c", "while true; do echo tick; sleep 0.1; done"]) == 0
    oci("start", "p1", check=True)
    assert "tick" in oci.output("p1", until="tick")
    assert oci("pause", "p1").returncode == 0
    assert oci.state_of("p1")["status"] == "paused"
    oci.output("p1", wait=0.3)
    assert oci.output("p1", wait=0.5) == "", "a paused container runs nothing"
    assert oci("pause", "p1").returncode != 0
    assert oci("resume", "p1").returncode == 0
    assert oci.state_of("p1")["status"] == "running"
    assert "tick" in oci.output("p1", until="tick")
    assert oci("resume", "p1").returncode != 0, "resume of a running container is refused"


def test_update_and_events_stats(oci):
    def edit(c):
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 40}}
    assert oci.create("u1", ["sleep", "1000"], edit) == 0
    oci("start", "u1", check=True)
    limit = cg_file("u1", "memory", "memory.limit_in_bytes") or cg_file("u1", "memory",
                                                                       "memory.max")
    pids = cg_file("u1", "pids", "pids.max")
    assert int(limit.read_text()) == 64 << 20
    assert pids.read_text().strip() == "40"
    oci("update", "--memory", "100m", "--pids-limit", "55", "u1", check=True)
    assert int(limit.read_text()) == 100 << 20
    assert pids.read_text().strip() == "55"
    oci("update", "--resources", "-", "u1", input='{"pids": {"limit": 66}}', check=True)
    assert pids.read_text().strip() == "66"
    assert int(limit.read_text()) == 100 << 20, "update keeps what it does not name"
    p = oci("update", "--memory", "lots", "u1")
    assert p.returncode == 2 and "--memory lots" in p.stderr
    ev = json.loads(oci("events", "--stats", "u1", check=True).stdout)
    assert ev["type"] == "stats" and ev["id"] == "u1"
    assert ev["data"]["pids"]["current"] >= 1
    assert ev["data"]["memory"]["usage"]["usage"] > 0
    assert ev["data"]["memory"]["usage"]["limit"] == 100 << 20


def test_list_spec_features_version(oci):
    assert oci.create("ls1", ["sleep", "1000"]) == 0
    lst = json.loads(oci("list", "--format", "json", check=True).stdout)
    assert [c["id"] for c in lst] == ["ls1"] and lst[0]["status"] == "created"
    assert oci("list", "-q", check=True).stdout.split() == ["ls1"]
    assert "ls1" in oci("list", check=True).stdout
    b = oci.dir / "specdir"
    b.mkdir()
    oci("spec", "--bundle", str(b), check=True)
    spec = json.loads((b / "config.json").read_text())
    assert spec["ociVersion"].startswith("1.") and spec["root"]["path"] == "rootfs"
    p = oci("spec", "--bundle", str(b))
    assert p.returncode != 0 and "exists" in p.stderr
    (b / "config.json").unlink()
    oci("spec", "--rootless", "--bundle", str(b), check=True)
    rl = json.loads((b / "config.json").read_text())
    assert {"type": "user"} in rl["linux"]["namespaces"]
    f = json.loads(oci("features", check=True).stdout)
    assert f["ociVersionMax"].startswith("1.")
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert "prestart" in f["hooks"] and "rbind" in f["mountOptions"]
    assert "spec: 1." in subprocess.run([RUNC, "--version"], capture_output=True,
                                        text=True).stdout
    p = oci("checkpoint", "ls1")
    assert p.returncode != 0 and "not supported" in p.stderr


def test_config_process_fields(oci):
    def edit(c):
        p = c["process"]
        p["env"] = ["PATH=/bin", "HELLO=world"]
        p["cwd"] = "/tmp"
        p["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 0o077}
        p["capabilities"] = {k: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]
                             for k in ("bounding", "effective", "permitted", "inheritable",
                                       "ambient")}
        p["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
        p["noNewPrivileges"] = True
        p["oomScoreAdj"] = 500
        c["hostname"] = "ocihost"
        c["domainname"] = "example.test"
    p = oci.run("f1", ["sh", "-c",
                       "echo $HELLO; pwd; id; hostname; cat /proc/sys/kernel/domainname; umask; ulimit -n; ulimit -Hn; "
                       "grep -E 'CapEff|CapAmb|NoNewPrivs' /proc/self/status; "
                       "cat /proc/self/oom_score_adj"], edit)
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "world" and out[1] == "/tmp"
    assert "uid=1000" in out[2] and "gid=1000" in out[2] and "100" in out[2]
    assert out[3] == "ocihost" and out[4] == "example.test"
    assert out[5] == "0077"
    assert out[6:8] == ["123", "456"]
    caps = (1 << 0) | (1 << 10)
    assert f"CapEff:\t{caps:016x}" in p.stdout and f"CapAmb:\t{caps:016x}" in p.stdout
    assert "NoNewPrivs:\t1" in p.stdout
    assert out[-1] == "500"


def test_config_root_mounts_masks(oci, tmp_path):
    host = tmp_path / "shared"
    host.mkdir()
    (host / "hello").write_text("from the host\n")

    def edit(c):
        c["root"]["readonly"] = True
        c["mounts"] += [
            {"destination": "/mnt", "type": "bind", "source": str(host),
             "options": ["rbind", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "size=1m", "mode=1777"]},
        ]
        c["linux"]["maskedPaths"] = ["/proc/timer_list", "/proc/scsi", "/proc/nonexistent"]
        c["linux"]["readonlyPaths"] = ["/proc/sys"]
        c["linux"]["sysctl"] = {"kernel.shmmax": "12345678", "net.ipv4.ip_forward": "1"}
    p = oci.run("m1", ["sh", "-c",
                       "cat /mnt/hello; touch /mnt/x 2>&1 | head -c 0 || true; "
                       "touch /mnt/x && echo mnt-writable; touch /rootfile && echo root-writable; "
                       "echo tmp > /tmp/t && echo tmp-ok; grep ' /tmp ' /proc/mounts; "
                       "echo kcore=$(wc -c < /proc/timer_list); cat /proc/sys/kernel/shmmax; "
                       "cat /proc/sys/net/ipv4/ip_forward; "
                       "echo 1 > /proc/sys/kernel/shmmax && echo sys-writable; echo end"], edit)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "from the host" in out
    assert "mnt-writable" not in out and "root-writable" not in out
    assert "tmp-ok" in out and "size=1024k" in out and "nosuid" in out
    lines = out.splitlines()
    assert "kcore=0" in lines, out  # a masked file reads empty
    i = lines.index("kcore=0")
    assert lines[i + 1] == "12345678" and lines[i + 2] == "1"
    assert "sys-writable" not in out
    assert not (host / "x").exists()
    # the host's own values are untouched (ipc and net namespaces of its own)
    assert open("/proc/sys/kernel/shmmax").read().strip() != "12345678"


def test_config_devices_and_device_cgroup(oci):
    def edit(c):
        c["process"]["capabilities"] = {k: ["CAP_MKNOD", "CAP_DAC_OVERRIDE"]
                                        for k in ("bounding", "effective", "permitted")}
        c["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                  "fileMode": 0o640, "uid": 0, "gid": 0}]
        c["linux"]["resources"]["devices"] = [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    p = oci.run("d1", ["sh", "-c",
                       "ls -l /dev/mynull; echo x > /dev/mynull && echo null-ok; "
                       "mknod /dev/mem2 c 1 1 && echo mknod-ok; "
                       "head -c 1 /dev/mem2 >/dev/null 2>&1 && echo mem-open || echo mem-denied; "
                       "echo end"], edit)
    assert p.returncode == 0, p.stderr
    assert "crw-r-----" in p.stdout and "null-ok" in p.stdout
    assert "mem-open" not in p.stdout and "mem-denied" in p.stdout


def test_config_namespace_paths_user_time_personality(oci):
    assert oci.create("ns1", ["sleep", "1000"]) == 0
    pid = oci.state_of("ns1")["pid"]

    def edit(c):
        for ns in c["linux"]["namespaces"]:
            if ns["type"] in ("network", "ipc"):
                ns["path"] = f"/proc/{pid}/ns/{'net' if ns['type'] == 'network' else 'ipc'}"
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400 * 3, "nanosecs": 0},
                                     "boottime": {"secs": 86400 * 3, "nanosecs": 0}}
        c["linux"]["personality"] = {"domain": "LINUX32"}
    p = oci.run("ns2", ["sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; "
                        "cut -d. -f1 /proc/uptime; uname -m"], edit)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines[0] == os.readlink(f"/proc/{pid}/ns/net")
    assert lines[1] == os.readlink(f"/proc/{pid}/ns/ipc")
    assert int(lines[2]) >= 86400 * 3
    assert lines[3] in ("i686", "i386")

    def userns(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 3000000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 3000000, "size": 65536}]
        c["root"]["readonly"] = True
    p = oci.run("ns3", ["sh", "-c", "cat /proc/self/uid_map; id -u"], userns)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "3000000", "65536", "0"]


def test_config_seccomp_profile(oci):
    def edit(c):
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 13},
                         {"names": ["some_future_call"], "action": "SCMP_ACT_ALLOW"}]}
    p = oci.run("s1", ["sh", "-c", "mkdir /tmp/d 2>&1; ls /tmp"], edit)
    assert "Permission denied" in p.stdout, p.stdout + p.stderr
    assert oci("exec", "--help").returncode != 0  # no such option: the grammar holds


def test_hooks_get_the_state_and_can_fail(oci):
    log = oci.dir / "hooks.log"
    hook = oci.dir / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$1 $(cat)\" >> {log}\n")
    hook.chmod(0o755)

    def edit(c):
        c["annotations"] = {"org.example.key": "value"}
        c["hooks"] = {k: [{"path": str(hook), "args": ["hook.sh", k]}]
                      for k in ("prestart", "createRuntime", "createContainer", "poststart",
                                "poststop")}
        # startContainer runs in the container: its path and its log are the container's
        c["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": [
            "sh", "-c", "echo startContainer $(cat) > /tmp/start-hook"]}]
    assert oci.create("h1", ["sleep", "1000"], edit) == 0
    assert oci.state_of("h1")["annotations"] == {"org.example.key": "value"}
    oci("start", "h1", check=True)
    p = oci("exec", "h1", "sh", "-c", "cat /tmp/start-hook; rm /tmp/start-hook")
    assert p.stdout.startswith("startContainer {"), p.stdout + p.stderr
    oci("delete", "--force", "h1", check=True)
    lines = log.read_text().splitlines()
    assert [l.split()[0] for l in lines] == ["prestart", "createRuntime", "createContainer",
                                             "poststart", "poststop"]
    state = json.loads(lines[0].split(" ", 1)[1])
    assert state["id"] == "h1" and state["status"] == "creating" and state["pid"] > 0
    assert state["annotations"] == {"org.example.key": "value"}

    def failing(c):
        c["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    assert oci.create("h2", ["sleep", "1000"], failing) != 0
    assert not (oci.state / "h2").exists() and not cg_exists("h2")

    def slow(c):
        c["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                         "timeout": 1}]}
    t = time.time()
    assert oci.create("h3", ["sleep", "1000"], slow) != 0
    assert time.time() - t < 10
    assert not cg_exists("h3")


def test_create_killed_half_way_is_removed_by_delete_force(oci):
    """SIGKILL create while a hook runs: delete --force leaves no cgroup, process or state."""
    marker = oci.dir / "in-hook"
    hook = oci.dir / "hang.sh"
    hook.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 60\n")
    hook.chmod(0o755)

    def edit(c):
        c["hooks"] = {"createRuntime": [{"path": str(hook)}]}
    b = oci.bundle("x1", ["sleep", "1000"], edit)
    proc = subprocess.Popen([RUNC, "--root", str(oci.state), "create", "--bundle", str(b), "x1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        if marker.exists() and marker.read_text().strip():
            break
        time.sleep(0.05)
    assert marker.exists()
    proc.kill()
    proc.wait()
    os.kill(int(marker.read_text()), signal.SIGKILL)  # the hook, now an orphan
    assert (oci.state / "x1").exists() and cg_exists("x1")
    assert oci("delete", "--force", "x1").returncode == 0
    assert not (oci.state / "x1").exists()
    assert not cg_exists("x1")


BAD_CONFIGS = [
    (lambda c: c.update(ociVersion="2.0.0"), "ociVersion \"2.0.0\""),
    (lambda c: c["root"].update(path="/nonexistent/rootfs"), "root.path"),
    (lambda c: c["process"]["capabilities"].update(bounding=["CAP_FLY"]),
     "unknown capability \"CAP_FLY\""),
    (lambda c: c["process"].update(args=[]), "process.args"),
    (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_WINGS", "soft": 1, "hard": 1}]),
     "RLIMIT_WINGS"),
    (lambda c: c["linux"].update(namespaces=[{"type": "pid"}, {"type": "mount"},
                                             {"type": "galaxy"}]), "\"galaxy\""),
    (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["not_a_syscall"], "action": "SCMP_ACT_ERRNO"}]}), "not_a_syscall"),
    (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_MAYBE"}),
     "SCMP_ACT_MAYBE"),
    (lambda c: c["mounts"].append({"destination": "relative", "type": "tmpfs"}),
     "absolute path"),
    (lambda c: c["linux"].update(sysctl={"kernel.panic": "1"}), "kernel.panic"),
    (lambda c: c["process"].update(terminal=True), "--console-socket"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "user namespace"),
    (lambda c: c["process"].update(oomScoreAdj=5000), "oomScoreAdj"),
]


@pytest.mark.parametrize("edit,words", BAD_CONFIGS)
def test_bad_config_names_the_field(oci, edit, words):
    b = oci.bundle("bad", ["true"], edit)
    p = oci("create", "--bundle", str(b), "bad")
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], p.stderr
    assert not (oci.state / "bad").exists()
    assert not cg_exists("bad")


def test_bad_input_one_line_each(oci):
    b = oci.bundle("b1", ["true"])
    (b / "config.json").write_text("{not json")
    p = oci("create", "--bundle", str(b), "b1")
    assert p.returncode == 2 and "not valid JSON" in p.stderr
    for args, words in [
        (("create", "--bundle", str(oci.dir / "nope"), "b2"), "bundle"),
        (("create", "--bundle", str(b), "bad/id"), "not a container id"),
        (("state", "nosuch"), "does not exist"),
        (("kill", "nosuch"), "does not exist"),
        (("frobnicate",), "unknown command"),
        (("create", "--frob", "x"), "unknown option --frob"),
        (("--log-format", "xml", "list"), "text or json"),
        (("--systemd-cgroup", "create", "--bundle", str(oci.bundle("b3", ["true"])), "b3"),
         "systemd"),
    ]:
        p = oci(*args)
        assert p.returncode != 0 and words in p.stderr, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    b4 = oci.bundle("dup", ["sleep", "100"])
    assert oci.create("dup", ["sleep", "100"]) == 0
    p = oci("create", "--bundle", str(b4), "dup")
    assert p.returncode != 0 and "already exists" in p.stderr


def test_log_json_for_engines(oci):
    log = oci.dir / "log.json"
    p = subprocess.run([RUNC, "--root", str(oci.state), "--log", str(log), "--log-format", "json",
                        "state", "nosuch"], capture_output=True, text=True)
    assert p.returncode != 0
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"]


def test_console_socket_gets_the_pty(oci):
    import array
    import socket
    sock_path = str(oci.dir / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)

    def edit(c):
        c["process"]["terminal"] = True
        c["process"]["consoleSize"] = {"height": 31, "width": 99}
    b = oci.bundle("t1", ["sh", "-c", "tty; stty size; echo done"], edit)
    p = subprocess.Popen([RUNC, "--root", str(oci.state), "create", "--bundle", str(b),
                          "--console-socket", sock_path, "t1"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    srv.settimeout(20)
    conn, _ = srv.accept()
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(4))
    for _lvl, _typ, data in anc:
        fds.frombytes(data[:4])
    assert p.wait(timeout=30) == 0, p.stderr.read()
    master = fds[0]
    oci("start", "t1", check=True)
    out = b""
    deadline = time.time() + 10
    while b"done" not in out and time.time() < deadline:
        try:
            out += os.read(master, 4096)
        except OSError:
            break
    os.close(master)
    conn.close()
    srv.close()
    text = out.decode()
    assert msg.startswith(b"/dev/pts/")
    assert "/dev/pts/0" in text and "31 99" in text


def test_vserver_annotations_token_bucket_and_ipc(oci):
    """org.linux-vserver.limits.*: VServer's [limits] keys, the token bucket among them."""
    def edit(c):
        c["annotations"] = {"org.linux-vserver.limits.cpu.fill-rate": "1",
                            "org.linux-vserver.limits.cpu.interval": "4",
                            "org.linux-vserver.limits.cpu.hard": "yes",
                            "org.linux-vserver.limits.ipc.shmmni": "77"}
    assert oci.create("a1", ["sh", "-c", "cat /proc/sys/kernel/shmmni; sleep 1000"], edit) == 0
    oci("start", "a1", check=True)
    assert oci.output("a1", until="77").strip() == "77"
    quota = cg_file("a1", "cpu", "cpu.cfs_quota_us")
    period = cg_file("a1", "cpu", "cpu.cfs_period_us")
    if quota:
        assert int(quota.read_text()) * 4 == int(period.read_text())
    else:
        q, p = cg_file("a1", "cpu", "cpu.max").read_text().split()
        assert int(q) * 4 == int(p)
    for bad, words in [({"org.linux-vserver.limits.cpu.fill-rate": "fast"}, "cpu.fill-rate"),
                       ({"org.linux-vserver.limits.wings": "2"}, "not a limit"),
                       ({"org.linux-vserver.colour": "blue"}, "not one of vserver's"),
                       ({"org.linux-vserver.limits.disk": "1G"}, "engine's storage")]:
        b = oci.bundle("a2", ["true"], lambda c, bad=bad: c.update(annotations=bad))
        p = oci("create", "--bundle", str(b), "a2")
        assert p.returncode != 0 and words in p.stderr, (bad, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1


def test_tmpcopyup_copies_the_image_into_the_tmpfs(oci):
    def edit(c):
        c["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                            "options": ["tmpcopyup", "mode=755"]})
    p = oci.run("tc1", ["sh", "-c", "grep -c root /etc/passwd; grep ' /etc ' /proc/mounts; "
                        "echo new > /etc/added && cat /etc/added"], edit)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "1" and lines[1].startswith("tmpfs /etc tmpfs") and lines[2] == "new"
    assert not (oci.rootfs / "etc" / "added").exists(), "the tmpfs took the write"


def test_vserver_views_annotation_shows_the_container_its_limits(oci):
    """org.linux-vserver.views=yes: /proc/meminfo and sysinfo(2) from its own cgroup."""
    def edit(c, views):
        c["linux"]["resources"] = {"memory": {"limit": 96 << 20}}
        if views:
            c["annotations"] = {"org.linux-vserver.views": "yes"}
    script = "grep MemTotal /proc/meminfo; free | grep Mem:"
    p = oci.run("v1", ["sh", "-c", script], lambda c: edit(c, True))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[1] == str(96 * 1024), p.stdout  # kB
    assert lines[1].split()[1] == str(96 * 1024), p.stdout  # busybox free: sysinfo(2)
    host = oci.run("v2", ["sh", "-c", script], lambda c: edit(c, False))
    assert host.stdout.splitlines()[0].split()[1] != str(96 * 1024), host.stdout
    # the context id it held is free again, its record gone
    assert not [f for f in os.listdir("/run/vserver-host") if f.startswith("context.49")] \
        if os.path.isdir("/run/vserver-host") else True
    p = oci.run("v3", ["true"], lambda c: c.update(annotations={"org.linux-vserver.views": "maybe"}))
    assert p.returncode != 0 and "not yes or no" in p.stderr


def test_vserver_isolate_annotation_keeps_it_to_its_addresses(oci, workdir):
    """org.linux-vserver.net=isolate: the host's stack, cgroup-BPF keeping the container
    to its addresses (198.18.0.0/15 on lo, as /32s)."""
    import shutil as sh
    from conftest import compile_static
    root = oci.dir / "netroot"
    sh.copytree(oci.rootfs, root, symlinks=True)
    compile_static(Path(__file__).parent / "helpers" / "net.c", root / "bin" / "vs-net")

    def edit(c):
        c["root"]["path"] = str(root)
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"]
                                    if n["type"] != "network"]
        c["annotations"] = {"org.linux-vserver.net": "isolate",
                            "org.linux-vserver.net.addresses": "198.18.0.50/32@lo"}
    assert oci.create("i1", ["sleep", "1000"], edit) == 0
    addrs = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True,
                           text=True).stdout
    assert "198.18.0.50/32" in addrs
    oci("start", "i1", check=True)
    bind = lambda *a: oci("exec", "i1", "/bin/vs-net", "bind", *a).stdout.strip()
    assert bind("0.0.0.0", "81") == "ok 198.18.0.50"
    assert bind("198.18.0.51", "82").startswith("error EADDRNOTAVAIL")
    assert oci("delete", "--force", "i1").returncode == 0
    addrs = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True,
                           text=True).stdout
    assert "198.18.0.50" not in addrs, "delete took its address off the host"
    for bad, words in [({"org.linux-vserver.net": "isolate"}, "needs org.linux-vserver.net"),
                       ({"org.linux-vserver.net": "bridge"}, "is not isolate"),
                       ({"org.linux-vserver.net.addresses": "198.18.0.52/32@lo"},
                        "need org.linux-vserver.net = isolate")]:
        b = oci.bundle("i2", ["true"], lambda c, bad=bad: c.update(annotations=bad))
        p = oci("create", "--bundle", str(b), "i2")
        assert p.returncode != 0 and words in p.stderr, (bad, p.stderr)
    b = oci.bundle("i3", ["true"], lambda c: c.update(annotations={
        "org.linux-vserver.net": "isolate", "org.linux-vserver.net.addresses": "198.18.0.53/32"}))
    p = oci("create", "--bundle", str(b), "i3")
    assert p.returncode != 0 and "remove the network namespace" in p.stderr, p.stderr
