"""Connection limits and bounded memory under backpressure."""

import errno
import multiprocessing
import os
import selectors
import socket
import struct
import time

from conftest import SLOW, connect, connect_from, exchange, recv_all, recv_line, wait_for

ECHO = "[service:echo]\nbackend = builtin:echo\n"


def test_max_connections(fived):
    """Full of sessions past their request: a new connection is refused."""
    f = fived(ECHO, server="max_connections = 3")
    held = [connect(f.port) for _ in range(3)]
    for c in held:
        c.sendall(b"echo\r\n")
        assert recv_line(c) == b"+\r\n"
    with connect(f.port) as c:
        assert recv_all(c) == b"- too many connections\r\n"
    held[0].close()
    wait_for(lambda: len(f.events("closed")) >= 2, what="slot to free")
    assert exchange(f.port, b"echo\r\nok") == b"+\r\nok"
    for c in held[1:]:
        c.close()


def test_full_of_waiting_connections_the_busiest_source_makes_room(fived):
    """At the limit, the oldest waiting connection of the source with the most
    waiting connections goes, however young: not the one of a source with fewer."""
    f = fived(ECHO, server="max_connections = 4")
    mine = connect_from(f.port, "127.0.0.2")          # the oldest, but alone at its address
    busy = [connect_from(f.port, "127.0.0.3") for _ in range(3)]
    wait_for(lambda: len(f.events("accepted")) == 4, what="the connections")
    with connect(f.port) as c:
        c.sendall(b"echo\r\nin")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"+\r\nin"
    assert recv_all(busy[0]) == b"- server busy\r\n"
    mine.sendall(b"echo\r\nstill here")
    mine.shutdown(socket.SHUT_WR)
    assert recv_all(mine) == b"+\r\nstill here"
    for c in busy:
        c.close()


class IdleFlood:
    """Connections that send nothing, from many loopback addresses, up to
    `hold` of them at once: each one the server closes is opened again at
    once (a new connection from the next address), as bench/benchtool's
    "idle" flood does.  It runs in a process of its own, so that it does not
    compete with the test's own client for the interpreter."""

    def __init__(self, port, sources, hold, in_flight=16):
        ctx = multiprocessing.get_context("fork")
        self.opened = ctx.Value("q", 0)
        self.closed_by_server = ctx.Value("q", 0)
        self.stopping = ctx.Event()
        self.proc = ctx.Process(target=self._run, args=(port, sources, hold, in_flight),
                                daemon=True)
        self.proc.start()

    def _run(self, port, sources, hold, in_flight):
        sel = selectors.DefaultSelector()
        live = connecting = turn = 0
        while not self.stopping.is_set():
            while connecting < in_flight and live + connecting < hold:
                s = socket.socket()
                s.setblocking(False)
                s.bind((sources[turn % len(sources)], 0))
                turn += 1
                if s.connect_ex(("127.0.0.1", port)) not in (0, errno.EINPROGRESS):
                    s.close()
                    continue
                sel.register(s, selectors.EVENT_WRITE, "connecting")
                connecting += 1
                self.opened.value += 1
            for key, _ in sel.select(0.01):
                s = key.fileobj
                if key.data == "connecting":
                    connecting -= 1
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        sel.modify(s, selectors.EVENT_READ, "held")
                        live += 1
                        continue
                else:
                    # Whatever comes (a refusal, an end of stream, a reset): it is over.
                    live -= 1
                    self.closed_by_server.value += 1
                sel.unregister(s)
                s.close()

    def stop(self):
        self.stopping.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def legit_try(port, timeout):
    """A client that connects and sends its request at once: True when served."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            c.sendall(b"echo\r\nping")
            c.shutdown(socket.SHUT_WR)
            return recv_all(c) == b"+\r\nping"
    except OSError:
        return False


def test_idle_flood_from_many_addresses_leaves_room(fived):
    """Three times max_connections of idle connections from 25 addresses, each
    one the server closes opened again at once: every waiting connection stays
    young, so evicting the oldest only once it is half a second old left
    legitimate clients out most of the time.  Going by source, a client that
    sends its request at once is served."""
    f = fived(ECHO, server="max_connections = 50")
    sources = ["127.9.%d.%d" % (i // 200, 1 + i % 200) for i in range(25)]
    flood = IdleFlood(f.port, sources, hold=150)
    try:
        wait_for(lambda: flood.closed_by_server.value > 200, timeout=10,
                 what="the flood to fill the server")
        tries = 100
        ok = 0
        for _ in range(tries):
            ok += legit_try(f.port, 2 * SLOW)
            time.sleep(0.02)
    finally:
        flood.stop()
    assert ok >= 0.99 * tries, "%d of %d served (flood: %d opened, %d closed by fived)" % (
        ok, tries, flood.opened.value, flood.closed_by_server.value)


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


def fill_until_stalled(c, seconds=2):
    """Sends from c until fived stops reading it (its backend does not read)."""
    c.setblocking(False)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c.send(b"x" * 65536)
        except BlockingIOError:
            time.sleep(0.01)
    c.setblocking(True)


def test_a_reset_client_of_a_stalled_backend_ends_its_session(fived):
    """PROTOCOL.md 2.11: the session ends "when either side resets". A client that is not
    being read (its backend is behind) is still seen to reset, within seconds, and its
    backend is reset in turn; a client that only ended its side is left to wait."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(2)
    f = fived("[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % srv.getsockname()[1])
    ended, reset = connect(f.port), connect(f.port)
    backends = []
    for c in (ended, reset):
        c.sendall(b"sink\r\n")
        backends.append(srv.accept()[0])     # accepted, never read
        assert recv_line(c) == b"+\r\n"
        fill_until_stalled(c)
    ended.shutdown(socket.SHUT_WR)
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()
    wait_for(lambda: len(f.events("closed")) == 1, what="the reset one")
    assert [e["reason"] for e in f.events("closed")] == ["client stream truncated"]
    time.sleep(2)
    assert len(f.events("closed")) == 1          # the one that ended its side waits
    ended.close()
    for b in backends:
        b.close()
    srv.close()



def test_a_client_that_ended_its_side_and_then_reset_ends_its_session(fived):
    """A client that ended its side in order is no longer read; if it then resets, its
    session ends within seconds ("client stream truncated") and its backend, which read
    the whole upload and is silent, is reset in turn rather than left waiting for a
    reader that is gone."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    f = fived("[service:sink]\nbackend = tcp:127.0.0.1:%d\n" % srv.getsockname()[1])
    c = connect(f.port)
    c.sendall(b"sink\r\nall of it")
    backend = srv.accept()[0]
    assert recv_line(c) == b"+\r\n"
    c.shutdown(socket.SHUT_WR)
    assert recv_all(backend) == b"all of it"      # the whole upload, then its end
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    wait_for(lambda: len(f.events("closed")) == 1, what="the session's end")
    assert [e["reason"] for e in f.events("closed")] == ["client stream truncated"]
    # It had our end already (recv says no more): the reset shows as its pending error,
    # EPIPE for a connection whose peer had ended its side.
    wait_for(lambda: backend.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.EPIPE,
             what="the backend's reset")
    backend.close()


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
