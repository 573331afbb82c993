"""Several fived nodes as one service (docs/CLUSTER.md): the client's address
from a balancer's PROXY header."""

import base64
import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

from conftest import (BUILD, FIVED, SLOW, connect_from, free_port, pubkey_login, recv_all,
                      recv_line, wait_for, wait_port)
from sealwire import (COOKIE, RESPONSE, Conn, Handshake, SealedClient, keypair,
                      read_server_message)
from uspwire import UspClient, invalidate

# What every node shares: its keys (made by the first node, copied as an operator would).
SHARED = ("key", "key-token.key", "key-sign.key", "key-tls.crt", "key-tls.key", "key-0rtt")

ECHO = "[service:echo]\nbackend = builtin:echo\n"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="198.51.100.2", dport=1, tlvs=b""):
    addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    body = addresses + tlvs
    return V2_SIGNATURE + b"\x21\x11" + struct.pack(">H", len(body)) + body


class Redis:
    """A redis-server of the test's own: an ephemeral port, nothing saved."""

    def __init__(self, process, tmp_path, password=None):
        self.port = free_port()
        self.process = process
        self.dir = tmp_path
        self.password = password
        self.proc = None
        self.start()

    def start(self):
        auth = ["--requirepass", self.password] if self.password is not None else []
        self.proc = self.process(["redis-server", "--port", str(self.port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no",
                                  "--dir", str(self.dir), "--logfile",
                                  str(self.dir / "redis.log"), "--loglevel", "verbose"] + auth)
        wait_port(self.port)

    def cli(self, *args):
        auth = ["-a", self.password, "--no-auth-warning"] if self.password is not None else []
        return subprocess.run(["redis-cli", "-p", str(self.port)] + auth + list(args),
                              check=True, capture_output=True, text=True,
                              timeout=10).stdout.strip()

    def stop(self):
        self.proc.stop()

    def address(self):
        return "tcp:127.0.0.1:%d" % self.port


def authorized_clients(tmp_path, name, pub):
    path = tmp_path / "authorized_clients"
    path.write_text("%s %s\n" % (base64.b64encode(pub).decode(), name))
    path.chmod(0o644)
    return path


def write_cluster_key(path):
    old = os.umask(0o077)
    try:
        path.write_text("fived-cluster-key-v1 %s\n" % base64.b64encode(os.urandom(32)).decode())
    finally:
        os.umask(old)
    return path


class Node:
    """A fived of the cluster: its own directory, the first node's keys."""

    def __init__(self, fived, tmp_path, index, config, server, first=None, env=None):
        self.dir = tmp_path / ("node%d" % index)
        self.dir.mkdir()
        self.dir.chmod(0o755)
        if first is not None:
            for name in SHARED:
                shutil.copy2(first.dir / name, self.dir / name)
        self.fived = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\nkey_file = %s\n"
                           "%s\n%s" % (self.dir / "key", server, config),
                           name="node%d" % index, env=env)
        self.port = self.fived.port
        self.host = "127.0.0.1"

    def server_key(self):
        return self.fived.server_key()

    def events(self, kind=None):
        return self.fived.events(kind)


def start_nodes(fived, tmp_path, n, config, server="", env=None):
    nodes = [Node(fived, tmp_path, 1, config, server, env=env)]
    for i in range(2, n + 1):
        nodes.append(Node(fived, tmp_path, i, config, server, first=nodes[0], env=env))
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
    # The identity TLV said "root": nobody is authenticated by a balancer's word.
    assert [e["identity"] for e in f.events("granted")] == ["", ""]
    assert not f.events("authenticated")
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
    # Each is recorded as accepted from the balancer, and closed with its refusal.
    wait_for(lambda: len(f.events("closed")) == len(f.events("accepted")),
             what="every connection's closed record")
    assert [r["src"] for r in f.events("accepted")[-2:]] == ["127.0.0.9", "127.0.0.9"]
    assert [r["reason"] for r in f.events("closed")[-2:]] == ["bad PROXY header",
                                                               "no PROXY header in time"]


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


def secret_file(path, text):
    old = os.umask(0o077)
    try:
        path.write_text(text)
    finally:
        os.umask(old)
    return path


