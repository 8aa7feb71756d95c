"""Isolate mode (the host's own stack, kept to the guest's addresses by cgroup-BPF):
every protocol and path that picks a source or reaches another address (item 6).
Addresses: 198.18.0.0/15 as /32s and 2001:db8::/32 as /128s on lo, ours alone."""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import Install, cgroup_dirs
from test_escapes import arm

HOST4, GUEST4, HOST6 = "198.18.7.1", "198.18.7.10", "2001:db8:7::1"


@contextlib.contextmanager
def on_lo(*addrs):
    for a in addrs:
        subprocess.run(["ip", "addr", "add", a, "dev", "lo"], check=True)
    try:
        yield
    finally:
        for a in addrs:
            subprocess.run(["ip", "addr", "del", a, "dev", "lo"], check=False)


class Listener:
    """A host server on @addr that notes the source of what reaches it."""

    def __init__(self, family, kind, addr):
        self.sock = socket.socket(family, kind)
        self.sock.bind((addr, 0))
        self.port = self.sock.getsockname()[1]
        self.kind = kind
        self.seen = []
        if kind == socket.SOCK_STREAM:
            self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                if self.kind == socket.SOCK_STREAM:
                    c, peer = self.sock.accept()
                    c.close()
                else:
                    _, peer = self.sock.recvfrom(100)
                self.seen.append(peer[0])
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def guest(vs):
    vs("build", "a", "--init", "none", "--address", f"{GUEST4}/32@lo", check=True)
    arm(vs.rootfs("a"))
    with on_lo(f"{HOST4}/32", f"{HOST6}/128"):
        vs("start", "a", check=True)
        yield lambda *args: vs.exec_out("a", "/bin/vs-attack net " + " ".join(args)).strip()
        vs("stop", "a", "--timeout", "1")


def test_only_tcp_and_udp_sockets(guest):
    """UDP-Lite has no connect hook at all; SCTP, DCCP, MPTCP have paths the hooks miss."""
    for proto in ("udplite", "sctp", "dccp", "mptcp"):
        assert guest("socket", proto) in ("Operation not permitted",
                                          "Protocol not supported",
                                          "Socket type not supported"), proto
    assert guest("socket", "udplite") == "Operation not permitted"


def test_a_v4_mapped_connect_leaves_from_the_guests_address(guest):
    tcp = Listener(socket.AF_INET, socket.SOCK_STREAM, HOST4)
    try:
        assert guest("mapped", HOST4, str(tcp.port)) == f"from ::ffff:{GUEST4}"
    finally:
        tcp.close()
    assert tcp.seen == [GUEST4]


def test_a_guest_without_ipv6_addresses_reaches_nothing_over_ipv6(guest):
    tcp = Listener(socket.AF_INET6, socket.SOCK_STREAM, HOST6)
    try:
        assert guest("v6", HOST6, str(tcp.port)) == "Network is unreachable"
    finally:
        tcp.close()
    assert tcp.seen == []


def test_a_chosen_source_address_must_be_the_guests(guest):
    udp = Listener(socket.AF_INET, socket.SOCK_DGRAM, HOST4)
    try:
        assert guest("pktinfo", HOST4, str(udp.port), HOST4) == "Operation not permitted"
        assert guest("pktinfo", HOST4, str(udp.port), GUEST4) == "sent"
        time.sleep(0.3)
    finally:
        udp.close()
    assert udp.seen == [GUEST4]


def test_a_cgroup_the_start_did_not_finish_refuses(guest, vs):
    """The isolate programs are loaded once and learn a guest's addresses from its
    cgroup's storage, written after they are attached: until then they refuse
    (fail closed), never let a socket pick the host's addresses."""
    pinned = sorted((vs.root / "run/vserver/bpf").glob("isolate-*/bind4"))
    assert len(pinned) == 1, pinned
    cg2 = next(d for d in cgroup_dirs() if os.path.exists(f"{d}/cgroup.controllers"))
    cg = f"{cg2}/unwritten"
    os.mkdir(cg)
    try:
        for hook, pin in (("bind4", "bind4"), ("connect4", "connect4")):
            subprocess.run(["bpftool", "cgroup", "attach", cg, hook, "pinned",
                            str(pinned[0].parent / pin), "multi"], check=True)
        code = ("import socket\n"
                "for how in ('bind', 'connect'):\n"
                "    s = socket.socket()\n"
                "    try:\n"
                f"        getattr(s, how)(('{HOST4}', 9) if how == 'connect' else ('{HOST4}', 0))\n"
                "        print(how, 'allowed')\n"
                "    except OSError as e:\n"
                "        print(how, e.strerror)\n")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=10,
                           preexec_fn=lambda: open(f"{cg}/cgroup.procs", "w").write("0"))
        assert p.stdout.split("\n")[:2] == ["bind Operation not permitted",
                                            "connect Operation not permitted"], p
    finally:
        os.rmdir(cg)


