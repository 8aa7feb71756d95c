"""Isolate mode (the host's own stack, kept to the guest's addresses by cgroup-BPF):
every protocol and path that picks a source or reaches another address (item 6).
Addresses: 198.18.0.0/15 as /32s and 2001:db8::/32 as /128s on lo, ours alone."""
import contextlib
import socket
import subprocess
import threading

import pytest

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
        import time
        time.sleep(0.3)
    finally:
        udp.close()
    assert udp.seen == [GUEST4]