def test_a_store_that_asks_for_a_password(fived, process, tmp_path):
    """store_password_file (and store_user, for a Redis ACL user): each connection
    authenticates before anything else; a refused password is the store unreachable,
    said once with the store's words, and nothing is written to it."""
    redis = Redis(process, tmp_path, password="the store's password")
    redis.cli("ACL", "SETUSER", "node", "on", ">node password", "~fived:*", "&fived:*",
              "+@all")
    logins = [("", "the store's password\n"), ("store_user = node\n", "node password\r\n"),
              ("", "wrong\n"), None]
    nodes = []
    for i, login in enumerate(logins):
        server = "store = %s\n" % redis.address()
        if login is not None:
            server += "%sstore_password_file = %s" % (
                login[0], secret_file(tmp_path / ("password%d" % i), login[1]))
        nodes.append(fived(ECHO, name="n%d" % i, server=server))
    for node in nodes[:2]:
        wait_for(lambda: "store %s reachable" % redis.address() in node.log(), what="store")
    wait_for(lambda: "AUTH refused: WRONGPASS" in nodes[2].log(), what="the refusal")
    wait_for(lambda: "PING refused: NOAUTH" in nodes[3].log(), what="the refusal")
    assert redis.cli("GET", "fived:epoch").isdigit()
    time.sleep(1.2)  # the store is dialed again every half second: still said once
    for node in nodes[2:]:
        log = node.log()
        assert log.count("unreachable") == 1 and "store %s reachable" % redis.address() \
            not in log, log
    # An ACL that takes the connection but not the claims: 0-RTT refused, and said.
    redis.cli("ACL", "SETUSER", "noeval", "on", ">noeval password", "~fived:*", "&fived:*",
              "+@all", "-eval")
    priv, pub = keypair()
    path = secret_file(tmp_path / "noeval", "noeval password\n")
    node = fived(ECHO, name="noeval", server="store = %s\nstore_user = noeval\n"
                 "store_password_file = %s\nauthorized_clients = %s"
                 % (redis.address(), path, authorized_clients(tmp_path, "robot", pub)))
    wait_for(lambda: "store %s reachable" % redis.address() in node.log(), what="store")
    while time.time() < int(redis.cli("GET", "fived:epoch")) + 1:
        time.sleep(0.05)
    for _ in range(2):
        assert not zero_rtt(node, Handshake(node.server_key(), priv, early=b"echo\r\nx"))
    wait_for(lambda: "a 0-RTT claim refused: NOPERM" in node.log(), what="the refusal said")
    assert node.log().count("a 0-RTT claim refused") == 1
    # A password file others may read is refused, as a key would be, by fived -t too.
    loose = tmp_path / "loose"
    loose.write_text("the store's password\n")
    loose.chmod(0o644)
    two_lines = secret_file(tmp_path / "two", "one\ntwo\n")
    for path, why in ((loose, "store password file %s: readable by others" % loose),
                      (two_lines, "store_password_file %s: expected one line" % two_lines)):
        conf = tmp_path / "bad.conf"
        conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = none\nstore = %s\n"
                        "store_password_file = %s\n%s" % (redis.address(), path, ECHO))
        for args in (["-t"], []):
            r = subprocess.run([FIVED, *args, "-c", str(conf)], capture_output=True, text=True,
                               timeout=10 * SLOW)
            assert r.returncode != 0 and why in r.stderr, (args, r.stderr)


def exchange_message(node, message):
    c = Conn(node.port, node.host, 5 * SLOW)
    try:
        c.send(message)
        return read_server_message(c)
    finally:
        c.close()


def after_epoch(redis):
    """Waits until the store's epoch (fived:epoch, a Unix time) has passed."""
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "GET", "fived:epoch"],
                         capture_output=True, text=True, check=True).stdout.strip()
    while time.time() < int(out) + 1:
        time.sleep(0.05)


def zero_rtt(node, hs):
    """hs's 0-RTT first message to node: whether node acted on its early data."""
    with SealedClient(node.port, handshake=hs, resend_early=False, timeout=5 * SLOW) as c:
        return c.zero_rtt


