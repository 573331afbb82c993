"""Several fived nodes as one service (docs/CLUSTER.md): the client's address
from a balancer's PROXY header."""

import base64
import os
import re
import shutil
import socket
import struct
import time

from conftest import SLOW, connect_from, recv_all, recv_line
from sealwire import COOKIE, RESPONSE, Conn, Handshake, read_server_message

# What every node shares: its keys (made by the first node, copied as an operator would).
SHARED = ("key", "key-token.key", "key-sign.key", "key-tls.crt", "key-tls.key")

ECHO = "[service:echo]\nbackend = builtin:echo\n"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="198.51.100.2", dport=1, tlvs=b""):
    addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    body = addresses + tlvs
    return V2_SIGNATURE + b"\x21\x11" + struct.pack(">H", len(body)) + body


def write_cluster_key(path):
    old = os.umask(0o077)
    try:
        path.write_text("fived-cluster-key-v1 %s\n" % base64.b64encode(os.urandom(32)).decode())
    finally:
        os.umask(old)
    return path


class Node:
    """A fived of the cluster, listening on 127.0.0.(1 + index)."""

    def __init__(self, fived, tmp_path, index, config, server, first=None):
        self.host = "127.0.0.%d" % (1 + index)
        self.dir = tmp_path / ("node%d" % index)
        self.dir.mkdir()
        self.dir.chmod(0o755)
        if first is not None:
            for name in SHARED:
                shutil.copy2(first.dir / name, self.dir / name)
        self.key_file = self.dir / "key"
        self.fived = fived("[server]\nlisten = tcp:%s:0\naudit_log = %s\nkey_file = %s\n%s\n%s"
                           % (self.host, self.dir / "audit", self.key_file, server, config),
                           name="node%d" % index)
        self.port = int(re.search(r"tcp:%s:(\d+)" % re.escape(self.host),
                                  " ".join(self.fived.addresses)).group(1))

    def server_key(self):
        return self.fived.server_key()


def start_nodes(fived, tmp_path, n, config, server=""):
    nodes = [Node(fived, tmp_path, 1, config, server)]
    for i in range(2, n + 1):
        nodes.append(Node(fived, tmp_path, i, config, server, first=nodes[0]))
    return nodes


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


def test_a_cookie_from_one_node_is_taken_by_another(fived, tmp_path):
    """With one cluster key, a loaded node's cookie is served by another node;
    without it, each node knows only its own cookies."""
    key = write_cluster_key(tmp_path / "cluster.key")
    server = "cookie = always\npow_difficulty_min = 2\npow_difficulty_max = 2\n"
    a, b = start_nodes(fived, tmp_path, 2, ECHO, server + "cluster_key_file = %s" % key)
    hs = Handshake(a.server_key())
    assert a.server_key() == b.server_key()
    cookie = exchange_message(a, hs.initiation)
    assert cookie[0] == COOKIE
    answer = hs.answer_cookie(cookie)
    assert exchange_message(b, answer)[0] == RESPONSE
    # A node with the same keys but without the cluster key: a stranger's cookie.
    alone = Node(fived, tmp_path, 3, ECHO, server, first=a)
    other = Handshake(a.server_key())
    cookie = exchange_message(a, other.initiation)
    assert exchange_message(alone, other.answer_cookie(cookie))[0] == COOKIE


def exchange_message(node, message):
    c = Conn(node.port, node.host, 5 * SLOW)
    try:
        c.send(message)
        return read_server_message(c)
    finally:
        c.close()