NET_SRC = Path(__file__).parents[1] / "integration" / "helpers" / "net.c"


def unix_guest(vs, name, *opts):
    vs("build", name, "--init", "none", *opts, check=True)
    arm(vs.rootfs(name))
    subprocess.run(["gcc", "-static", "-O2", "-o", str(vs.rootfs(name) / "bin/vs-net"),
                    str(NET_SRC)], check=True)
    vs("start", name, check=True)


def userve(vs, name, sock):
    vs("exec", name, "--", "/bin/sh", "-c", f"/bin/vs-net userve {sock} > /vs-out/{sock} 2>&1 &",
       check=True)
    end = time.time() + 10
    while time.time() < end and "listening" not in (vs.rootfs(name) / f"vs-out/{sock}").read_text():
        time.sleep(0.05)


def host_uask(vs, sock):
    return subprocess.run([str(vs.rootfs("a") / "bin/vs-net"), "uask", sock], capture_output=True,
                          text=True, timeout=10).stdout.strip()


def test_a_host_client_never_reaches_a_name_a_guest_squatted(vs):
    """Item 7: abstract names are one space per network namespace; a guest binds a
    name the host uses later, and the host's client would talk to the guest."""
    unix_guest(vs, "a")
    userve(vs, "a", "vs-squat")
    assert vs.exec_out("a", "/bin/vs-net uask vs-squat").strip() == "hi"  # its own: fine
    assert host_uask(vs, "vs-squat").startswith("error ECONNREFUSED")
    vs("stop", "a", "--timeout", "1")


def test_one_guests_names_never_push_out_anothers(vs):
    """Item 7: a guest binding a few hundred thousand names evicted another's entries."""
    unix_guest(vs, "a")
    unix_guest(vs, "b")
    userve(vs, "b", "vs-b")  # not used before the churn: an LRU would see it cold
    assert vs.exec_out("a", "/bin/vs-attack unix-churn 300000").strip() == "bound 300000"
    assert vs.exec_out("b", "/bin/vs-net uask vs-b").strip() == "hi"
    assert host_uask(vs, "vs-b").startswith("error ECONNREFUSED")
    vs("stop", "a", "--timeout", "1")
    vs("stop", "b", "--timeout", "1")


def test_another_installations_guest_cannot_fill_our_table_of_names(vs, workdir):
    """Item 7 across installations: to this installation a guest of another one
    is the host, whose binds were noted without a quota.  A churn there filled
    our table, and then none of our guests could note a name: its own server
    refused it.  The host's binds now take no entry."""
    other = Install(workdir / "inst-other-names")
    other.root.mkdir(exist_ok=True)
    try:
        unix_guest(vs, "a")
        unix_guest(other, "o", "--context", "4000")
        assert other.exec_out("o", "/bin/vs-attack unix-churn 300000").strip() == "bound 300000"
        userve(vs, "a", "vs-mine")
        assert vs.exec_out("a", "/bin/vs-net uask vs-mine").strip() == "hi"
        p = other("exec", "o", "--", "/bin/vs-net", "uask", "vs-mine")
        assert p.stdout.startswith("error ECONNREFUSED"), p
        assert host_uask(vs, "vs-mine").startswith("error ECONNREFUSED")
    finally:
        other("delete", "--force", "o")
        shutil.rmtree(other.root, ignore_errors=True)
        vs("stop", "a", "--timeout", "1")


def test_a_guest_that_filled_its_names_gets_them_back_at_its_restart(vs):
    """Where closes go unseen, a churn leaves a guest's quota of names held by
    nothing; its stop drops them (by its count: none to drop costs no pass
    over the table), so after a restart its names work again and stay its own.
    (b keeps running: with the last isolate guest, the whole table goes.)"""
    unix_guest(vs, "b")
    unix_guest(vs, "a")
    assert vs.exec_out("a", "/bin/vs-attack unix-churn 3000").strip() == "bound 3000"
    vs("stop", "a", "--timeout", "1")
    vs("start", "a", check=True)
    userve(vs, "a", "vs-again")
    assert vs.exec_out("a", "/bin/vs-net uask vs-again").strip() == "hi"
    assert host_uask(vs, "vs-again").startswith("error ECONNREFUSED")
    vs("stop", "a", "--timeout", "1")
    vs("stop", "b", "--timeout", "1")