def test_0rtt_at_most_once_in_the_cluster(fived, sentinel, process, world, tmp_path):
    """A first message acted on by one node is refused (1-RTT) by another: the store
    holds the claim.  Store gone: no early data is acted on, sealed sessions still
    succeed (1-RTT), tokens are refused once the revocations are out of date; the store
    back: 0-RTT and tokens again."""
    s = sentinel("count")
    redis = Redis(process, tmp_path)
    priv, pub = keypair()
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    config = ("[service:s]\nbackend = tcp:127.0.0.1:%d\n[service:db]\nbackend = builtin:echo\n"
              "auth = required\nencryption = optional\n" % s.port)
    server = ("authorized_clients = %s\nstore = %s\nstore_timeout = 200ms\n"
              "revocation_stale_max = 1s\nauthorized_keys = %s\nallow_plaintext_pubkey = yes"
              % (authorized_clients(tmp_path, "robot", pub), redis.address(), keys))
    env = node_env(world, tmp_path)
    a, b = start_nodes(fived, tmp_path, 2, config, server, env=env)
    wait_for(lambda: "store %s reachable" % redis.address() in b.fived.log(), what="store")
    after_epoch(redis)
    hs = Handshake(a.server_key(), priv, early=b"s\r\nPAYLOAD")
    recorded = hs.initiation
    assert zero_rtt(a, hs)
    # The recorded first message, replayed to the other node: answered, not acted on.
    c = Conn(b.port, "127.0.0.1", 5 * SLOW)
    c.send(recorded)
    assert read_server_message(c)[0] == RESPONSE
    c.close()
    wait_for(lambda: len(s.received) >= 1, what="the backend")
    time.sleep(0.2)
    assert s.received == [b"PAYLOAD"] and s.connections == 1
    assert len(a.events("granted")) == 1 and not b.events("granted")
    token, given_up = new_token(a, world), new_token(a, world)
    assert use_token(b, token) == b"+\r\npayload"
    # The store stopped: sealed sessions take the 1-RTT path on every node, and succeed.
    redis.stop()
    stopped = time.monotonic()
    for node in (a, b):
        with SealedClient(node.port, server_pub=a.server_key(), static_key=priv,
                          early=b"s\r\nX", timeout=5 * SLOW) as c:
            assert not c.zero_rtt
            c.close_write()
            assert c.recv_all() == b"+\r\ngot 1\n"
    # The backend answers before it records what it got.
    wait_for(lambda: len(s.received) >= 3, what="the backend")
    assert s.received == [b"PAYLOAD", b"X", b"X"]
    # Tokens: taken until the revocations are a second out of date, then refused.
    while time.monotonic() - stopped < 1.2:
        time.sleep(0.05)
    assert use_token(b, token) == b"- invalid token\r\n"
    assert b.events("token_refused")[-1]["reason"] == \
        "revocations out of date: the store is unreachable"
    # A revocation is most needed then: made on this node, and said not to be shared.
    u = UspClient(b.port)
    u.send(invalidate(given_up.decode()))
    u.expect_error("revoked on this node only: the store is unreachable; revoke it again later")
    u.close()
    redis.start()
    wait_for(lambda: b.fived.log().count("store %s reachable" % redis.address()) >= 2,
             timeout=5, what="the store again")
    wait_for(lambda: use_token(b, token) == b"+\r\npayload", timeout=2,
             what="tokens taken again")
    assert use_token(b, given_up) == b"- invalid token\r\n"
    assert b.events("token_refused")[-1]["reason"] == "revoked"
    # An empty store again: a new epoch, nothing stamped before it is acted on.
    after_epoch(redis)
    assert zero_rtt(b, Handshake(a.server_key(), priv, early=b"s\r\nAGAIN"))
    wait_for(lambda: len(s.received) == 4, what="the backend")
    assert s.received[3] == b"AGAIN"
    # Emptied without losing its connections (FLUSHALL, a failover to an empty replica):
    # its epoch went with its claims, so a message acted on before is not acted on again,
    # even by a node that never saw it; and the nodes record the revocations they know
    # there again, for a node that starts later.
    once = Handshake(a.server_key(), priv, early=b"s\r\nONCE")
    assert zero_rtt(a, once)
    wait_for(lambda: len(s.received) == 5, what="the backend")
    revoked = new_token(a, world)
    u = UspClient(a.port)
    u.send(invalidate(revoked.decode()))
    u.expect("invalidated", count=1)
    u.close()
    wait_for(lambda: use_token(b, revoked) == b"- invalid token\r\n", what="the revocation")
    subprocess.run(["redis-cli", "-p", str(redis.port), "FLUSHALL"], check=True,
                   capture_output=True)
    assert exchange_message(b, once.initiation)[0] == RESPONSE
    time.sleep(0.3)
    assert len(s.received) == 5, s.received
    late = Node(fived, tmp_path, 3, config, server, first=a, env=env)
    wait_for(lambda: "store %s reachable" % redis.address() in late.fived.log(), what="store")
    assert use_token(late, revoked) == b"- invalid token\r\n"
    assert late.events("token_refused")[-1]["reason"] == "revoked"


