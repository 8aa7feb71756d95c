"""Networking: isolate (the host's stack, cgroup-BPF), netns (veth on a bridge),
bad input.  Addresses are from the benchmarking range (198.18.0.0/15, as /32s,
2001:db8::/32) on lo, or on a bridge and veth pairs of the test's own; no
packet leaves this machine."""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import VSERVER, cgroup_dirs, compile_static

NET_SRC = Path(__file__).parent / "helpers" / "net.c"


@pytest.fixture(scope="session")
def vsnet(workdir):
    out = workdir / "vs-net"
    return compile_static(NET_SRC, out)


def build(vs, vsnet, name, *opts):
    vs("build", name, "--init", "none", *opts, check=True)
    shutil.copy2(vsnet, vs.rootfs(name) / "bin" / "vs-net")


def serve(vs, name, proto, addr, port):
    """A vs-net server in guest @name; returns the address it says it bound."""
    out = f"/tmp/serve-{proto}-{port}"
    vs("exec", name, "--", "/bin/sh", "-c",
       f"/bin/vs-net serve {proto} {addr} {port} > {out} 2>&1 &", check=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        text = vs("exec", name, "--", "/bin/cat", out).stdout
        if "listening" in text or "error" in text:
            return text.strip()
        time.sleep(0.05)
    raise AssertionError(f"no server in {name}")


def ask(vs, name, proto, addr, port):
    """vs-net ask from guest @name (None: from the host); its output."""
    if name is None:
        p = subprocess.run([str(vs.vsnet), "ask", proto, addr, str(port)], capture_output=True,
                           text=True, timeout=30)
    else:
        p = vs("exec", name, "--", "/bin/vs-net", "ask", proto, addr, str(port), timeout=30)
    return p.stdout.strip()


def in_guest(vs, name, *args):
    return vs("exec", name, "--", "/bin/vs-net", *args, timeout=30).stdout.strip()


def host_addrs():
    return subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True,
                          check=True).stdout


def ours_left():
    """Addresses vserver added (IFA_PROTO 0x56) still on the host."""
    return [l for l in host_addrs().splitlines() if "proto 0x56" in l or "proto 86" in l]


@pytest.fixture
def net(vs, vsnet):
    vs.vsnet = vsnet
    yield vs
    for name in vs.guests():
        vs("stop", name)
    assert ours_left() == [], "addresses left on the host"


def test_isolate_wildcard_server_answers_on_the_guests_addresses_only(net):
    vs = net
    build(vs, vs.vsnet, "a", "--address", "198.18.0.10/32@lo", "--address", "198.18.0.11/32@lo",
          "--address", "2001:db8::10/128@lo")
    build(vs, vs.vsnet, "b", "--address", "198.18.0.20/32@lo")
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    # start put the addresses on lo
    addrs = host_addrs()
    for a in ("198.18.0.10/32", "198.18.0.11/32", "2001:db8::10/128", "198.18.0.20/32"):
        assert a in addrs, a

    assert serve(vs, "a", "tcp", "0.0.0.0", 80) == "listening 198.18.0.10"
    assert serve(vs, "a", "tcp", "::", 80) == "listening 2001:db8::10"
    # on every address of A, from the host, IPv4 and IPv6
    assert ask(vs, None, "tcp", "198.18.0.10", 80) == "from 198.18.0.10 to 198.18.0.10"
    assert ask(vs, None, "tcp", "198.18.0.11", 80).endswith("to 198.18.0.11")
    assert ask(vs, None, "tcp", "2001:db8::10", 80).endswith("to 2001:db8::10")
    # and on 127.0.0.1 from inside A
    assert ask(vs, "a", "tcp", "127.0.0.1", 80) == "from 127.0.0.1 to 127.0.0.1"
    # not on B's address, nor on the host's loopback
    assert ask(vs, None, "tcp", "198.18.0.20", 80).startswith("error ECONNREFUSED")
    assert ask(vs, None, "tcp", "127.0.0.1", 80).startswith("error ECONNREFUSED")
    # B listening on 0.0.0.0:80 too: both coexist, each on its own addresses
    assert serve(vs, "b", "tcp", "0.0.0.0", 80) == "listening 198.18.0.20"
    assert ask(vs, None, "tcp", "198.18.0.20", 80) == "from 198.18.0.20 to 198.18.0.20"
    assert ask(vs, None, "tcp", "198.18.0.11", 80).endswith("to 198.18.0.11")
    # B cannot bind A's address, nor a host address; A its own, yes
    assert in_guest(vs, "b", "bind", "198.18.0.10", "81").startswith("error EADDRNOTAVAIL")
    assert in_guest(vs, "b", "bind", "2001:db8::10", "81").startswith("error EADDRNOTAVAIL")
    # [::] in a guest without IPv6: dual-stack, on its IPv4 address (issue 15)
    assert in_guest(vs, "b", "bind", "::", "81") == "ok ::ffff:198.18.0.20"
    assert in_guest(vs, "a", "bind", "198.18.0.11", "81") == "ok 198.18.0.11"
    # UDP: a wildcard socket lives on the first address; 127.0.0.1 reaches it
    serve(vs, "a", "udp", "0.0.0.0", 53)
    assert ask(vs, "a", "udp", "127.0.0.1", 53) == "from 127.0.0.1"
    assert ask(vs, None, "udp", "198.18.0.10", 53).startswith("from ")

    vs("stop", "a", check=True)
    addrs = host_addrs()
    assert "198.18.0.10/32" not in addrs and "2001:db8::10/128" not in addrs
    assert "198.18.0.20/32" in addrs  # B's stays while B runs