def test_a_stop_drops_what_runs_of_its_context_that_never_stopped_left(vs):
    """An isolate stop removes every entry of its context from the table of guests'
    cgroups (read in batches, deleted sixteen at a time), also those earlier runs left
    that were never stopped (killed with the host's power, say): they no longer keep
    the last stop from unloading the programs. Another context's entries stay."""
    vs("build", "a", "--init", "none", "--context", "3001", check=True)
    vs("build", "b", "--init", "none", "--context", "3002", check=True)
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    table = vs.root / "run/vserver/bpf/vs_guests"
    assert table.exists()

    def put(cgroup_id, ctx):
        hexes = lambda n, size: [f"{b:02x}" for b in n.to_bytes(size, "little")]
        subprocess.run(["bpftool", "map", "update", "pinned", str(table),
                        "key", "hex", *hexes(cgroup_id, 8), "value", "hex", *hexes(ctx, 4)],
                       check=True)

    def contexts():
        out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(table)],
                             capture_output=True, text=True, check=True).stdout
        return sorted(int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
                      for e in json.loads(out))

    for n in range(40):  # cgroup ids no cgroup has: runs that were never stopped
        put(2**62 + n, 3001 if n < 20 else 3002)
    assert contexts() == [3001] * 21 + [3002] * 21
    vs("stop", "a", check=True)
    assert contexts() == [3002] * 21
    vs("stop", "b", check=True)
    bpf = vs.root / "run/vserver/bpf"
    assert not (bpf.exists() and any(bpf.iterdir())), list(bpf.iterdir())


def test_host_check_says_whether_isolate_costs_every_system_call(vs):
    """The unix bind recorder isolate guests need is fentry or a kprobe where the kernel
    allows (they also see a close, and run at a bind alone), else the syscall-exit
    tracepoint, which every system call of the host pays for while it is attached:
    host check names the one this host uses, as the pinned links show it."""
    vs("build", "a", "--init", "none", check=True)
    vs("start", "a", check=True)
    try:
        pins = {p.name for p in (vs.root / "run/vserver/bpf").iterdir()}
        assert "link-unix-bind" in pins, pins
        sees_closes = "link-unix-release" in pins  # fentry and kprobe tiers alone
        j = json.loads(vs("host", "check", "--json", check=True).stdout)["isolate_syscalls"]
        assert j["ok"] is sees_closes, (j, pins)
        if sees_closes:
            assert j["detail"].split(" by ")[1].split(",")[0] in ("fentry", "kprobe"), j
        else:
            assert "every system call" in j["detail"], j
        (line,) = [l for l in vs("host", "check", check=True).stdout.splitlines()
                   if l.startswith("isolate, no cost per system call")]
        assert line.split()[6] == ("yes" if j["ok"] else "no"), line
    finally:
        vs("stop", "a", "--timeout", "1")


def test_another_installations_guest_cannot_take_a_running_guests_address(vs, tmp_path):
    """Who ran with an address was noted per installation, so a guest of another
    installation with the same address in its file started beside ours, and the host's
    clients of our guest's address reached its listener (a port ours had not bound).
    Address notes are host-wide now, as context notes are."""
    other = Install(tmp_path / "inst-addr")
    addr = "198.18.7.31"
    try:
        vs("build", "a", "--context", "1731", "--init", "/bin/sleep 1000000",
           "--address", f"{addr}/32", check=True)
        other("build", "b", "--context", "1732", "--init", "/bin/sleep 1000000",
              "--address", f"{addr}/32", check=True)
        vs("start", "a", check=True)
        p = other("start", "b")
        assert p.returncode == 1 and \
            f"address {addr}/32 is in use by the running guest a of the installation " \
            f"under {vs.root}" in p.stderr, p.stderr
        assert other("status", "b").returncode != 0
        # were it running, this is what it would have served on our guest's address
        srv = other.popen("exec", "b", "--", "/bin/sh", "-c", "echo theirs | nc -l -p 8080",
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        with pytest.raises(OSError):
            socket.create_connection((addr, 8080), timeout=2).recv(10)
        srv.kill()
        srv.wait()
        vs("stop", "a", "--timeout", "1")
        other("start", "b", check=True)  # free once ours stopped
        other("stop", "b", "--timeout", "1")
    finally:
        for name in other.guests():
            other("delete", "--force", name)
        vs("stop", "a", "--timeout", "1")


def test_guests_sharing_an_address_never_run_together(vs):
    """A start checked who held its address, started, and only then noted it: two starts
    at once (start --all starts on every CPU) of guests whose files share an address, as a
    standby clone's does, both passed the check, and both ran with it.  The check and the
    note are one step now, under a host-wide lock."""
    for n, ctx in (("s0", 1740), ("s1", 1741)):
        vs("build", n, "--context", str(ctx), "--init", "/bin/sleep 1000000",
           "--address", "198.18.7.41/32", check=True)
    try:
        for _ in range(5):
            starts = [vs.popen("start", n, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True) for n in ("s0", "s1")]
            errs = [p.communicate(timeout=60)[1] for p in starts]
            running = [n for n in ("s0", "s1") if vs("status", n).returncode == 0]
            assert len(running) == 1, (running, errs)
            assert sum("is in use by the running guest" in e for e in errs) == 1, errs
            vs("stop", "--all", "--timeout", "0")
    finally:
        vs("stop", "--all", "--timeout", "0")