def node_env(world, tmp_path):
    """fived's environment for world's users.  The worker resolves the store's address
    (getaddrinfo): nss_wrapper answers it from a hosts file of its own, not through libc
    (a dlopen the sanitizers refuse)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    hosts.chmod(0o644)
    return dict(world.fived_env(), NSS_WRAPPER_HOSTS=str(hosts))


BALANCER = "127.0.0.9"  # the address HAProxy connects to the nodes from


def start_haproxy(process, tmp_path, nodes):
    """HAProxy in tcp mode in front of nodes, sending PROXY v2 with its checksum from
    BALANCER, with health checks that find a dead node within a fraction of a second."""
    port = free_port()
    servers = "".join(
        "    server n%d 127.0.0.1:%d send-proxy-v2 proxy-v2-options crc32c check check-send-proxy "
        "inter 100ms fall 1 "
        "rise 1 source %s\n" % (i + 1, n.port, BALANCER) for i, n in enumerate(nodes))
    conf = tmp_path / "haproxy.cfg"
    conf.write_text("""global
    maxconn 512
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    retries 2
    option redispatch
frontend cluster
    bind 127.0.0.1:%d
    default_backend nodes
backend nodes
    balance roundrobin
%s""" % (port, servers))
    process(["/usr/sbin/haproxy", "-db", "-f", str(conf)])
    wait_port(port)
    return port


def port_closed(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


def through(port, source, data):
    with connect_from(port, source) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c)


def fivectl(node, *args, input=None):
    return subprocess.run([os.path.join(BUILD, "fivectl"), "-s", str(node.dir / "admin.sock"),
                           *args], capture_output=True, text=True, input=input,
                          timeout=10 * SLOW)


def test_three_nodes_behind_haproxy(fived, world, process, tmp_path):
    """Three nodes behind HAProxy (send-proxy-v2) and a redis-server: per-source limits
    count the real client; a token revoked through node 1 is refused by node 3 within a
    second; a node killed, the others keep their sessions and take the new ones."""
    redis = Redis(process, tmp_path)
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    config = ("[service:db]\nbackend = builtin:echo\nauth = required\nencryption = optional\n"
              "[service:echo]\nbackend = builtin:echo\n")
    server = ("proxy_from = %s\nstore = %s\nmax_per_source = 1\nauthorized_keys = %s\n"
              "allow_plaintext_pubkey = yes\nadmin_socket = @ADMIN@\nmax_tokens_per_hour = 3\n"
              % (BALANCER, redis.address(), keys))
    env = node_env(world, tmp_path)
    nodes = []
    for i in range(1, 4):
        nodes.append(Node(fived, tmp_path, i, config,
                          server.replace("@ADMIN@", str(tmp_path / ("node%d" % i) / "admin.sock")),
                          first=nodes[0] if nodes else None, env=env))
    for n in nodes:
        wait_for(lambda: "store %s reachable" % redis.address() in n.fived.log(), what="store")
    front = start_haproxy(process, tmp_path, nodes)
    wait_for(lambda: all("balancer" not in n.fived.log() for n in nodes), what="checks")

    # Per source: the client's own address, not the balancer's (max_per_source = 1).
    # One connection held from a client: of its next three, one per node in turn, the
    # one that lands beside it is refused; another client is not.
    held = connect_from(front, "127.0.0.7")
    held.sendall(b"echo\r\n")
    assert recv_line(held) == b"+\r\n"
    refused = 0
    for _ in range(3):
        out = through(front, "127.0.0.7", b"echo\r\nx")
        assert out in (b"+\r\nx", b"- too many connections from your address\r\n"), out
        refused += out != b"+\r\nx"
    assert through(front, "127.0.0.8", b"echo\r\nx") == b"+\r\nx"
    # (HAProxy's health checks are the balancer's own: LOCAL, its address.)
    granted = {e["src"] for n in nodes for e in n.events("granted")}
    assert granted == {"127.0.0.7", "127.0.0.8"}, granted
    assert refused == 1
    held.close()

    # A token issued by node 1, revoked through node 1, refused by node 3 within a second.
    token = new_token(nodes[0], world)
    assert use_token(nodes[2], token) == b"+\r\npayload"
    r = fivectl(nodes[0], "revoke", "-", input=token.decode() + "\n")
    assert r.returncode == 0, r.stderr
    revoked_at = time.monotonic()
    wait_for(lambda: use_token(nodes[2], token) == b"- invalid token\r\n", timeout=1,
             what="node 3 to refuse the revoked token")
    assert time.monotonic() - revoked_at < 1 * SLOW
    assert nodes[2].events("token_refused")[-1]["reason"] == "revoked"

    # The hour's quota (3) is the cluster's: two more on node 1 spend it; node 3 learns
    # the count with the one token it issues before it knows, and refuses the next.
    new_token(nodes[0], world)
    new_token(nodes[0], world)
    assert token_reply(nodes[0], world) == b"- token quota reached\r\n"
    assert token_reply(nodes[2], world).startswith(b"+ TOKEN ")
    wait_for(lambda: token_reply(nodes[2], world) == b"- token quota reached\r\n",
             timeout=1, what="node 3 to know the cluster's count")

    # A node killed: sessions on the others go on, new ones reach the others.
    live = []
    for _ in range(3):
        c = connect_from(front, "127.0.0.8")
        c.sendall(b"echo\r\n")
        assert recv_line(c) == b"+\r\n"
        live.append(c)
    victim = nodes[1]
    # The monitor first: killed after its worker, it could start another in between.
    worker = victim.fived.worker_pid()
    victim.fived.proc.kill()
    victim.fived.proc.wait()
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: port_closed(victim.port), what="the killed node's port to close")
    before = [len(n.events("accepted")) for n in nodes]
    outs = [through(front, "127.0.0.%d" % (20 + i), b"echo\r\nafter") for i in range(6)]
    assert outs == [b"+\r\nafter"] * 6, outs
    after = [len(n.events("accepted")) for n in nodes]
    assert after[0] > before[0] and after[2] > before[2]
    echoed = []
    for c in live:
        try:
            c.sendall(b"still")
            echoed.append(c.recv(100))
        except OSError:
            echoed.append(b"")
    # One per node: the one on the killed node ended, the others still echo.
    assert sorted(echoed) == [b"", b"still", b"still"], echoed
    for c in live:
        c.close()


# Direct connections to the nodes each come from an address of their own: with
# max_per_source = 1, one still closing must not turn the next away.
SOURCES = ("127.0.1.%d" % i for i in itertools.count(1))


def token_reply(node, world):
    c = pubkey_login(node.fived, world, source=next(SOURCES))
    c.sendall(b"TOKEN db\r\n")
    reply = recv_line(c)
    c.close()
    return reply


def new_token(node, world):
    reply = token_reply(node, world)
    assert reply.startswith(b"+ TOKEN v4.") and reply.endswith(b"\r\n"), reply
    return reply[8:-2]


def use_token(node, token):
    with connect_from(node.port, next(SOURCES)) as c:
        c.sendall(b"db " + token + b"\r\npayload")
        c.shutdown(socket.SHUT_WR)
        return recv_all(c)
