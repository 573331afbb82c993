"""The metrics endpoint (metrics_listen): scraped over TCP and a Unix socket, read with
the Prometheus client's own parser, its values moving as sessions happen; addresses
that are not this host's refused; requests that are not a GET of /metrics answered so."""

import socket
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

from conftest import FIVE, FIVED, SANITIZED, SLOW, connect, free_port, wait_for

ECHO = "[service:echo]\nbackend = builtin:echo\n"


def http(address, request):
    """Sends request to a ("tcp", port) or ("unix", path) endpoint; returns the whole reply."""
    kind, where = address
    s = socket.socket(socket.AF_INET if kind == "tcp" else socket.AF_UNIX)
    s.settimeout(5)
    s.connect(("127.0.0.1", where) if kind == "tcp" else where)
    s.sendall(request)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    return reply


def scrape(address):
    """Every sample, by (name, sorted labels), as the reference parser reads the body."""
    head, _, body = http(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").partition(
        b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n"), head
    assert b"Content-Type: text/plain; version=0.0.4" in head
    assert b"Content-Length: %d\r\n" % len(body) in head
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_values_move_with_sessions(fived, sentinel, tmp_path):
    backend = sentinel("echo")
    port = free_port()
    f = fived(ECHO + "[service:tcpecho]\nbackend = tcp:127.0.0.1:%d\n" % backend.port,
              server="metrics_listen = tcp:127.0.0.1:%d\n" % port)
    address = ("tcp", port)
    before = scrape(address)
    assert value(before, "fived_sessions_accepted_total") == 0
    assert value(before, "fived_backend_connect_seconds_count") == 0
    assert value(before, "fived_pow_difficulty_bits") == 0

    # A live plain session, and a sealed one that has come and gone.
    live = connect(f.port)
    live.sendall(b"tcpecho\r\nabcd")
    assert live.recv(100).startswith(b"+")
    r = subprocess.run([FIVE, "-p", str(f.port), "127.0.0.1", "echo"], input=b"sealed",
                       capture_output=True, timeout=10)
    assert r.stdout == b"sealed", r.stderr
    # A refusal.
    s = connect(f.port)
    s.sendall(b"nosuch\r\n")
    assert s.recv(100) == b"- unknown service\r\n"
    s.close()

    def moved():
        m = scrape(address)
        return m if value(m, "fived_sessions_closed_total", transport="plain",
                          dialect="text") == 1 else None
    after = wait_for(moved, what="the refused session's close counted")
    assert value(after, "fived_sessions_accepted_total") == 3
    assert value(after, "fived_sessions_open", transport="plain", dialect="text") == 1
    assert value(after, "fived_sessions_closed_total", transport="sealed", dialect="text") == 1
    assert value(after, "fived_refusals_total", reason="unknown service") == 1
    assert value(after, "fived_handshakes_total") == 1
    assert value(after, "fived_handshake_cpu_seconds_total") > 0
    assert value(after, "fived_relayed_bytes_total", direction="in") >= 6
    assert value(after, "fived_relayed_bytes_total", direction="out") >= 6
    assert value(after, "fived_backend_connect_seconds_count") == 2
    assert value(after, "fived_backend_connect_seconds_bucket", le="+Inf") == 2
    assert value(after, "fived_backend_connect_seconds_sum") > 0
    assert value(after, "fived_auth_failures_total", method="password") == 0
    # The heap: something in use, and no more than the worker's whole memory (a
    # sanitizer's allocator is not glibc's: those builds leave the families out).
    if SANITIZED:
        assert ("fived_heap_in_use_bytes", ()) not in after
    else:
        assert 0 < value(after, "fived_heap_in_use_bytes") < f.rss_kb() * 1024
        assert value(after, "fived_heap_free_bytes") >= 0
    live.close()


def test_auth_failures_and_a_unix_socket(fived, world, tmp_path):
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    path = str(tmp_path / "metrics.sock")
    f = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\nauthorized_keys = %s\n"
              "metrics_listen = unix:%s\n[service:echo]\nbackend = builtin:echo\n"
              "auth = required\n" % (keys, path), env=world.fived_env())
    # bob's key is nobody's: a pubkey failure.
    r = subprocess.run([FIVE, "-p", str(f.port), "-l", "alice", "-i", str(world.keys["bob"]),
                        "127.0.0.1", "echo"], input=b"", capture_output=True, timeout=10,
                       env=world.client_env())
    assert r.returncode != 0
    m = wait_for(lambda: (lambda m: m if value(m, "fived_auth_failures_total",
                                               method="pubkey") >= 1 else None)(
        scrape(("unix", path))), what="the failure counted")
    assert value(m, "fived_sessions_open", transport="sealed", dialect="text") == 0


