"""The five command and libfive against a real fived."""

import base64
import contextlib
import hashlib
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
from conftest import FIVE, FIVED, HELPERS, SLOW, answer_then_reset, connect, free_port, \
    need_ipv6_loopback, recv_all, recv_line, run_five, serve_each, stop_listening, wait_for, \
    wait_port
from test_delivery import blackhole

CONFIG = """
[service:echo]
backend = builtin:echo
[service:daytime]
backend = builtin:daytime
[service:alpha-db]
backend = builtin:echo
[vhost:alpha]
services = db=alpha-db
"""


def test_relay_stdin_stdout(fived):
    f = fived(CONFIG)
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"hello\n")
    assert (r.returncode, r.stdout) == (0, b"hello\n")
    # First contact pins the server's key, and says so once.
    assert r.stderr.startswith(b"five: new host 127.0.0.1:%d, key SHA256:" % f.port)
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"again\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"again\n", b"")
    r = run_five("--plain", "-p", str(f.port), "127.0.0.1", "echo", input=b"plain\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"plain\n", b"")


def five_on_a_terminal(*args):
    """five with a pseudo-terminal for standard input; returns it and the terminal's side."""
    master, slave = pty.openpty()
    p = subprocess.Popen([FIVE, *args], stdin=slave, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    os.close(slave)
    return p, master


def line_within(pipe, seconds=5):
    """A line from pipe, or what came of it before seconds passed."""
    out = b""
    deadline = time.monotonic() + seconds * SLOW
    while not out.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([pipe], [], [], left)[0]:
            break
        byte = os.read(pipe.fileno(), 1)
        if not byte:
            break
        out += byte
    return out


def told_on_a_terminal(port):
    """five on a terminal says it is connected to echo, relays a typed line and ends
    with Ctrl-D; asked for nosuch, it says the refusal."""
    p, term = five_on_a_terminal("-p", port, "127.0.0.1", "echo")
    try:
        line = line_within(p.stderr)
        assert line == b"five: connected to echo on 127.0.0.1; type, Ctrl-D ends\n"
        os.write(term, b"typed\n")
        assert line_within(p.stdout) == b"typed\n"
        os.write(term, b"\x04")                               # Ctrl-D: the end of input
        assert p.wait(timeout=10 * SLOW) == 0
        assert p.stdout.read() == b"" and p.stderr.read() == b""
    finally:
        p.kill()
        p.wait()
        os.close(term)
    p, term = five_on_a_terminal("-p", port, "127.0.0.1", "nosuch")
    try:
        assert p.wait(timeout=10 * SLOW) == 5
        assert p.stderr.read() == b"five: 127.0.0.1 nosuch: refused: unknown service\n"
    finally:
        os.close(term)


def test_a_terminal_is_told_what_five_waits_for(fived):
    """On a terminal, five says it is connected and waits for what is typed; piped, it
    says nothing."""
    f = fived(CONFIG)
    port = str(f.port)
    run_five("-p", port, "127.0.0.1", "echo")              # the first contact's note
    told_on_a_terminal(port)
    r = run_five("-p", port, "127.0.0.1", "echo", input=b"piped\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"piped\n", b"")


@pytest.mark.parametrize("transport,name", [((), "%d"), (("--tls",), "%d/tls")],
                         ids=["sealed", "tls"])
def test_a_pin_that_cannot_be_saved_stops_five(fived, sentinel, tmp_path, transport, name):
    """HOME is not there: five cannot pin the server's key, says so, and stops before the
    session; it neither trusts the server unpinned nor makes HOME."""
    s = sentinel("echo")
    f = fived("[service:echo]\nbackend = tcp:127.0.0.1:%d\n" % s.port)
    home = tmp_path / "no-such-home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("FIVE_KNOWN_HOSTS", "FIVE_IDENTITY_FILE")}
    env["HOME"] = str(home)
    pin = ("127.0.0.1:" + name % f.port).encode()
    for command, what in ((("127.0.0.1", "echo"), b"127.0.0.1 echo"),
                          (("list", "127.0.0.1"), b"127.0.0.1")):
        r = run_five(*transport, "-p", str(f.port), *command, input=b"hi", env=env)
        assert (r.returncode, r.stdout) == (1, b""), r.stderr
        assert r.stderr == b"five: %s: system: cannot save the pin for %s in " \
            b"%s/.config/five/known_hosts: No such file or directory\n" % (
                what, pin, str(home).encode())
    assert not home.exists()
    assert s.connections == 0 and f.events("granted") == []
    assert closed_reasons(f, 2) == ["client closed before a request"] * 2


def test_five_does_not_make_a_missing_home(fived, tmp_path):
    """five's identity goes in HOME/.config/five; a HOME that is not there is not made
    (five running as root would make /nonexistent, nobody's HOME)."""
    f = fived(CONFIG)
    home = tmp_path / "no-such-home"
    env = dict(os.environ, HOME=str(home))
    del env["FIVE_IDENTITY_FILE"]
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"hi", env=env)
    assert (r.returncode, r.stdout) == (1, b""), r.stderr
    assert r.stderr.endswith(b": system: cannot keep five's identity in %s/.config/five/"
                             b"identity: No such file or directory\n" % str(home).encode())
    assert not home.exists()


def test_large_binary_transfer(fived):
    f = fived(CONFIG)
    data = os.urandom(8 * 1024 * 1024)
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=data, timeout=60)
    assert r.returncode == 0 and r.stdout == data


def pipelined_request(*options):
    """What a TCPMUX server that answers nothing receives from five --plain OPTIONS
    within a second, when five has a request for web to send."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    proc = subprocess.Popen([FIVE, "--plain", *options, "-p", str(srv.getsockname()[1]),
                             "127.0.0.1", "web"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.stdin.write(b"GET / HTTP/1.0\r\n\r\n")
        proc.stdin.flush()
        srv.settimeout(5 * SLOW)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(1.0 * SLOW)
            got = b""
            while True:
                try:
                    chunk = conn.recv(4096)
                except socket.timeout:
                    break
                if not chunk:
                    break
                got += chunk
        return got
    finally:
        proc.kill()
        proc.wait()
        srv.close()


def test_request_is_pipelined_with_first_bytes(fived, sentinel):
    """five sends the first application bytes right behind the service line, before
    any answer; and they reach the service once."""
    assert pipelined_request() == b"web\r\nGET / HTTP/1.0\r\n\r\n"
    # The control: with -w, five waits for the grant and sends the line alone.
    assert pipelined_request("-w") == b"web\r\n"
    s = sentinel("echo")
    f = fived("[service:web]\nbackend = tcp:127.0.0.1:%d\n" % s.port)
    for transport in ((), ("--plain",)):
        r = run_five(*transport, "-p", str(f.port), "127.0.0.1", "web",
                     input=b"GET / HTTP/1.0\r\n\r\n")
        assert (r.returncode, r.stdout) == (0, b"GET / HTTP/1.0\r\n\r\n"), r.stderr
    wait_for(lambda: len(s.received) == 2)
    assert s.received == [b"GET / HTTP/1.0\r\n\r\n"] * 2


def test_vhost_option(fived):
    f = fived(CONFIG)
    r = run_five("-p", str(f.port), "-H", "alpha", "127.0.0.1", "db", input=b"in vhost")
    assert r.returncode == 0 and r.stdout == b"in vhost"
    r = run_five("-p", str(f.port), "-H", "nowhere", "127.0.0.1", "db", input=b"x")
    assert r.returncode == 5
    assert r.stderr == b"five: 127.0.0.1 db: refused: unknown host\n"


def test_list(fived):
    f = fived(CONFIG)
    r = run_five("-p", str(f.port), "list", "127.0.0.1")
    assert r.returncode == 0 and r.stdout == b"echo\ndaytime\nalpha-db\n"
    r = run_five("-p", str(f.port), "-H", "alpha", "list", "127.0.0.1")
    assert r.stdout == b"db\n"


def test_exit_codes_and_messages(fived):
    f = fived(CONFIG)
    port = str(f.port)
    run_five("-p", port, "127.0.0.1", "echo")
    r = run_five("-p", port, "127.0.0.1", "nosuch")
    assert r.returncode == 5
    assert r.stderr == b"five: 127.0.0.1 nosuch: refused: unknown service\n"
    closed = free_port()
    r = run_five("-p", str(closed), "127.0.0.1", "echo")
    assert r.returncode == 4
    assert r.stderr == b"five: 127.0.0.1 echo: connect: Connection refused " \
        b"(tried 127.0.0.1 port %d)\n" % closed
    r = run_five("-p", port, "no-such-host.invalid", "echo")
    assert r.returncode == 3 and b": resolve: " in r.stderr
    r = run_five("-p", port, "127.0.0.1", "bad/name")
    assert r.returncode == 2 and b"invalid service name" in r.stderr
    r = run_five("127.0.0.1")
    assert r.returncode == 2 and b"usage:" in r.stderr
    r = run_five("-t", "soon", "127.0.0.1", "echo")
    assert r.returncode == 2


def test_port_must_be_a_port_number():
    """-p 70000 would be port 4464 to the resolver, -p notaport a resolver error: both are
    usage errors, and nothing is dialled."""
    wrapped = socket.socket()
    try:
        wrapped.bind(("127.0.0.1", 70000 - 65536))
    except OSError:
        wrapped.close()
        pytest.skip("port 4464 is taken")
    wrapped.listen(1)
    wrapped.setblocking(False)
    for port in ("70000", "notaport", "0", "+5501", "5501 ", ""):
        r = run_five("-t", "1", "-p", port, "127.0.0.1", "echo")
        assert (r.returncode, r.stderr) == \
            (2, b"five: -p: expected a port number, 1 to 65535\n"), port
    with pytest.raises(BlockingIOError):
        wrapped.accept()
    wrapped.close()
    assert libfive("127.0.0.1", "70000", "echo", "x", transport="plain") == \
        b'error usage: invalid port "70000": expected 1 to 65535\n'
    r = run_five("-L", "70000", "127.0.0.1", "echo")
    assert r.returncode == 2 and b"-L 70000: expected [ADDR:]PORT" in r.stderr


@pytest.mark.parametrize("host,hint", [
    ("127.0.0.1:5501", b"give the port with -p 5501"),
    ("localhost:1", b"give the port with -p 1"),
    ("[::1]:5501", b"give the port with -p 5501 and the address without brackets"),
    ("[::1]", b"give the address without brackets"),
])
def test_a_port_in_the_host_is_a_usage_error(host, hint):
    """HOST:PORT is not a host name: five says where the port goes, for every command."""
    for command in ((host, "echo"), ("list", host), ("id", host), ("token", host, "echo")):
        r = run_five("-t", "1", *command)
        assert (r.returncode, r.stderr) == (2, b"five: %s: not a host name; %s\n" % (
            host.encode(), hint)), command


def test_ipv6_addresses_are_not_taken_for_a_port():
    r = run_five("-t", "1", "-p", str(free_port()), "::1", "echo")
    assert r.returncode == 4 and b"(tried ::1 port " in r.stderr


@pytest.mark.parametrize("transport,message", [
    ((), b"protocol: not a sealed handshake message"),
    (("--plain",), b"protocol: not a TCPMUX reply"),
])
def test_protocol_error_from_a_server_that_is_not_fived(transport, message):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    proc = subprocess.Popen([FIVE, *transport, "-p", str(srv.getsockname()[1]), "127.0.0.1",
                             "echo"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    conn, _ = srv.accept()
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 6 and message in err
    conn.close()
    srv.close()


ESCAPES = b"\x1b]0;owned\x07\x1b[2J"


@pytest.mark.parametrize("options,replies", [
    ((), b"- " + ESCAPES + b"\r\n"),
    (("-a", "password", "-l", "alice", "--password-in-clear"),
     b"+ SUCCESS password\r\n+ INFO " + ESCAPES + b"\r\n- denied " + ESCAPES + b"\r\n"),
])
def test_a_hostile_server_cannot_write_to_the_terminal(options, replies):
    """What a server says (a refusal, PAM's INFO) reaches the user with every byte outside
    printable ASCII made '?': a terminal's escape sequences are not passed on."""
    with FakeServer("--plain", *options, "127.0.0.1", "echo") as f:
        f.conn.sendall(replies)
        f.conn.shutdown(socket.SHUT_WR)
        out, err = f.proc.communicate(timeout=10)
    assert f.proc.returncode != 0
    assert b"?]0;owned??[2J" in err and b"\x1b" not in err and b"\x07" not in err, err


def test_no_password_in_the_clear_whatever_the_server_offers():
    """On plain TCPMUX a server in the middle would offer to take a password: five sends
    no AUTH line at all (it refuses before the server can offer anything), says why, and
    exits 5 (refused)."""
    with FakeServer("--plain", "-a", "password", "-l", "alice", "127.0.0.1", "echo") as f:
        f.conn.settimeout(10)
        out, err = f.proc.communicate(timeout=10)
        sent = b""
        while (chunk := f.conn.recv(4096)):
            sent += chunk
    assert f.proc.returncode == 5 and b"no password over plain TCPMUX" in err, err
    assert b"AUTH" not in sent and b"RESPONSE" not in sent, sent


def test_list_shows_only_service_names():
    """LIST's lines that are not service names (a terminal's escape sequences, control
    characters, a command in capitals) are not printed: five prints what it lists."""
    with FakeServer("--plain", "list", "127.0.0.1") as f:
        f.conn.sendall(b"+ LIST\r\necho\r\nev\x1b[31mil\r\n" + ESCAPES + b"\r\ncr\rmid\r\n"
                       b"ev\xc2\x9b31mil\r\nHELP\r\ndb the database\r\n.\r\n")
        f.conn.shutdown(socket.SHUT_WR)
        out, err = f.proc.communicate(timeout=10)
    assert f.proc.returncode == 0, err
    assert out == b"echo\ndb\n"


def test_a_reply_that_trickles_in_is_bounded_by_t():
    """-t bounds each reply, not the silence between its bytes (five(1)): a USP message
    that comes a byte every 0.2 s is given up after 1 s."""
    start = time.monotonic()
    with FakeServer("--plain", "--usp", "-t", "1", "127.0.0.1", "echo") as f:
        trickle = b"{"
        try:
            while f.proc.poll() is None and time.monotonic() - start < 10:
                f.conn.sendall(trickle)
                trickle = b"x"
                time.sleep(0.2)
        except OSError:
            pass
        out, err = f.proc.communicate(timeout=10)
    assert f.proc.returncode == 6 and b"no reply within 1000 ms" in err, err
    assert time.monotonic() - start < 3 * SLOW


class FakeServer:
    """A listening socket of the test's own, five (with args, its port added) run against
    it, and the connection five made: conn, proc."""

    def __init__(self, *args):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.proc = subprocess.Popen([FIVE, "-p", str(self.srv.getsockname()[1]), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.conn, _ = self.srv.accept()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()
        self.srv.close()


@pytest.mark.parametrize("transport,message", [
    ((), b"no handshake reply within 1000 ms"),
    (("--plain",), b"no reply within 1000 ms"),
])
def test_reply_timeout(transport, message):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    start = time.monotonic()
    r = run_five(*transport, "-t", "1", "-p", str(srv.getsockname()[1]), "127.0.0.1", "echo")
    assert r.returncode == 6 and message in r.stderr
    assert time.monotonic() - start < 4 * SLOW
    srv.close()


NSS_WRAPPER = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"


def dual_stack_env(tmp_path):
    """A name with an IPv6 and an IPv4 address, IPv6 first (nss_wrapper)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 dual.test\n127.0.0.1 dual.test\n")
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/sh\n")
    group = tmp_path / "group"
    group.write_text("root:x:0:\n")
    # (Under AddressSanitizer, a preloaded library must be allowed ahead of its runtime.)
    return dict(os.environ, LD_PRELOAD=NSS_WRAPPER, NSS_WRAPPER_HOSTS=str(hosts),
                NSS_WRAPPER_PASSWD=str(passwd), NSS_WRAPPER_GROUP=str(group),
                ASAN_OPTIONS="verify_asan_link_order=0")


def test_every_address_is_tried(fived, tmp_path):
    """dual.test is ::1 then 127.0.0.1; fived listens on IPv4 only: ::1 refuses."""
    need_ipv6_loopback()
    f = fived(CONFIG)
    env = dual_stack_env(tmp_path)
    r = run_five("-p", str(f.port), "dual.test", "echo", input=b"either family", env=env)
    assert r.returncode == 0 and r.stdout == b"either family"
    r = run_five("-6", "-p", str(f.port), "dual.test", "echo", input=b"x", env=env)
    assert r.returncode == 4
    assert r.stderr == b"five: dual.test echo: connect: Connection refused " \
        b"(tried ::1 port %d)\n" % f.port
    closed = free_port()
    r = run_five("-p", str(closed), "dual.test", "echo", input=b"x", env=env)
    assert r.stderr == b"five: dual.test echo: connect: Connection refused " \
        b"(tried ::1 port %d, 127.0.0.1 port %d)\n" % (closed, closed)


def test_refused_names_every_port_tried():
    """Without -p, five tries port 1, then 5501: the message names both."""
    host = "127.0.0.7"
    for port in (1, 5501):
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                pytest.skip("something listens on %s port %d" % (host, port))
    r = run_five(host, "echo")
    assert r.returncode == 4
    assert r.stderr == b"five: 127.0.0.7 echo: connect: Connection refused " \
        b"(tried 127.0.0.7 port 1 and port 5501)\n"


def test_happy_eyeballs_does_not_wait_for_a_silent_address(fived, tmp_path):
    """::1 swallows the SYN (full accept queue): IPv4 starts 250 ms later and wins."""
    need_ipv6_loopback()
    f = fived(CONFIG)
    full = socket.socket(socket.AF_INET6)
    try:
        full.bind(("::1", f.port))
    except OSError as e:
        full.close()
        pytest.skip("cannot bind [::1]:%d, fived's port on IPv4 (%s)" % (f.port, e.strerror or e))
    full.listen(0)
    fillers = []
    for _ in range(4):
        c = socket.socket(socket.AF_INET6)
        c.setblocking(False)
        c.connect_ex(("::1", f.port))
        fillers.append(c)
    time.sleep(0.1)
    start = time.monotonic()
    r = run_five("-p", str(f.port), "dual.test", "echo", input=b"raced",
                 env=dual_stack_env(tmp_path))
    elapsed = time.monotonic() - start
    assert r.returncode == 0 and r.stdout == b"raced"
    assert 0.2 < elapsed < 2 * SLOW, elapsed
    for c in fillers:
        c.close()
    full.close()


def silent_dns():
    """A DNS server on 127.0.0.1:53 that never answers, or a skip when there cannot be one."""
    if os.geteuid() != 0:
        pytest.skip("needs root: port 53, and a mount namespace for resolv.conf")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 53))
    except OSError as e:
        s.close()
        pytest.skip("127.0.0.1:53 is taken: %s" % e)
    return s


def test_name_resolution_keeps_to_the_timeout(tmp_path):
    """With a DNS server that never answers (resolv.conf in a mount namespace of five's own,
    retrying for 30 s), five -t 1 fails resolving after one second."""
    dns = silent_dns()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
    started = time.monotonic()
    try:
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv),
                            FIVE, "-t", "1", "--plain", "-p", "5501", "nowhere.example", "echo"],
                           capture_output=True, timeout=20 * SLOW)
        asked = dns.recv(512)
    finally:
        dns.close()
    assert (r.returncode, r.stderr) == (3, b"five: nowhere.example echo: resolve: "
                                            b"nowhere.example: timed out after 1000 ms\n")
    assert time.monotonic() - started < 5 * SLOW
    assert b"\x07nowhere\x07example" in asked


def echo_at_once(port, n):
    """n connections to an echo forwarder open at once, each echoing its own bytes."""
    conns = [connect(port) for _ in range(n)]
    for i, c in enumerate(conns):
        c.sendall(b"conn %d" % i)
        c.shutdown(socket.SHUT_WR)
    for i, c in enumerate(conns):
        assert recv_all(c) == b"conn %d" % i
        c.close()


def test_local_forwarder(fived, process):
    f = fived(CONFIG)
    port = free_port()
    process([FIVE, "-p", str(f.port), "-L", "127.0.0.1:%d" % port, "127.0.0.1", "echo"])
    wait_port(port)
    # Several connections at once, each a stream of one session (MULTIPLEX).
    echo_at_once(port, 5)
    # (The readiness probe was a stream too.)
    streams = f.events("stream_granted")
    assert len(streams) >= 5 and len({e["session"] for e in streams}) == 1
    assert f.events("granted") == []


def test_local_forwarder_without_multiplex(fived, process):
    f = fived(CONFIG)
    port = free_port()
    process([FIVE, "-p", str(f.port), "--no-multiplex", "-L", str(port), "127.0.0.1", "echo"])
    wait_port(port)
    echo_at_once(port, 3)
    # Each its own session: the readiness probe was one too.
    assert len(f.events("granted")) >= 3 and f.events("stream_granted") == []


def test_an_identity_that_is_a_fifo_is_refused_at_once(fived, tmp_path):
    """five's identity is read only if it is a regular file: a FIFO at its path is
    refused at once, not waited on for a writer."""
    f = fived(CONFIG)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    r = run_five("-p", str(f.port), "127.0.0.1", "echo",
                 env=dict(os.environ, FIVE_IDENTITY_FILE=str(fifo)))
    assert r.returncode != 0 and b"%s: not a regular file" % bytes(fifo) in r.stderr, r.stderr


def test_a_sealed_client_over_the_limit_is_told_why(fived):
    """PROTOCOL.md 2.2: a connection over the server's limits is answered in text before
    any handshake; a sealed five takes that line as the refusal it is (exit 5), not as a
    broken handshake."""
    f = fived(CONFIG, server="max_connections = 1\n")
    with connect(f.port) as held:
        held.sendall(b"echo\r\n")
        assert recv_line(held) == b"+\r\n"
        r = run_five("-p", str(f.port), "127.0.0.1", "echo")
    assert (r.returncode, r.stderr) == (
        5, b"five: 127.0.0.1 echo: refused: too many connections\n"), r.stderr


def refusing(line, trickle=0, hold=0.2):
    """A server that answers every connection with line, then a byte every 0.3 s for
    trickle seconds (a refusal that never ends), and closes hold seconds later."""
    def serve(conn):
        with conn:
            try:
                conn.sendall(line)
                for _ in range(int(trickle / 0.3)):
                    time.sleep(0.3)
                    conn.sendall(b"x")
                time.sleep(hold)
            except OSError:
                pass
    return serve_each(serve)


@pytest.mark.parametrize("transport", [[], ["--tls"]])
@pytest.mark.parametrize("line,said", [(b"-too many connections\r\n", b"too many connections"),
                                       (b"-\r\n", b"refused")])
def test_a_refusal_line_without_its_space_is_still_one(transport, line, said):
    """PROTOCOL.md 2.1: a reply line's space after its sign is optional, and so is its
    text; before a sealed or TLS handshake (6.2, 7.1) "-reason" is the refusal "- reason"
    is, and a bare "-" one too, told at once (the server here closes only later)."""
    lsock = refusing(line, hold=8)
    start = time.monotonic()
    r = run_five(*transport, "-p", str(lsock.getsockname()[1]), "127.0.0.1", "echo")
    elapsed = time.monotonic() - start
    stop_listening(lsock)
    assert (r.returncode, r.stderr) == (
        5, b"five: 127.0.0.1 echo: refused: %s\n" % said), r.stderr
    assert elapsed < 2 * SLOW


@pytest.mark.parametrize("transport", [[], ["--tls"]])
def test_a_server_that_trickles_its_refusal_cannot_hold_five(transport):
    """five(1): -t bounds each reply, not the silence between its bytes: a server that
    sends a refusal line a byte at a time, never ending it, holds a sealed five (which
    tries IK, then XX) or five --tls no longer than -t per attempt."""
    lsock = refusing(b"- ", trickle=12)
    start = time.monotonic()
    r = run_five(*transport, "-t", "1", "-p", str(lsock.getsockname()[1]), "127.0.0.1", "echo")
    elapsed = time.monotonic() - start
    stop_listening(lsock)
    assert r.returncode != 0 and elapsed < 4 * SLOW, (elapsed, r.stderr)


@pytest.mark.parametrize("transport", [[], ["--tls"]])
def test_five_gives_up_at_its_timeout_after_its_input_ended(fived, transport):
    """five(1) -t: a service fived cannot reach within -t (its backend's accept queue is
    full) fails five at -t, its input ended or not: five does not wait again for an end
    of fived's once it has failed."""
    port, fillers = blackhole()
    f = fived(CONFIG + "[service:slow]\nbackend = tcp:127.0.0.1:%d\nconnect_timeout = 8s\n"
              % port)
    start = time.monotonic()
    r = run_five(*transport, "-t", "2", "-p", str(f.port), "127.0.0.1", "slow", input=b"x")
    elapsed = time.monotonic() - start
    for c in fillers:
        c.close()
    assert r.returncode == 6 and b"no reply within 2000 ms" in r.stderr, r.stderr
    assert elapsed < 2.5 + 0.3 * SLOW, elapsed     # waiting again took it to 4 s


def test_local_forwarder_reports_refusals(fived, process, tmp_path):
    f = fived(CONFIG)
    port = free_port()
    errlog = open(tmp_path / "five.err", "wb")
    process([FIVE, "-p", str(f.port), "-L", str(port), "127.0.0.1", "nosuch"], stderr=errlog)
    wait_port(port)
    with connect(port) as c:
        assert recv_all(c) == b""
    wait_for(lambda: b"refused: unknown service" in (tmp_path / "five.err").read_bytes())


def libfive_run(*args, transport=None, env=None):
    env = dict(os.environ, **(env or {}))
    if transport is not None:
        env["LIBFIVE_TRANSPORT"] = transport
    return subprocess.run([os.path.join(HELPERS, "libfive_client"), *args],
                          capture_output=True, timeout=10 * SLOW, env=env)


def libfive(*args, transport=None):
    return libfive_run(*args, transport=transport).stdout


def test_libfive_connect(fived):
    f = fived(CONFIG)
    port = str(f.port)
    # Sealed by default, and a library does not pin keys unless asked to.
    out = libfive("127.0.0.1", port, "echo", "x")
    assert out.startswith(b"error trust: no key pinned for 127.0.0.1:" + port.encode())
    assert libfive("127.0.0.1", port, "echo", "via libfive", transport="tofu") == b"via libfive"
    assert libfive("127.0.0.1", port, "db", "vhost", "alpha") == b"vhost"
    assert libfive("127.0.0.1", port, "echo", "plain", transport="plain") == b"plain"
    key = subprocess.run([FIVED, "--print-key", "-c", str(f.conf)], capture_output=True,
                         text=True).stdout.split()[0]
    os.unlink(os.environ["FIVE_KNOWN_HOSTS"])
    assert libfive("127.0.0.1", port, "echo", "by key", transport=key) == b"by key"
    assert libfive("127.0.0.1", port, "nosuch", "x", transport=key) == \
        b"error refused: unknown service\n"


def test_libfive_pins_only_when_asked_and_says_so(fived, tmp_path):
    """libfive writes no pin unless trust_on_first_use asks for it, and then tells the
    application's notice callback, as it tells it that five's identity was made."""
    f = fived(CONFIG)
    port = str(f.port)
    known_hosts = tmp_path / "config" / "known_hosts"
    identity = tmp_path / "new-identity"
    env = {"FIVE_KNOWN_HOSTS": str(known_hosts), "FIVE_IDENTITY_FILE": str(identity)}
    r = libfive_run("127.0.0.1", port, "echo", "x", env=env)
    assert r.stdout.startswith(b"error trust: no key pinned for 127.0.0.1:%s" % port.encode())
    assert r.stderr == b""
    assert not known_hosts.parent.exists() and not identity.exists()
    r = libfive_run("127.0.0.1", port, "echo", "first", transport="tofu", env=env)
    assert r.stdout == b"first"
    key = subprocess.run([FIVED, "--print-key", "-c", str(f.conf)], capture_output=True,
                         text=True).stdout.split()[0]
    fp = base64.b64encode(hashlib.sha256(base64.b64decode(key)).digest()).rstrip(b"=")
    assert r.stderr.splitlines() == [
        b"notice: five's identity made in %s" % str(identity).encode(),
        b"notice: new host 127.0.0.1:%s, key SHA256:%s, pinned in %s" % (
            port.encode(), fp, str(known_hosts).encode())]
    assert known_hosts.read_text() == "127.0.0.1:%s %s\n" % (port, key)
    r = libfive_run("127.0.0.1", port, "echo", "again", transport="tofu", env=env)
    assert (r.stdout, r.stderr) == (b"again", b"")


def steps(*args, transport=None):
    env = dict(os.environ)
    if transport is not None:
        env["LIBFIVE_TRANSPORT"] = transport
    return subprocess.run([os.path.join(HELPERS, "libfive_steps"), *args],
                          capture_output=True, timeout=10 * SLOW, env=env).stdout


def test_libfive_steps_are_plain_tcpmux_only(fived):
    """five_dial, five_request and five_await make a plain session, and refuse, before a
    connection, a transport they cannot give: nothing goes out in the clear that was to be
    sealed."""
    f = fived(CONFIG)
    port = str(f.port)
    assert steps("127.0.0.1", port, "echo", "step by step") == b"step by step"
    assert steps("127.0.0.1", port, "db", "x") == b"error five_await refused: unknown service\n"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    for transport in ("sealed", "tls"):
        out = steps("127.0.0.1", str(listener.getsockname()[1]), "echo", "secret",
                    transport=transport)
        assert out.startswith(b"error five_dial usage: five_dial is a step of plain TCPMUX")
    listener.settimeout(0.2)
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


TRUNCATED = "client stream truncated"


def closed_reasons(f, count):
    """The reasons of fived's first count "closed" records, once there are that many."""
    wait_for(lambda: len(f.events("closed")) >= count, what="%d closed records" % count)
    return [e["reason"] for e in f.events("closed")]


def five_with_open_stdin(*args):
    """five whose standard input stays open: it ends because the server's side ended."""
    p = subprocess.Popen([FIVE, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.stdout.read(), p.stderr.read()
        p.wait(timeout=10 * SLOW)
    finally:
        p.stdin.close()
    return p.returncode, out, err


@pytest.mark.parametrize("transport", [(), ("--tls",)], ids=["sealed", "tls"])
def test_sessions_end_with_final_not_truncated(fived, transport):
    """Every way five stops ends its stream with FINAL (TLS: close_notify): at the end of
    standard input, after fived's side ended while standard input is still open, on a
    refusal, after list and id. fived logs none of them as truncated."""
    f = fived(CONFIG)
    five = ("--tls",) if transport else ()
    five += ("-p", str(f.port))
    r = run_five(*five, "127.0.0.1", "echo", input=b"hi\n")
    assert (r.returncode, r.stdout) == (0, b"hi\n"), r.stderr
    code, out, _ = five_with_open_stdin(*five, "127.0.0.1", "daytime")
    assert code == 0 and out.endswith(b"-UTC\r\n")
    code, out, err = five_with_open_stdin(*five, "127.0.0.1", "nosuch")
    assert (code, err) == (5, b"five: 127.0.0.1 nosuch: refused: unknown service\n")
    r = run_five(*five, "127.0.0.1", "nosuch")
    assert r.returncode == 5
    r = run_five(*five, "--usp", "127.0.0.1", "nosuch")
    assert r.returncode == 5
    r = run_five(*five, "list", "127.0.0.1")
    assert (r.returncode, r.stdout) == (0, b"echo\ndaytime\nalpha-db\n")
    expected = ["done"] * 2 + ["unknown service"] * 3 + ["closed after reply"]
    if not transport:
        os.unlink(os.environ["FIVE_KNOWN_HOSTS"])
        r = run_five(*five, "id", "127.0.0.1")  # a first contact: a handshake, then the end
        assert r.returncode == 0, r.stderr
        # (after a connection that only learns which port answers)
        expected += ["client closed before a request"] * 2
    assert closed_reasons(f, len(expected)) == expected


class HalfClosing:
    """A backend that answers "ok", ends its side at once, and reads its connection to
    the end: the digest and length of what it read, and whether the end was a reset.
    whole: it closes the connection instead, reading nothing."""

    def __init__(self, whole=False):
        self.whole = whole
        self.got = []
        self.sock = serve_each(self._serve)
        self.port = self.sock.getsockname()[1]

    def _serve(self, conn):
        conn.sendall(b"ok\n")
        if self.whole:
            conn.close()
            return
        conn.shutdown(socket.SHUT_WR)
        h, n, reset = hashlib.sha256(), 0, False
        try:
            while data := conn.recv(65536):
                h.update(data)
                n += len(data)
        except ConnectionResetError:
            reset = True
        self.got.append((h.hexdigest(), n, reset))
        conn.close()


@pytest.mark.parametrize("transport", [(), ("--tls",), ("--plain",), ("--detachable",)],
                         ids=["sealed", "tls", "plain", "detachable"])
def test_an_upload_outlives_the_end_of_the_service_side(fived, transport):
    """five(1): after the service ended its side, five ends its standard output and goes
    on sending standard input while it keeps coming, and ends its own side when it ends: a
    service that half-closes first and still reads gets the whole upload, not part of it
    ended in order."""
    peer = HalfClosing()
    f = fived(CONFIG + "[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % peer.port)
    five = transport + ("-p", str(f.port))
    up = os.urandom(3 * 1024 * 1024)
    p = subprocess.Popen([FIVE, *five, "127.0.0.1", "sink"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ok\n"
    # The service's end reaches five's reader at once (not when five exits), and what
    # follows comes after it, in pieces.
    assert p.stdout.read() == b""
    for i in range(0, len(up), 256 * 1024):
        p.stdin.write(up[i:i + 256 * 1024])
        p.stdin.flush()
        time.sleep(0.05)
    p.stdin.close()
    assert p.wait(timeout=20 * SLOW) == 0, p.stderr.read()
    wait_for(lambda: peer.got, what="the service's end of the upload")
    assert peer.got == [(hashlib.sha256(up).hexdigest(), len(up), False)]
    assert closed_reasons(f, 1) == ["done"]
    stop_listening(peer.sock)


@pytest.mark.parametrize("transport", [(), ("--tls",), ("--plain",)],
                         ids=["sealed", "tls", "plain"])
def test_what_came_before_a_reset_is_written_out(fived, transport):
    """five(1), exit status 4: a stream its service reset fails "after what came before
    the reset was written out", also when the reset comes right behind the bytes: fived
    sends every byte it read from the service before it passes the reset on."""
    down = os.urandom(300000)
    lsock = answer_then_reset(down)
    f = fived(CONFIG + "[service:cut]\nbackend = tcp:127.0.0.1:%d\n" % lsock.getsockname()[1])
    for i in range(3):
        r = run_five(*transport, "-p", str(f.port), "127.0.0.1", "cut", input=b"go")
        assert r.returncode == 4, r.stderr
        closed = wait_for(lambda: len(f.events("closed")) > i and f.events("closed"),
                          what="the session's record")[i]
        assert closed["reason"] == "backend read failed", closed
        assert r.stdout == down[:closed["bytes_out"]], (len(r.stdout), closed)
    stop_listening(lsock)


@pytest.mark.parametrize("transport", [(), ("--plain",)], ids=["sealed", "plain"])
def test_input_a_closed_service_cannot_take_fails(fived, transport):
    """As an upload that outlives the service's end, with a service that closed its
    connection: the input that keeps coming cannot be delivered, and five says so instead
    of ending as if it had been."""
    peer = HalfClosing(whole=True)
    f = fived(CONFIG + "[service:gone]\nbackend = tcp:127.0.0.1:%d\n" % peer.port)
    p = subprocess.Popen([FIVE, *transport, "-p", str(f.port), "127.0.0.1", "gone"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ok\n"
    try:
        for _ in range(100):
            p.stdin.write(b"x" * 65536)
            p.stdin.flush()
            time.sleep(0.02)
    except BrokenPipeError:
        pass
    assert p.wait(timeout=20 * SLOW) == 4
    # (fived's reset may overtake its end of the stream on the way: then five says that.)
    err = p.stderr.read()
    assert re.search(rb"gone: connect: (the service ended and took no more input|"
                     rb"recv: Connection reset by peer)", err), err
    # fived's write takes the reset, or its read: which, the race between them says.
    assert closed_reasons(f, 1)[0] in ("backend write failed", "backend read failed")
    stop_listening(peer.sock)


class Sink:
    """A backend that reads each connection to its end, and records how many bytes came
    and whether the end was a reset; `reading` is set once bytes came."""

    def __init__(self):
        self.got = []
        self.reading = threading.Event()
        self.sock = serve_each(self._serve)
        self.port = self.sock.getsockname()[1]

    def _serve(self, conn):
        n, reset = 0, False
        try:
            while data := conn.recv(65536):
                n += len(data)
                self.reading.set()
        except ConnectionResetError:
            reset = True
        self.got.append((n, reset))
        conn.close()

    def uploads(self):
        """How the connections that carried bytes ended (a readiness probe carries none)."""
        return [reset for n, reset in self.got if n > 0]


def disposition(sig, handler):
    """A preexec_fn that starts a child with sig's disposition handler, whatever the
    tests' own is."""
    return lambda: signal.signal(sig, handler)


@contextlib.contextmanager
def forwarder(argv, **kw):
    """five -L started in a process group of its own, killed with the group if a test
    leaves it running."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    try:
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("transport", [(), ("--plain",), ("--detachable",)],
                         ids=["sealed", "plain", "detachable"])
def test_a_terminated_five_cuts_its_stream_short(fived, transport, sig):
    """five(1): SIGTERM and SIGINT end five as they would, with its stream cut short: the
    service reads a reset at once, never an end in order that would pass part of an upload
    off as all of it (plain text has no end of its own but TCP's; a detachable session
    would otherwise wait, detached, until the detach timeout)."""
    peer = Sink()
    f = fived(CONFIG + "[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % peer.port)
    p = subprocess.Popen([FIVE, *transport, "-p", str(f.port), "127.0.0.1", "sink"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         preexec_fn=disposition(signal.SIGINT, signal.SIG_DFL))
    p.stdin.write(b"x" * 65536)
    p.stdin.flush()
    assert peer.reading.wait(10 * SLOW)
    # The end of input right behind the signal, as Ctrl-C on "producer | five" brings.
    p.send_signal(sig)
    p.stdin.close()
    assert p.wait(timeout=10 * SLOW) == -sig
    wait_for(lambda: peer.uploads(), what="the upload's end")
    assert peer.uploads() == [True]
    stop_listening(peer.sock)


@pytest.mark.parametrize("transport", [(), ("--tls",), ("--plain",)],
                         ids=["sealed", "tls", "plain"])
def test_a_killed_five_cuts_its_stream_short(fived, transport):
    """five killed outright (SIGKILL) mid-upload: the kernel closes its connection, and
    even in plain text, which has no end of its own but TCP's, that close is a reset
    until the session has ended in order: the service reads a reset."""
    peer = Sink()
    f = fived(CONFIG + "[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % peer.port)
    p = subprocess.Popen([FIVE, *transport, "-p", str(f.port), "127.0.0.1", "sink"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(b"x" * 65536)
    p.stdin.flush()
    assert peer.reading.wait(10 * SLOW)
    p.kill()
    assert p.wait(timeout=10 * SLOW) == -signal.SIGKILL
    p.stdin.close()
    wait_for(lambda: peer.uploads(), what="the upload's end")
    assert peer.uploads() == [True]
    stop_listening(peer.sock)


@pytest.mark.parametrize("transport", [(), ("--tls",), ("--plain",)],
                         ids=["sealed", "tls", "plain"])
def test_a_terminated_five_cuts_what_the_service_still_sends(fived, transport):
    """As above once standard input has ended (the end of the upload is sent, FINAL and
    all): what the service still sends is cut, and the service learns so at once, as a
    reset, rather than fived reading it to its end for a five that has gone."""
    sending = threading.Event()
    outcome = []

    def serve(conn):
        while conn.recv(65536):
            pass
        sending.set()
        try:
            for _ in range(100):
                conn.sendall(b"r" * 65536)
                time.sleep(0.05)
            outcome.append("all sent")
        except OSError as e:
            outcome.append(type(e).__name__)
        conn.close()

    lsock = serve_each(serve)
    f = fived(CONFIG + "[service:talk]\nbackend = tcp:127.0.0.1:%d\n" % lsock.getsockname()[1])
    p = subprocess.Popen([FIVE, *transport, "-p", str(f.port), "127.0.0.1", "talk"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"x" * 1000)
    p.stdin.close()
    assert sending.wait(10 * SLOW)
    time.sleep(0.3 * SLOW)
    started = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10 * SLOW) == -signal.SIGTERM
    assert time.monotonic() - started < 1 * SLOW
    wait_for(lambda: outcome, what="the service's sending to end")
    assert outcome != ["all sent"]
    p.stdout.close()
    p.stderr.close()
    stop_listening(lsock)


class Greeting(Sink):
    """A Sink that says hello once bytes came."""

    def _serve(self, conn):
        conn.recv(1)
        conn.sendall(b"hello\n")
        super()._serve(conn)


@pytest.mark.parametrize("pipe", ["default", "ignored"])
@pytest.mark.parametrize("transport", [(), ("--plain",), ("--detachable",)],
                         ids=["sealed", "plain", "detachable"])
def test_a_five_whose_reader_went_away_cuts_its_stream_short(fived, transport, pipe):
    """five | head: once the reader of standard output has gone, the session is cut, and
    the service reads a reset, not the end of an upload that never ended.  SIGPIPE ends
    five as it would; where it is ignored, five says so and exits 1."""
    peer = Greeting()
    f = fived(CONFIG + "[service:greet]\nbackend = tcp:127.0.0.1:%d\n" % peer.port)
    run_five("-p", str(f.port), "list", "127.0.0.1")       # the first contact's note
    read_end, write_end = os.pipe()
    os.close(read_end)
    p = subprocess.Popen([FIVE, *transport, "-p", str(f.port), "127.0.0.1", "greet"],
                         stdin=subprocess.PIPE, stdout=write_end, stderr=subprocess.PIPE,
                         preexec_fn=disposition(signal.SIGPIPE, signal.SIG_IGN
                                                if pipe == "ignored" else signal.SIG_DFL))
    os.close(write_end)
    p.stdin.write(b"part one, ")
    p.stdin.flush()
    if pipe == "default":
        assert p.wait(timeout=10 * SLOW) == -signal.SIGPIPE
        assert p.stderr.read() == b""
    else:
        assert p.wait(timeout=10 * SLOW) == 1
        assert b"writing the output: Broken pipe" in p.stderr.read()
    wait_for(lambda: peer.uploads(), what="the upload's end")
    assert peer.uploads() == [True]
    p.stdin.close()
    p.stderr.close()
    stop_listening(peer.sock)


def test_a_forwarder_opening_its_session_ends_at_a_signal(fived):
    """five -L: a signal ends the forwarder at once also while its multiplexed session is
    being opened (a fived that does not answer), silently, the waiting application
    reset."""
    silent = serve_each(lambda conn: time.sleep(30))
    port = free_port()
    with forwarder([FIVE, "--plain", "-t", "20", "-p", str(silent.getsockname()[1]),
                    "-L", str(port), "127.0.0.1", "echo"], stderr=subprocess.PIPE) as p:
        wait_port(port)
        c = connect(port, timeout=10 * SLOW)
        c.sendall(b"waiting")
        time.sleep(0.5 * SLOW)
        started = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10 * SLOW) == -signal.SIGTERM
        assert time.monotonic() - started < 1 * SLOW
        with pytest.raises(ConnectionResetError):
            c.recv(100)
        c.close()
        assert p.stderr.read() == b""
    stop_listening(silent)


def test_an_ignored_sighup_stays_ignored(fived):
    """nohup five ...: a SIGHUP ignored when five started is ignored still, and the
    session goes on to its end."""
    peer = Sink()
    f = fived(CONFIG + "[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % peer.port)
    p = subprocess.Popen([FIVE, "-p", str(f.port), "127.0.0.1", "sink"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=disposition(signal.SIGHUP, signal.SIG_IGN))
    p.stdin.write(b"x" * 65536)
    p.stdin.flush()
    assert peer.reading.wait(10 * SLOW)
    p.send_signal(signal.SIGHUP)
    time.sleep(0.3 * SLOW)
    assert p.poll() is None
    p.stdin.write(b"y" * 1000)
    p.stdin.close()
    assert p.wait(timeout=10 * SLOW) == 0, p.stderr.read()
    wait_for(lambda: peer.got, what="the upload's end")
    assert peer.got == [(65536 + 1000, False)]
    stop_listening(peer.sock)


def forwarded_upload_cut(fived, forward, end):
    """An upload through five -L (forward: its options) that end(p) ends, with the exit
    status it returns: the application's connection and the service's are reset."""
    peer = Sink()
    f = fived(CONFIG + "[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % peer.port)
    port = free_port()
    with forwarder([FIVE, "-p", str(f.port), *forward, str(port), "127.0.0.1", "sink"],
                   stderr=subprocess.DEVNULL) as p:
        wait_port(port)
        c = connect(port, timeout=10 * SLOW)
        c.sendall(b"x" * 65536)
        assert peer.reading.wait(10 * SLOW)
        status = end(p)
        assert p.wait(timeout=10 * SLOW) == status
        with pytest.raises(ConnectionResetError):
            assert c.recv(1024) == b"", "data from a service that sent none"
            raise AssertionError("the forwarded connection ended in order")
        c.close()
        wait_for(lambda: peer.uploads(), what="the upload's end")
        assert peer.uploads() == [True]
    stop_listening(peer.sock)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
@pytest.mark.parametrize("forward", [("-L",), ("--detachable", "-L"),
                                     ("--plain", "--no-multiplex", "-L")],
                         ids=["multiplexed", "detachable", "plain"])
def test_a_terminated_forwarder_cuts_its_connections_short(fived, forward, sig):
    """As above for five -L: its forwarded connections are reset on both sides, the
    application's and the service's, when a signal ends the forwarder; without
    --multiplex, each connection's own process ends with it."""
    forwarded_upload_cut(fived, forward, lambda p: p.send_signal(sig) or -sig)


@pytest.mark.parametrize("forward", [("-L",), ("--plain", "--no-multiplex", "-L")],
                         ids=["multiplexed", "plain"])
def test_a_killed_forwarder_resets_its_connections(fived, forward):
    """five -L killed outright (SIGKILL, with its per-connection processes): the kernel
    closes its connections, and each resets, the application's and the one to fived, so
    that neither the application nor the service reads a cut stream as a whole one."""
    forwarded_upload_cut(fived, forward,
                         lambda p: os.killpg(p.pid, signal.SIGKILL) or -signal.SIGKILL)


@pytest.mark.parametrize("forward", [("-L",), ("--plain", "--no-multiplex", "-L")],
                         ids=["multiplexed", "plain"])
def test_a_forwarded_connection_is_reset_with_its_stream(fived, process, forward):
    """five -L: a stream its service reset resets the forwarded connection, after what
    came before the reset: the application never reads it as an end in order."""
    down = os.urandom(100000)
    lsock = answer_then_reset(down)
    f = fived(CONFIG + "[service:cut]\nbackend = tcp:127.0.0.1:%d\n" % lsock.getsockname()[1])
    port = free_port()
    process([FIVE, "-p", str(f.port), *forward, str(port), "127.0.0.1", "cut"])
    wait_port(port)
    c = connect(port, timeout=10 * SLOW)
    c.sendall(b"go")
    got = b""
    with pytest.raises(ConnectionResetError):
        while data := c.recv(65536):
            got += data
        raise AssertionError("an end in order after %d bytes" % len(got))
    assert got == down[:len(got)]
    c.close()
    stop_listening(lsock)


def test_libfive_ends_its_sessions_with_final(fived):
    f = fived(CONFIG)
    port = str(f.port)
    assert libfive("127.0.0.1", port, "echo", "via libfive", transport="tofu") == b"via libfive"
    assert libfive("127.0.0.1", port, "daytime", "", transport="tofu").endswith(b"-UTC\r\n")
    assert libfive("127.0.0.1", port, "nosuch", "x", transport="tofu") == \
        b"error refused: unknown service\n"
    assert closed_reasons(f, 3) == ["done", "done", "unknown service"]


@pytest.mark.parametrize("transport", [(), ("--plain",)], ids=["sealed", "plain"])
def test_sighup_ends_five_cleanly_once_its_input_ended(fived, transport):
    """ssh sends SIGHUP to its ProxyCommand as it exits. Once standard input has ended,
    five ends its side of the session as it would have; before, SIGHUP cuts it short, and
    the service sees a reset (plain text has no FINAL: five's connection resets).  Either
    way five then ends by the signal, silently: what the service was still sending was
    cut, and five's reader must not take it for all of it."""
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(2)
    backend.settimeout(5 * SLOW)
    f = fived("[service:hold]\nbackend = tcp:127.0.0.1:%d\n" % backend.getsockname()[1])
    five = [FIVE, *transport, "-p", str(f.port), "127.0.0.1", "hold"]
    run_five("-p", str(f.port), "list", "127.0.0.1")       # the first contact's note
    held = []
    for ended in (False, True):
        p = subprocess.Popen(five, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdin.write(b"sent")
        p.stdin.flush()
        conn, _ = backend.accept()
        held.append(conn)
        conn.settimeout(5 * SLOW)
        assert conn.recv(100) == b"sent"
        if ended:
            p.stdin.close()
            assert conn.recv(100) == b""                       # the end of five's stream
        p.send_signal(signal.SIGHUP)
        assert p.wait(timeout=5 * SLOW) == -signal.SIGHUP
        assert p.stderr.read() == b""
        if not ended:
            with pytest.raises(ConnectionResetError):
                conn.recv(100)
        if not ended:
            p.stdin.close()
        p.stdout.close()
        p.stderr.close()
    for conn in held:
        conn.close()
    backend.close()
    cut = TRUNCATED if not transport else "client read failed"
    assert closed_reasons(f, 3)[1:] == [cut, "done"]


def test_a_killed_five_is_still_a_truncation(fived, sentinel):
    """A sealed five that dies mid-stream sends no FINAL: fived says so, and resets
    the backend rather than ending its stream."""
    s = sentinel("count")
    f = fived("[service:upload]\nbackend = tcp:127.0.0.1:%d\n" % s.port)
    p = subprocess.Popen([FIVE, "-p", str(f.port), "127.0.0.1", "upload"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write(b"the first half")
    p.stdin.flush()
    wait_for(lambda: s.bytes == 14, what="the first half at the backend")
    p.kill()
    p.wait()
    p.stdin.close()
    p.stdout.close()
    assert closed_reasons(f, 1) == [TRUNCATED]


def registered_header(port, *five):
    """The first line register_echo answers a five session with, as a dict."""
    r = run_five(*five, "-p", str(port), "127.0.0.1", "app", input=b"")
    assert r.returncode == 0, r.stderr
    return dict(kv.split("=", 1) for kv in r.stdout.decode().strip().split(" "))


def test_a_registered_application_learns_the_transport(fived, process, tmp_path):
    """fived tells libfive how each client's session was carried (five_identity's encrypted),
    and tells an application that did not ask, one of before the transport, what it always
    told: exactly eight members."""
    control = tmp_path / "control.sock"
    f = fived("[service:app]\nbackend = register\nregister_users = root\n"
              "[service:old]\nbackend = register\nregister_users = root\n",
              server="control_socket = %s\n" % control)
    out = tmp_path / "app.out"
    with open(out, "wb") as fh:
        process([os.path.join(HELPERS, "register_echo"), str(control), "app"], stdout=fh)
        wait_for(lambda: b"registered" in out.read_bytes(), what="registration")
    plain = registered_header(f.port, "--plain")
    assert (plain["encrypted"], plain["stream"]) == ("0", "0")
    assert plain["session"] == f.events("granted")[-1]["session"]
    assert registered_header(f.port)["encrypted"] == "1"
    old = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old.connect(str(control))
    old.send(b"REGISTER old\n")
    assert old.recv(100) == b"+ registered old\n"
    p = subprocess.Popen([FIVE, "-p", str(f.port), "127.0.0.1", "old"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    msg, fds, _, _ = socket.recv_fds(old, 4096, 1)
    for fd in fds:
        os.close(fd)
    p.communicate(timeout=10 * SLOW)
    old.close()
    assert msg.startswith(b"STREAM {") and msg.endswith(b"}\n")
    assert len(fds) == 1
    assert sorted(json.loads(msg[len(b"STREAM "):])) == sorted(
        ["session", "service", "vhost", "identity", "auth_method", "withheld", "remote_addr",
         "remote_port"])
