"""Several fived nodes as one service (docs/CLUSTER.md): the client's address
from a balancer's PROXY header."""

import socket
import struct
import time

from conftest import SLOW, connect_from, recv_all, recv_line

ECHO = "[service:echo]\nbackend = builtin:echo\n"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="198.51.100.2", dport=1, tlvs=b""):
    addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    body = addresses + tlvs
    return V2_SIGNATURE + b"\x21\x11" + struct.pack(">H", len(body)) + body


def from_balancer(port, data, balancer="127.0.0.9"):
    with connect_from(port, balancer) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c)


def test_proxy_header_names_the_client(fived):
    """From a configured balancer, v1 and v2 headers give the client's address to the
    audit log and to per-source limits; identity TLVs are ignored; from anywhere else
    a PROXY header is a bad request; a balancer that says nothing is refused in time."""
    f = fived(ECHO, server="proxy_from = 127.0.0.9 10.0.0.0/8\nproxy_timeout = 1s\n"
                           "max_per_source = 1")
    identity = b"\xe0" + struct.pack(">H", 4) + b"root"
    assert from_balancer(f.port, v2_header("192.0.2.1", 40000, tlvs=identity) +
                         b"echo\r\nv2") == b"+\r\nv2"
    assert from_balancer(f.port, b"PROXY TCP4 192.0.2.7 198.51.100.2 5 1\r\necho\r\nv1") \
        == b"+\r\nv1"
    accepted = f.events("accepted")
    assert [(r["src"], r["src_port"]) for r in accepted] == [("192.0.2.1", 40000),
                                                             ("192.0.2.7", 5)]
    # max_per_source = 1 counts clients, not the balancer: two clients at once through it.
    held = connect_from(f.port, "127.0.0.9")
    held.sendall(v2_header("192.0.2.1", 1) + b"echo\r\n")
    assert recv_line(held) == b"+\r\n"
    assert from_balancer(f.port, v2_header("192.0.2.2", 2) + b"echo\r\nx") == b"+\r\nx"
    assert from_balancer(f.port, v2_header("192.0.2.1", 3) + b"echo\r\nx") == \
        b"- too many connections from your address\r\n"
    held.close()
    # Not a balancer: the header is an ordinary (bad) request, its address stands.
    with connect_from(f.port, "127.0.0.1") as c:
        c.sendall(b"PROXY TCP4 192.0.2.1 198.51.100.2 5 1\r\necho\r\n")
        assert recv_line(c).startswith(b"- ")
    assert f.events("accepted")[-1]["src"] == "127.0.0.1"
    # Malformed, and silent: refused with a reason.
    assert from_balancer(f.port, b"PROXY TCP4 192.0.2.1 198.51.100.2 05 1\r\necho\r\n") == \
        b"- bad PROXY header\r\n"
    with connect_from(f.port, "127.0.0.9") as c:
        started = time.monotonic()
        c.sendall(b"PROXY TCP4 192.0.2.1")
        assert recv_all(c) == b"- no PROXY header in time\r\n"
        assert 0.8 < time.monotonic() - started < 3 * SLOW