def test_only_this_host(tmp_path):
    for address in ("tcp:0.0.0.0:9100", "tcp:192.0.2.1:9100", "tcp:localhost:9100"):
        conf = tmp_path / "f.conf"
        conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\nkey_file = %s\n"
                        "metrics_listen = %s\n" % (tmp_path / "k", address))
        r = subprocess.run([FIVED, "-t", "-c", str(conf)], capture_output=True, text=True)
        assert r.returncode != 0
        assert "metrics_listen: expected unix:PATH, tcp:127.0.0.1:PORT or tcp:[::1]:PORT" \
            in r.stderr, r.stderr


def test_requests_other_than_a_get(fived):
    port = free_port()
    f = fived(ECHO, server="metrics_listen = tcp:127.0.0.1:%d\n" % port)
    a = ("tcp", port)
    assert http(a, b"GET /other HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 404 ")
    assert http(a, b"POST /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 405 ")
    assert http(a, b"GET /metrics HTTP/9\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    # Header lines a proxy in front could read otherwise: folded, nameless, a stray CR.
    for header in (b"A: b\r\n c\r\n", b"Host x\r\n", b"A: b\rc\r\n"):
        assert http(a, b"GET /metrics HTTP/1.1\r\n" + header + b"\r\n").startswith(
            b"HTTP/1.0 400 "), header
    # Cut short by the client's end: answered as malformed.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n")
    s.shutdown(socket.SHUT_WR)
    assert s.recv(100).startswith(b"HTTP/1.0 400 ")
    s.close()
    assert http(a, b"GET /metrics HTTP/1.0\r\n" + b"X: y\r\n" * 1000).startswith(
        b"HTTP/1.0 431 ")
    # One that never ends its request is closed in time, answered nothing.
    s = socket.socket()
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.0\r\n")
    assert s.recv(100) == b""
    s.close()
    assert value(scrape(a), "fived_sessions_accepted_total") == 0
    assert f.proc.poll() is None


def test_connections_held_open_do_not_keep_a_scraper_out(fived):
    """16 connections at once; at the limit the one that has waited longest for its
    request makes room, so a program that holds connections open without asking
    cannot keep a scraper out."""
    port = free_port()
    fived(ECHO, server="metrics_listen = tcp:127.0.0.1:%d\n" % port)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    assert value(scrape(("tcp", port)), "fived_sessions_accepted_total") == 0
    # The first ones were closed to make room, answered nothing.
    assert idle[0].recv(100) == b""
    for s in idle:
        s.close()


def test_answered_connections_held_open_do_not_keep_a_scraper_out(fived):
    """Nor can a program that asks on 16 connections and then neither reads nor closes
    them: at the limit, one that has had its whole answer makes room first."""
    port = free_port()
    fived(ECHO, server="metrics_listen = tcp:127.0.0.1:%d\n" % port)
    held = []
    for _ in range(16):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        held.append(s)
    time.sleep(0.3)
    start = time.monotonic()
    assert value(scrape(("tcp", port)), "fived_sessions_accepted_total") == 0
    assert time.monotonic() - start < 1 * SLOW
    for s in held:
        s.close()
