"""Connection limits and bounded memory under backpressure."""

import os
import socket
import time

from conftest import SLOW, connect, exchange, recv_all, recv_line, wait_for

ECHO = "[service:echo]\nbackend = builtin:echo\n"


def test_max_connections(fived):
    f = fived(ECHO, server="max_connections = 3")
    held = [connect(f.port) for _ in range(3)]
    time.sleep(0.1)
    with connect(f.port) as c:
        assert recv_all(c) == b"- too many connections\r\n"
    held[0].close()
    wait_for(lambda: len(f.events("closed")) >= 2, what="slot to free")
    assert exchange(f.port, b"echo\r\nok") == b"+\r\nok"
    for c in held[1:]:
        c.close()


def test_max_per_source(fived):
    f = fived(ECHO, server="max_per_source = 2")
    held = [connect(f.port) for _ in range(2)]
    time.sleep(0.1)
    with connect(f.port) as c:
        assert recv_all(c) == b"- too many connections from your address\r\n"
    refused = f.events("refused")
    assert refused[-1]["reason"] == "too many connections from your address"
    for c in held:
        c.close()


def test_backend_that_never_reads_bounds_memory(fived, sentinel):
    """A client pushing data at a backend that does not read: fived stops reading."""
    s = sentinel("silent")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    f = fived("[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % srv.getsockname()[1])
    base = f.rss_kb()
    with connect(f.port) as c:
        c.sendall(b"sink\r\n")
        conn, _ = srv.accept()  # accepted, never read
        assert recv_line(c) == b"+\r\n"
        c.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                sent += c.send(b"x" * 65536)
            except BlockingIOError:
                time.sleep(0.01)
        grown = f.rss_kb() - base
        conn.close()
    srv.close()
    s.close()
    # Socket buffers absorb some; fived itself holds at most its high-water mark.
    assert sent < 64 * 1024 * 1024
    assert grown < 4 * 1024 * SLOW, grown


def test_client_that_never_reads_bounds_memory(fived):
    """chargen at full speed towards a client that reads nothing."""
    f = fived("[service:chargen]\nbackend = builtin:chargen\nchargen_rate = 1000000\n")
    base = f.rss_kb()
    with connect(f.port) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(b"chargen\r\n")
        time.sleep(2)
        grown = f.rss_kb() - base
    assert grown < 4 * 1024 * SLOW, grown


def test_many_idle_connections_cost_little(fived):
    f = fived(ECHO, server="max_per_source = 1000\nmax_connections = 1000")
    base = f.rss_kb()
    held = []
    for _ in range(300):
        c = connect(f.port)
        c.sendall(b"echo\r\n")
        held.append(c)
    for c in held:
        assert recv_line(c) == b"+\r\n"
    per_session = (f.rss_kb() - base) * 1024 / len(held)
    for c in held:
        c.close()
    assert per_session < 16 * 1024 * SLOW, per_session


def open_fds(f):
    return len(os.listdir("/proc/%d/fd" % f.proc.pid))


def test_sessions_leave_no_descriptors_behind(fived, sentinel):
    s = sentinel("echo")
    f = fived(ECHO + "[service:daytime]\nbackend = builtin:daytime\n"
              "[service:discard]\nbackend = builtin:discard\n"
              "[service:chargen]\nbackend = builtin:chargen\n"
              "[service:tcp]\nbackend = tcp:127.0.0.1:%d\n"
              "[service:prog]\nbackend = exec:/bin/cat\n" % s.port)
    before = open_fds(f)
    for _ in range(10):
        for name in (b"echo", b"daytime", b"discard", b"tcp", b"prog", b"nosuch"):
            exchange(f.port, name + b"\r\nx")
        with connect(f.port) as c:
            c.sendall(b"chargen\r\n")
            c.recv(100)
    wait_for(lambda: open_fds(f) <= before, what="descriptors to be released")