def test_isolate_connections_leave_from_the_guests_address(net):
    vs = net
    subprocess.run(["ip", "addr", "add", "198.18.0.1/32", "dev", "lo"], check=True)
    srv = subprocess.Popen([str(vs.vsnet), "serve", "tcp", "198.18.0.1", "7000"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "listening 198.18.0.1"
        build(vs, vs.vsnet, "a", "--address", "198.18.0.10/32@lo")
        vs("start", "a", check=True)
        assert ask(vs, "a", "tcp", "198.18.0.1", 7000) == "from 198.18.0.10 to 198.18.0.1"
        # a guest cannot take the host's own address
        build(vs, vs.vsnet, "h", "--address", "198.18.0.1/32@lo")
        p = vs("start", "h")
        assert p.returncode != 0
        assert "198.18.0.1/32@lo is the host's own (on lo)" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
    finally:
        srv.kill()
        srv.wait()
        subprocess.run(["ip", "addr", "del", "198.18.0.1/32", "dev", "lo"], check=True)


def test_isolate_loopback_is_the_guests_own(net):
    vs = net
    host = subprocess.Popen([str(vs.vsnet), "serve", "tcp", "127.0.0.1", "7001"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "listening 127.0.0.1"
        build(vs, vs.vsnet, "a")
        build(vs, vs.vsnet, "b")
        vs("start", "a", check=True)
        vs("start", "b", check=True)
        # the host's 127.0.0.1:7001 is not reachable from a guest
        assert ask(vs, "a", "tcp", "127.0.0.1", 7001).startswith("error ECONNREFUSED")
        # B's 127.0.0.1 server is B's alone; A has one on the same port
        assert serve(vs, "b", "tcp", "127.0.0.1", 7002) == "listening 127.0.0.1"
        assert ask(vs, "a", "tcp", "127.0.0.1", 7002).startswith("error ECONNREFUSED")
        assert ask(vs, "b", "tcp", "127.0.0.1", 7002) == "from 127.0.0.1 to 127.0.0.1"
        # nor can a guest name another's lback (127.1.X.Y): all of 127/8 is its own
        a_ctx = json.loads(vs("status", "a", "--json", check=True).stdout)["context"]
        b_ctx = json.loads(vs("status", "b", "--json", check=True).stdout)["context"]
        b_lback = f"127.1.{b_ctx >> 8}.{b_ctx & 255}"
        assert ask(vs, "a", "tcp", b_lback, 7002).startswith("error ECONNREFUSED")
        assert serve(vs, "a", "tcp", "127.0.0.1", 7002) == "listening 127.0.0.1"
        assert ask(vs, "a", "tcp", "127.0.0.1", 7002) == "from 127.0.0.1 to 127.0.0.1"
        assert ask(vs, "a", "tcp", b_lback, 7002) == "from 127.0.0.1 to 127.0.0.1"  # A's own
        # the host (trusted) reaches each guest's loopback by its lback
        assert ask(vs, None, "tcp", b_lback, 7002) == f"from 127.0.0.1 to 127.0.0.1"
        assert a_ctx != b_ctx
    finally:
        host.kill()
        host.wait()


def test_isolate_no_raw_sockets_no_net_admin(net):
    vs = net
    build(vs, vs.vsnet, "a", "--address", "198.18.0.10/32@lo")
    vs("start", "a", check=True)
    assert in_guest(vs, "a", "raw").startswith("error EPERM")
    # the host's routes and addresses stay the host's: the guest's root holds NET_ADMIN
    # only over its own user namespace, which the host's network namespace is not
    # (without one, it gets no NET_ADMIN or NET_RAW at all: tests/security)
    p = vs("exec", "a", "--", "/bin/sh", "-c", "ip addr add 198.18.0.99/32 dev lo")
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr
    assert "198.18.0.99" not in host_addrs()
    p = vs("exec", "a", "--", "/bin/sh", "-c", "ip route add 198.51.100.0/24 dev lo")
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr
    # and no guest file can grant them in this mode
    p = vs("build", "x", "--no-userns", "--set", "security.capabilities.add=NET_ADMIN")
    assert p.returncode == 2 and "NET_ADMIN and NET_RAW would act on the host's own" in p.stderr


def test_isolate_abstract_unix_sockets(net):
    vs = net
    host = subprocess.Popen([str(vs.vsnet), "userve", "vs-test-host"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert host.stdout.readline().strip() == "listening"
        build(vs, vs.vsnet, "a")
        build(vs, vs.vsnet, "b")
        vs("start", "a", check=True)
        vs("start", "b", check=True)
        vs("exec", "b", "--", "/bin/sh", "-c", "/bin/vs-net userve vs-test-b > /tmp/u 2>&1 &",
           check=True)
        vs("exec", "a", "--", "/bin/sh", "-c", "/bin/vs-net userve vs-test-a > /tmp/u 2>&1 &",
           check=True)
        time.sleep(0.3)
        # A's own abstract socket works inside A
        assert in_guest(vs, "a", "uask", "vs-test-a") == "hi"
        # the host's and B's do not, by connect or by datagram
        assert in_guest(vs, "a", "uask", "vs-test-host").startswith("error ECONNREFUSED")
        assert in_guest(vs, "a", "uask", "vs-test-b").startswith("error ECONNREFUSED")
        assert in_guest(vs, "a", "udgram", "vs-test-host").startswith("error ECONNREFUSED")
        assert in_guest(vs, "b", "uask", "vs-test-b") == "hi"
        # the host still reaches its own
        p = subprocess.run([str(vs.vsnet), "uask", "vs-test-host"], capture_output=True,
                           text=True, timeout=10)
        assert p.stdout.strip() == "hi"
    finally:
        host.kill()
        host.wait()


@pytest.mark.parametrize("hint", ["0", "not a tier\n"])
def test_unix_recorder_hint_is_only_a_hint(net, hint):
    """The unix bind recorder that worked is remembered host-wide and tried first;
    a hint naming one this kernel refuses, or garbage, costs only the retry."""
    vs = net
    note = Path("/run/vserver-host/bpf-unix-recorder")
    saved = note.read_text() if note.exists() else None
    note.parent.mkdir(exist_ok=True)
    note.write_text(hint)
    try:
        build(vs, vs.vsnet, "a")
        build(vs, vs.vsnet, "b")
        vs("start", "a", check=True)  # the first isolate guest: loads the shared programs
        vs("start", "b", check=True)
        vs("exec", "b", "--", "/bin/sh", "-c", "/bin/vs-net userve vs-test-hb > /tmp/u 2>&1 &",
           check=True)
        time.sleep(0.3)
        assert in_guest(vs, "b", "uask", "vs-test-hb") == "hi"
        assert in_guest(vs, "a", "uask", "vs-test-hb").startswith("error ECONNREFUSED")
        assert note.read_text().strip() in ("0", "1", "2")
    finally:
        vs("stop", "--all", "--timeout", "0")
        if saved is None:
            note.unlink(missing_ok=True)
        else:
            note.write_text(saved)


def attached_programs(cgdir):
    """{attach type: [program names]} on one cgroup2 directory, from bpftool."""
    out = subprocess.run(["bpftool", "-j", "cgroup", "show", cgdir], capture_output=True,
                         text=True, check=True).stdout
    progs = {}
    for p in json.loads(out or "[]"):
        progs.setdefault(p["attach_type"], []).append((p["id"], p["name"]))
    return progs


def test_stats_count_the_bytes_a_test_sent(net):
    vs = net
    build(vs, vs.vsnet, "a", "--address", "198.18.0.10/32@lo")
    build(vs, vs.vsnet, "b", "--address", "198.18.0.11/32@lo")
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    serve(vs, "a", "tcp", "0.0.0.0", 9000)
    before = json.loads(vs("stats", "a", "--json", check=True).stdout)
    before_b = json.loads(vs("stats", "b", "--json", check=True).stdout)
    size = 4 * 1024 * 1024
    p = subprocess.run([str(vs.vsnet), "send", "198.18.0.10", "9000", str(size)],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout.strip() == f"sent {size}"
    after = json.loads(vs("stats", "a", "--json", check=True).stdout)
    rx = after["net_rx_bytes"] - before["net_rx_bytes"]
    # the payload, plus headers: at most a few percent more
    assert size <= rx <= size * 1.1, rx
    assert after["net_rx_packets"] > before["net_rx_packets"]
    assert after["net_tx_packets"] > before["net_tx_packets"]  # the ACKs and the reply
    text = vs("stats", "a", check=True).stdout
    assert "net        in " in text
    # the programs are loaded once and shared; each guest's counters are its own
    after_b = json.loads(vs("stats", "b", "--json", check=True).stdout)
    assert after_b["net_rx_bytes"] - before_b["net_rx_bytes"] < size / 100
    cg2 = next(d for d in cgroup_dirs() if os.path.exists(f"{d}/cgroup.controllers"))
    pa, pb = attached_programs(f"{cg2}/a"), attached_programs(f"{cg2}/b")
    names = {name for progs in pa.values() for _id, name in progs}
    # (Debian 12's bpftool does not list the unix hooks, attach types 49 and 50)
    assert {"vs_bind4", "vs_bind6", "vs_connect4", "vs_connect6", "vs_sendmsg4", "vs_sendmsg6",
            "vs_sock_create", "vs_sockops", "vs_ingress", "vs_egress"} <= names, names
    assert pa == pb, (pa, pb)


BRIDGE = f"vst{os.getpid() % 100000}"


@pytest.fixture
def bridge(net):
    (net.root / "etc/vserver").mkdir(parents=True, exist_ok=True)
    (net.root / "etc/vserver/vserver.conf").write_text(f"[host]\nbridge = {BRIDGE}\n")
    yield BRIDGE
    for name in net.guests():
        net("stop", name)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def test_netns_guests_talk_over_the_bridge_with_their_own_routes(net, bridge):
    vs = net
    build(vs, vs.vsnet, "a", "--net", "netns", "--address", "10.213.7.2/24",
          "--address", "2001:db8:7::2/64", "--gateway", "10.213.7.1")
    build(vs, vs.vsnet, "b", "--net", "netns", "--address", "10.213.7.3/24",
          "--address", "2001:db8:7::3/64")
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    # the bridge was made, the host ends of the veths are in it
    links = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                           text=True, check=True).stdout
    assert links.count("master " + bridge) == 2, links
    # a bridge port has no IPv6 address of its own: nothing of it floods the other guests,
    # and the host's table holds no link-local route per guest
    for end in [l.split(":")[1].strip().split("@")[0] for l in links.splitlines()]:
        v6 = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", end], capture_output=True,
                            text=True, check=True).stdout
        assert v6 == "", (end, v6)
    # each guest has eth0 with its address, and its own routing table
    assert "10.213.7.2/24" in vs.exec_out("a", "ip -o addr show dev eth0")
    assert "default via 10.213.7.1" in vs.exec_out("a", "ip route")
    assert "default" not in vs.exec_out("b", "ip route")
    # over the bridge
    assert serve(vs, "b", "tcp", "0.0.0.0", 80) == "listening 0.0.0.0"
    assert ask(vs, "a", "tcp", "10.213.7.3", 80) == "from 10.213.7.2 to 10.213.7.3"
    # and over IPv6, the guests' own link-local neighbour discovery across it
    assert serve(vs, "b", "tcp", "::", 81) == "listening ::"
    assert ask(vs, "a", "tcp", "2001:db8:7::3", 81) == "from 2001:db8:7::2 to 2001:db8:7::3"
    # in its own user namespace, NET_ADMIN is over its own stack only: it may add a
    # route there, and the host's table does not change (without a user namespace the
    # guest gets no NET_ADMIN at all: tests/security)
    host_routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    p = vs("exec", "a", "--", "ip", "route", "add", "198.51.100.0/24", "via", "10.213.7.1")
    assert p.returncode == 0, p.stderr
    assert "198.51.100.0/24" in vs.exec_out("a", "ip route")
    assert subprocess.run(["ip", "route"], capture_output=True, text=True).stdout == host_routes
    # its traffic is counted from the veth
    s = json.loads(vs("stats", "a", "--json", check=True).stdout)
    assert s["net_tx_packets"] > 0 and s["net_rx_packets"] > 0
    vs("stop", "a", check=True)
    links = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                           text=True, check=True).stdout
    assert links.count("master " + bridge) == 1, links  # A's veth went with its namespace


def icmp6_types_seen(dev, seconds):
    """The ICMPv6 types of the IPv6 packets @dev receives in @seconds (a raw capture)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
    s.bind((dev, 0))
    s.settimeout(0.2)
    seen, end = [], time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            try:
                f = s.recv(2048)
            except TimeoutError:
                continue
            # Ethernet (14), IPv6 (40): next header 58, or a hop-by-hop header (0) before it
            nh, off = f[14 + 6], 14 + 40
            if nh == 0:
                nh, off = f[off], off + (f[off + 1] + 1) * 8
            if nh == 58:
                seen.append(f[off])
    finally:
        s.close()
    return seen


def test_netns_guest_asks_for_no_router(net, bridge):
    """Its routes are the guest file's: no router solicitation, which the bridge floods to
    every guest and the kernel repeats for an hour."""
    vs = net
    build(vs, vs.vsnet, "a", "--net", "netns", "--address", "10.213.8.2/24")
    build(vs, vs.vsnet, "b", "--net", "netns", "--address", "10.213.8.3/24")
    vs("start", "a", check=True)  # the bridge now exists: capture on it while b comes up
    got = []
    t = threading.Thread(target=lambda: got.extend(icmp6_types_seen(bridge, 6)))
    t.start()
    time.sleep(0.3)
    vs("start", "b", check=True)
    t.join()
    # b announced itself (listener reports 131/143, neighbour solicitation 135): the capture works
    assert {131, 143, 135} & set(got), got
    assert 133 not in got, got  # no router solicitation
    assert vs.exec_out("b", "cat /proc/sys/net/ipv6/conf/eth0/router_solicitations").strip() == "0"


def test_net_none_and_host_modes(net):
    vs = net
    build(vs, vs.vsnet, "n", "--net", "none")
    build(vs, vs.vsnet, "h", "--net", "host")
    vs("start", "n", check=True)
    vs("start", "h", check=True)
    assert vs.exec_out("n", "ip -o link | wc -l").strip() == "1"
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert vs.exec_out("h", "ip -o link | wc -l").strip() == str(len(host_links.splitlines()))


@pytest.mark.parametrize("userns", ["yes", "no"])
def test_own_netns_users_may_ping(net, userns):
    """An own network stack lets every group the guest has open ICMP datagram
    sockets (ping without NET_RAW); in a user namespace that is the groups it
    maps: 2147483647 is not one, and the whole range was refused."""
    vs = net
    build(vs, vs.vsnet, "p", "--net", "none")
    vs("set", "p", "--save", f"security.userns={userns}", check=True)
    vs("start", "p", check=True)
    last = "65535" if userns == "yes" else "2147483647"
    assert vs.exec_out("p", "cat /proc/sys/net/ipv4/ping_group_range").split() == ["0", last]
    assert in_guest(vs, "p", "ping", "1000") == "ok"


@pytest.mark.parametrize("opts,message", [
    (["--address", "198.18.0.300/24"], "not an IPv4 or IPv6 address"),
    (["--address", "198.18.0.10/33"], "the prefix length is 0 to 32"),
    (["--address", "127.0.0.2"], "127.0.0.0/8 is loopback"),
    (["--address", "198.18.0.10@bad/dev"], "not an interface name"),
    (["--address", "0.0.0.0/0"], "a prefix length of 0"),
    (["--net", "none", "--address", "198.18.0.10/32"], "addresses need mode isolate or netns"),
    (["--gateway", "198.18.0.1"], "gateways and routes need mode netns"),
    (["--net", "netns", "--address", "198.18.0.10/24@eth1"], "drop the @device"),
    (["--net", "bridge"], "is not a network mode"),
    (["--address", "198.18.0.10", "--address", "198.18.0.10/24"], "is given twice"),
    # issue 15: a /24 on lo took the whole /24 off the network, silently
    (["--address", "198.18.0.10/24"], "address 198.18.0.10/24 on lo would make this host answer "
     "all of its /24 itself, cutting it off from that network: say 198.18.0.10/32, or put it "
     "on the interface of that network (198.18.0.10/24@eth0)"),
    (["--address", "2001:db8::10/64@lo"], "say 2001:db8::10/128"),
    (["--address", "198.18.0.10/32@nosuchdev"], "this host has no interface nosuchdev"),
], ids=["ip", "prefix", "loopback", "device", "any", "mode-none", "gateway-isolate",
        "netns-device", "mode", "twice", "lo-prefix", "lo-prefix6", "no-device"])
def test_bad_network_input(net, opts, message):
    p = net("build", "x", *opts)
    assert p.returncode == 2, p
    assert message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert "x" not in net.guests()


def test_an_address_in_use_by_a_running_guest(net):
    vs = net
    build(vs, vs.vsnet, "a", "--address", "198.18.0.10/32@lo")
    build(vs, vs.vsnet, "b", "--address", "198.18.0.10/32@lo")
    vs("start", "a", check=True)
    p = vs("start", "b")
    assert p.returncode != 0
    assert "address 198.18.0.10/32@lo is in use by the running guest a" in p.stderr, p.stderr
    assert vs("status", "b").returncode != 0
    vs("stop", "a", check=True)
    vs("start", "b", check=True)
    # a guest that died without a stop holds its address no longer
    vs("stop", "b", check=True)
    vs("start", "a", check=True)
    init = json.loads(vs("status", "a", "--json", check=True).stdout)["init_pid"]
    os.kill(init, 9)
    deadline = time.time() + 10
    while vs("status", "a").returncode == 0 and time.time() < deadline:
        time.sleep(0.05)
    vs("start", "b", check=True)
    # a netns guest's address is checked the same way
    build(vs, vs.vsnet, "c", "--net", "netns", "--address", "10.213.8.2/24")
    build(vs, vs.vsnet, "d", "--net", "netns", "--address", "10.213.8.2/24")
    vs("start", "c", check=True)
    p = vs("start", "d")
    assert "address 10.213.8.2/24 is in use by the running guest c" in p.stderr, p.stderr


def test_stop_and_delete_work_from_what_the_guest_started_with(net):
    """Issue 15: stop refused a running guest whose file was broken, and delete --force
    left its entry in the shared BPF map (the shared programs and their mount stayed)."""
    vs = net
    build(vs, vs.vsnet, "a", "--address", "198.18.0.40/32@lo")
    vs("start", "a", check=True)
    assert "198.18.0.40/32" in host_addrs()
    # its file edited while it runs: stop undoes what it started with
    conf = vs.conf("a")
    conf.write_text(conf.read_text().replace("198.18.0.40/32@lo", "198.18.0.41/32@lo"))
    vs("stop", "a", check=True)
    assert "198.18.0.40" not in host_addrs()
    vs("start", "a", check=True)
    assert "198.18.0.41/32" in host_addrs()
    # now broken: stop and delete still work, and leave nothing behind
    conf.write_text(conf.read_text() + "[net]\nthis is not ini\n")
    assert vs("start", "a").returncode == 1
    vs("stop", "a", check=True)
    assert "198.18.0.41" not in host_addrs()
    assert not any(os.path.exists(d) for d in vs.cgroup("a"))
    conf.write_text(conf.read_text().replace("[net]\nthis is not ini\n", ""))
    vs("start", "a", check=True)
    conf.write_text(conf.read_text() + "[net]\nthis is not ini\n")
    vs("delete", "--force", "a", check=True)
    assert "198.18.0.41" not in host_addrs()
    bpf = vs.root / "run/vserver/bpf"
    assert not (bpf.exists() and any(bpf.iterdir())), list(bpf.iterdir())
    assert not [l for l in open("/proc/self/mountinfo") if str(bpf) in l]


def fetch(url):
    for _ in range(50):
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            time.sleep(0.1)
    return None


def test_a_dual_stack_wildcard_server_answers_on_the_guests_addresses(net):
    """Issue 15: busybox httpd -p 8080 (it binds [::], as nginx, Apache and sshd do)
    failed with "Cannot assign requested address" in a guest with only IPv4."""
    vs = net
    build(vs, vs.vsnet, "a", "--address", "198.18.0.50/32@lo", "--address", "198.18.0.51/32@lo")
    build(vs, vs.vsnet, "b", "--address", "198.18.0.52/32@lo", "--address", "2001:db8::52/128@lo")
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    for g, port in (("a", 8080), ("b", 8081)):
        vs.exec_out(g, f"mkdir -p /www && echo {g}-answers > /www/index.html && "
                       f"httpd -p {port} -h /www")
    # a v4-only guest's [::] listener: each of its IPv4 addresses
    assert fetch("http://198.18.0.50:8080/") == "a-answers\n"
    assert fetch("http://198.18.0.51:8080/") == "a-answers\n"
    # a v4+v6 guest's: all of its addresses, of both families
    assert fetch("http://198.18.0.52:8081/") == "b-answers\n"
    assert fetch("http://[2001:db8::52]:8081/") == "b-answers\n"
    # and never another guest's address
    assert fetch("http://198.18.0.52:8080/") is None
    # an IPV6_V6ONLY [::] socket: the guest's IPv6 address, refused without one
    assert serve(vs, "b", "tcp", "::", 9000) == "listening 2001:db8::52"
    assert serve(vs, "a", "tcp", "::", 9000).startswith("error")
    vs("stop", "a", check=True)
    vs("stop", "b", check=True)


@pytest.fixture
def upstream(vsnet):
    """A host beyond this one: a network namespace of the test's own behind a veth,
    198.19.77.2, with no route back to guests' private addresses."""
    ns, host, peer = "vs-test-up", "vs-nat-h", "vs-nat-u"
    ip = ["ip"]
    subprocess.run(ip + ["netns", "add", ns], check=True)
    try:
        subprocess.run(ip + ["link", "add", host, "type", "veth", "peer", "name", peer],
                       check=True)
        subprocess.run(ip + ["link", "set", peer, "netns", ns], check=True)
        subprocess.run(ip + ["addr", "add", "198.19.77.1/30", "dev", host], check=True)
        subprocess.run(ip + ["link", "set", host, "up"], check=True)
        subprocess.run(ip + ["-n", ns, "addr", "add", "198.19.77.2/30", "dev", peer], check=True)
        subprocess.run(ip + ["-n", ns, "link", "set", peer, "up"], check=True)
        srv = subprocess.Popen(["ip", "netns", "exec", ns, str(vsnet), "serve", "udp",
                                "198.19.77.2", "53"], stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().startswith("listening")
        yield "198.19.77.2"
        srv.kill()
        srv.wait()
    finally:
        subprocess.run(ip + ["link", "del", host], capture_output=True)
        subprocess.run(ip + ["netns", "del", ns], capture_output=True)


def nft_tables():
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def test_nat_lets_a_private_isolate_guest_out(net, upstream):
    """Issue 15: an isolate guest with a private address reached nothing beyond the host."""
    vs = net
    assert "vserver" not in nft_tables()
    build(vs, vs.vsnet, "a", "--address", "198.18.77.10/32@lo")
    build(vs, vs.vsnet, "b", "--address", "198.18.77.11/32@lo", "--set", "net.nat=yes")
    p = vs("start", "a", check=True)
    assert "note: a has a private address (198.18.77.10/32@lo): what it sends beyond this " \
        "host gets no answer (say [net] nat = yes: vserver set a net.nat=yes --save)" in p.stderr
    p = vs("start", "b", check=True)
    assert "private address" not in p.stderr
    # without nat the answer has no way back to 198.18.77.10
    assert ask(vs, "a", "udp", upstream, 53).startswith("error")
    # with it, the guest leaves with the host's address on that link
    assert ask(vs, "b", "udp", upstream, 53) == "from 198.19.77.1"
    assert "table ip vserver" in nft_tables()
    vs("stop", "b", check=True)
    # the last nat guest gone: the host's ruleset as it was
    assert "vserver" not in nft_tables()
    p = vs("build", "c", "--net", "host", "--set", "net.nat=yes")
    assert p.returncode == 2 and "nat = yes is for mode isolate or netns" in p.stderr


def test_ipv6_loopback_is_the_guests_own(net):
    """Issue 15: ::1 was refused in isolate guests; it works like 127.0.0.1 (the guest's
    own loopback, never the host's or another guest's)."""
    vs = net
    build(vs, vs.vsnet, "a", "--address", "198.18.0.70/32@lo")
    build(vs, vs.vsnet, "b", "--address", "198.18.0.71/32@lo")
    vs("start", "a", check=True)
    vs("start", "b", check=True)
    assert serve(vs, "a", "tcp", "127.0.0.1", 7000) == "listening 127.0.0.1"
    assert ask(vs, "a", "tcp", "::1", 7000) == "from 127.0.0.1 to 127.0.0.1"
    assert ask(vs, "b", "tcp", "::1", 7000).startswith("error")  # b's loopback: nobody
    assert in_guest(vs, "a", "bind", "::1", "7001").startswith("ok ::ffff:127.")
    serve(vs, "a", "udp", "127.0.0.1", 7002)
    assert ask(vs, "a", "udp", "::1", 7002) == "from 127.0.0.1"
    vs("stop", "a", check=True)
    vs("stop", "b", check=True)


@pytest.fixture
def nat_host(vsnet):
    """A host of the test's own: network namespace H (vserver runs there through
    nsenter, so its bridge, nftables tables and forwarding switch are H's), and
    beyond it an upstream namespace U (198.19.79.2) with no route back to the
    bridge's network."""
    h, u = f"vs-test-h{os.getpid() % 100000}", f"vs-test-u{os.getpid() % 100000}"
    ip = ["ip"]
    subprocess.run(ip + ["netns", "add", h], check=True)
    subprocess.run(ip + ["netns", "add", u], check=True)
    srv = None
    try:
        subprocess.run(ip + ["-n", h, "link", "set", "lo", "up"], check=True)
        subprocess.run(ip + ["-n", h, "link", "add", "up0", "type", "veth", "peer", "name",
                             "down0", "netns", u], check=True)
        subprocess.run(ip + ["-n", h, "addr", "add", "198.19.79.1/30", "dev", "up0"], check=True)
        subprocess.run(ip + ["-n", h, "link", "set", "up0", "up"], check=True)
        subprocess.run(ip + ["-n", u, "addr", "add", "198.19.79.2/30", "dev", "down0"],
                       check=True)
        subprocess.run(ip + ["-n", u, "link", "set", "down0", "up"], check=True)
        srv = subprocess.Popen(["ip", "netns", "exec", u, str(vsnet), "serve", "udp",
                                "198.19.79.2", "53"], stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().startswith("listening")
        yield h
    finally:
        if srv:
            srv.kill()
            srv.wait()
        subprocess.run(ip + ["netns", "del", u], capture_output=True)
        subprocess.run(ip + ["netns", "del", h], capture_output=True)


def test_bridge_nat_lets_netns_guests_out(net, nat_host):
    """Issue 15: a netns guest on the bridge reached nothing beyond the host.  With the
    host settings' bridge-address and bridge-nat its traffic is forwarded and masqueraded,
    forwarding is turned on for it alone, and all of it is undone with the last guest."""
    vs = net
    in_h = ["nsenter", f"--net=/run/netns/{nat_host}"]

    def hvs(*args):
        return subprocess.run(in_h + [VSERVER, *args], env=vs.env, capture_output=True,
                              text=True, timeout=60)

    def h(*cmd):
        return subprocess.run(in_h + list(cmd), capture_output=True, text=True).stdout

    def forwarding():
        return h("cat", "/proc/sys/net/ipv4/ip_forward").strip()

    host_tables = nft_tables()
    vs.host_conf("[host]\nbridge = vsbr-nat\nbridge-address = 10.213.9.1/24\n"
                 "bridge-nat = yes\n")
    build(vs, vs.vsnet, "a", "--net", "netns", "--address", "10.213.9.2/24")
    build(vs, vs.vsnet, "b", "--net", "netns", "--address", "10.213.9.3/24",
          "--set", "net.nat=no")
    assert forwarding() == "0"
    p = hvs("start", "a")
    assert p.returncode == 0, p.stderr
    assert "note" not in p.stderr, p.stderr
    p = hvs("start", "b")
    assert p.returncode == 0, p.stderr
    assert "b has a private address (10.213.9.3/24)" in p.stderr, p.stderr
    # the bridge has its address, and is the gateway of guests in its network
    assert "10.213.9.1/24" in h("ip", "-o", "addr", "show", "dev", "vsbr-nat")
    assert "default via 10.213.9.1" in vs.exec_out("a", "ip route")
    # a leaves with H's address on the upstream link; b's traffic is not forwarded
    assert ask(vs, "a", "udp", "198.19.79.2", 53) == "from 198.19.79.1"
    assert ask(vs, "b", "udp", "198.19.79.2", 53).startswith("error")
    # the guests still talk over the bridge
    assert serve(vs, "b", "tcp", "0.0.0.0", 80) == "listening 0.0.0.0"
    assert ask(vs, "a", "tcp", "10.213.9.3", 80) == "from 10.213.9.2 to 10.213.9.3"
    assert forwarding() == "1"
    assert "vserver turned forwarding on" in h("nft", "list", "table", "ip", "vserver")
    assert hvs("stop", "b").returncode == 0
    assert hvs("stop", "a").returncode == 0
    # the last nat guest gone: H as it was, and the machine's own ruleset untouched
    assert "vserver" not in h("nft", "list", "tables")
    assert forwarding() == "0"
    assert nft_tables() == host_tables


def test_start_says_when_an_address_shadows_a_host_route(net, upstream):
    """Issue 15: an address with a network takes that network off the host's routes
    without a word."""
    vs = net
    subprocess.run(["ip", "route", "add", "198.18.80.0/22", "via", upstream, "dev", "vs-nat-h"],
                   check=True)
    build(vs, vs.vsnet, "a", "--address", "198.18.80.10/24@vs-nat-h")
    build(vs, vs.vsnet, "b", "--address", "198.18.81.10/32@vs-nat-h")
    p = vs("start", "a", check=True)
    assert "note: a takes 198.18.80.0/24 from the host's route 198.18.80.0/22 via " \
        f"{upstream} dev vs-nat-h: the host reaches that network on vs-nat-h only while the " \
        "guest runs (give the address as a single host, /32, if that is not meant)" in p.stderr
    # a host address takes nothing from anyone
    p = vs("start", "b", check=True)
    assert "takes" not in p.stderr
    vs("stop", "a", check=True)
    vs("stop", "b", check=True)


@pytest.mark.parametrize("value,says", [
    ("10.88.0.1", "is not the bridge's address in its network"),
    ("10.88.0.1/16@eth0", "no @DEVICE"),
    ("10.88.0.1/16 10.99.0.1/16", "one address of each family"),
    ("nonsense/16", '"nonsense/16": '),
], ids=["no-prefix", "device", "two-v4", "nonsense"])
def test_bridge_address_bad_input(vs, value, says):
    vs.host_conf(f"[host]\nbridge-address = {value}\n")
    p = vs("list")
    assert p.returncode != 0 and "bridge-address" in p.stderr and says in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_start_all_says_each_refusal_on_a_line_of_its_own(net):
    """start --all starts on every CPU at once: its workers' refusals came out interleaved
    byte by byte on the shared stderr (unbuffered, a line written in pieces)."""
    vs = net
    names = [f"r{i}" for i in range(12)]
    for n in names:
        build(vs, vs.vsnet, n, "--address", "198.18.0.12/32@lo")
    try:
        p = vs("start", "--all")
        lines = p.stderr.splitlines()
        refused = [l for l in lines if "is in use" in l]
        assert len(refused) == len(names) - 1, p.stderr
        for l in lines:
            assert re.fullmatch(r"vserver: start: (note: r\d .*|address 198\.18\.0\.12/32@lo is "
                                r"in use by the running guest r\d)", l), p.stderr
    finally:
        vs("stop", "--all", "--timeout", "0")
