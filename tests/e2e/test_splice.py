"""Plain relays moved by the kernel (splice = yes) and by fived's own copies (splice =
no, the default): the same bytes both ways, the same half-closes, the same counts, the
same ends."""

import hashlib
import os
import select
import socket
import struct
import threading
import time

import pytest

from conftest import SLOW, connect, free_port, recv_line, serve_each, stop_listening, wait_for
from test_metrics import scrape, value

MIB = 1024 * 1024
UP = 24 * MIB + 12345  # odd sizes: no pipe or chunk boundary falls on the end
DOWN = 20 * MIB + 777
SPLICED = "relay: splice"


class Peer:
    """A backend that sends `down` bytes to each connection, ends its side, and reads
    the connection to its end meanwhile (after `read_after` seconds of reading nothing):
    the digest and count of what it read, and whether the read ended in an error (a
    reset).  down None: it sends nothing, and does not end its side (a send failing
    beside the read would take the reset the read is to see)."""

    def __init__(self, family, path=None, down=b"", read_after=0):
        self.down = down
        self.read_after = read_after
        self.got = []  # (digest, length, reset) per connection, once it ended
        self.conns = []
        sock = socket.socket(family)
        if family == socket.AF_UNIX:
            sock.bind(str(path))
            os.chmod(str(path), 0o666)
            self.spec = "unix:%s" % path
        else:
            sock.bind(("127.0.0.1", 0))
            self.spec = "tcp:127.0.0.1:%d" % sock.getsockname()[1]
        self.sock = serve_each(self._serve, sock)

    def _serve(self, conn):
        self.conns.append(conn)
        if self.down is not None:
            threading.Thread(target=self._send, args=(conn,), daemon=True).start()
        self._read(conn)

    def _send(self, conn):
        try:
            conn.sendall(self.down)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _read(self, conn):
        time.sleep(self.read_after)
        h, n = hashlib.sha256(), 0
        while True:
            try:
                data = conn.recv(1 << 20)
            except OSError:
                data = None
            if not data:
                break
            h.update(data)
            n += len(data)
        self.got.append((h.hexdigest(), n, data is None))

    def close(self):
        stop_listening(self.sock)
        for c in self.conns:
            c.close()


def start(fived, splice, backend, extra=""):
    return fived("[service:s]\nbackend = %s\n%s" % (backend, extra),
                 server="splice = %s" % splice)


def peer_for(kind, tmp_path, down):
    if kind == "unix":
        return Peer(socket.AF_UNIX, tmp_path / "peer.sock", down)
    return Peer(socket.AF_INET, down=down)


def digest_to_end(c):
    """The digest and length of what c reads to its end."""
    h, n = hashlib.sha256(), 0
    while True:
        data = c.recv(1 << 20)
        if not data:
            break
        h.update(data)
        n += len(data)
    return h.hexdigest(), n


def transfer(port, up):
    """Sends up after the request and ends the client's side while reading what comes
    back to its end: the digest and length of what came back."""
    c = connect(port, timeout=10)
    c.sendall(b"s\r\n")
    assert recv_line(c) == b"+\r\n"

    def send():
        c.sendall(up)
        c.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    got = digest_to_end(c)
    t.join(60 * SLOW)
    c.close()
    return got


@pytest.mark.parametrize("kind", ["tcp", "unix"])
@pytest.mark.parametrize("splice", ["yes", "no"])
def test_large_transfer_both_ways_with_half_close(fived, tmp_path, kind, splice):
    up, down = os.urandom(UP), os.urandom(DOWN)
    peer = peer_for(kind, tmp_path, down)
    f = start(fived, splice, peer.spec)
    digest, n = transfer(f.port, up)
    assert (digest, n) == (hashlib.sha256(down).hexdigest(), DOWN)
    wait_for(lambda: peer.got, what="the backend to see the end of the client's stream")
    assert peer.got[0] == (hashlib.sha256(up).hexdigest(), UP, False)
    closed = wait_for(lambda: f.events("closed"), what="the session's record")[0]
    assert (closed["bytes_in"], closed["bytes_out"], closed["reason"]) == (UP, DOWN, "done")
    # Both directions went through the kernel, or neither did.
    spliced = f.log().count(SPLICED)
    assert spliced == (2 if splice == "yes" else 0), f.log()
    peer.close()


@pytest.mark.parametrize("splice", ["yes", "no"])
def test_early_bytes_and_proxy_header_come_first(fived, splice):
    """What the client sent with its request, after the PROXY header, then the rest."""
    peer = Peer(socket.AF_INET, down=b"hello\n")
    f = start(fived, splice, peer.spec, "proxy_protocol = v1\n")
    rest = os.urandom(3 * MIB)
    c = connect(f.port, timeout=30)
    c.sendall(b"s\r\nearly")
    assert recv_line(c) == b"+\r\n"
    assert recv_line(c) == b"hello\n"
    c.sendall(rest)
    c.shutdown(socket.SHUT_WR)
    assert c.recv(1) == b""
    wait_for(lambda: peer.got, what="the backend to see the end of the client's stream")
    header = b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (c.getsockname()[1], f.port)
    expect = header + b"early" + rest
    assert peer.got[0] == (hashlib.sha256(expect).hexdigest(), len(expect), False)
    closed = wait_for(lambda: f.events("closed"), what="the session's record")[0]
    assert (closed["bytes_in"], closed["bytes_out"]) == (len(b"early") + len(rest), 6)
    c.close()
    peer.close()


@pytest.mark.parametrize("splice", ["yes", "no"])
def test_client_reset_resets_the_backend(fived, splice):
    """A client that resets in the middle: the session ends, and the backend's connection
    is reset too, not ended."""
    peer = Peer(socket.AF_INET, down=None)
    f = start(fived, splice, peer.spec)
    c = connect(f.port, timeout=30)
    c.sendall(b"s\r\n")
    assert recv_line(c) == b"+\r\n"
    c.sendall(os.urandom(MIB))
    # Up is spliced once its first 64 KiB are through.
    wait_for(lambda: (f.log().count(SPLICED) == 1) == (splice == "yes") and peer.conns,
             what="the relay")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    closed = wait_for(lambda: f.events("closed"), timeout=10, what="the session's end")[0]
    assert closed["reason"] in ("client read failed", "client write failed",
                                "client stream truncated"), closed
    wait_for(lambda: peer.got, what="the backend's connection to end")
    # A reset, not an end: the backend must not take the upload for a complete one.
    assert peer.got[0][2], (peer.got, closed)
    peer.close()


def test_an_upload_that_ended_in_order_is_not_cut(fived):
    """Both ends gone in order while the client's last bytes still wait for a slow
    backend: the connection hangs up, which is not a reset.  Every upload arrives whole,
    and ends as it should."""
    streams, size = 8, 8 * MIB
    up = os.urandom(size)
    peer = Peer(socket.AF_INET, down=b"answer", read_after=3 * SLOW)
    f = start(fived, "yes", peer.spec)

    def client():
        c = connect(f.port, timeout=60)
        c.sendall(b"s\r\n" + up)
        c.shutdown(socket.SHUT_WR)
        assert digest_to_end(c) == (hashlib.sha256(b"+\r\nanswer").hexdigest(), 9)
        c.close()

    threads = [threading.Thread(target=client) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60 * SLOW)
    wait_for(lambda: len(peer.got) == streams, timeout=30, what="every upload's end")
    assert peer.got == [(hashlib.sha256(up).hexdigest(), size, False)] * streams
    reasons = [r["reason"] for r in f.events("closed")]
    assert reasons == ["done"] * streams, reasons
    peer.close()


class ResettingPeer:
    """A backend that reads `take` bytes of each connection, sends it `down` bytes, then
    resets it, `pause` seconds later."""

    def __init__(self, down, take=0, pause=0.2):
        self.down = down
        self.take = take
        self.pause = pause
        self.sock = serve_each(self._serve)
        self.spec = "tcp:127.0.0.1:%d" % self.sock.getsockname()[1]

    def _serve(self, conn):
        try:
            taken = 0
            while taken < self.take:
                taken += len(conn.recv(65536) or b"x" * self.take)
            if self.down:
                conn.sendall(self.down)
            time.sleep(self.pause * SLOW)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        except OSError:
            pass

    def close(self):
        stop_listening(self.sock)


@pytest.mark.parametrize("pause", [0.2, 0], ids=["later", "at-once"])
@pytest.mark.parametrize("size", [1000, 3 * MIB])
@pytest.mark.parametrize("splice", ["yes", "no"])
def test_backend_reset_resets_the_client(fived, splice, size, pause):
    """fived(8): a stream cut short is never taken for a complete one.  A backend that
    resets after its bytes: the client reads every one fived read, also when the reset
    comes at once behind them (fived writes out what it holds before it passes the reset
    on; the backend's own reset may drop some that had not left it), then a reset, never
    an end of stream (libuv reports a reset that comes with the peer's hang-up as an end;
    fived asks the socket)."""
    down = os.urandom(size)
    # (Its bytes come once fived passed on the client's: the grant went before.)
    peer = ResettingPeer(down, take=2, pause=pause)
    f = start(fived, splice, peer.spec)
    c = connect(f.port, timeout=30)
    c.sendall(b"s\r\ngo")
    got = b""
    with pytest.raises(ConnectionResetError):
        while True:
            data = c.recv(1 << 20)
            assert data, "an end of stream after %d bytes" % len(got)
            got += data
    assert got == (b"+\r\n" + down)[:len(got)]
    closed = wait_for(lambda: f.events("closed"), what="the session's record")[0]
    assert closed["reason"] == "backend read failed", closed
    assert len(got) == 3 + closed["bytes_out"], closed
    if pause > 0:
        assert len(got) == 3 + len(down)
    c.close()
    peer.close()


def upload_until_it_ends(c, size):
    """Sends c up to size bytes until its connection ends, and tells how the end read:
    "reset", "end", or None when a send took the reset first (that tells nothing).  It
    reads before it sends whenever there is something to read, and never blocks in a send:
    a send blocked at the reset would take the reset the test is to see."""
    c.setblocking(False)
    chunk = b"u" * 65536
    sent = 0
    poller = select.poll()
    poller.register(c, select.POLLIN | select.POLLOUT)
    deadline = time.monotonic() + 30 * SLOW
    while time.monotonic() < deadline:
        events = sum(e for _, e in poller.poll(1000))
        if events & (select.POLLIN | select.POLLERR | select.POLLHUP):
            try:
                assert c.recv(65536) == b"", "data from a backend that sent none"
            except ConnectionResetError:
                return "reset"
            return "end"
        if events & select.POLLOUT:
            try:
                sent += c.send(chunk[:size - sent])
            except (ConnectionResetError, BrokenPipeError):
                return None
            if sent == size:
                poller.modify(c, select.POLLIN)
    raise AssertionError("no end after %d bytes" % sent)


@pytest.mark.parametrize("splice", ["yes", "no"])
def test_backend_reset_during_an_upload_resets_the_client(fived, splice):
    """As above, while fived still has the client's bytes to write to the backend: its
    failed write may take the reset's error before its read sees the end, and that end is
    still the reset it is (the connection is closed, where an end in order leaves it
    open).  Four uploads the backend resets part way, each read as a reset (test_privops
    takes the failed write first every time)."""
    peer = ResettingPeer(b"", take=256 * 1024, pause=0)
    f = start(fived, splice, peer.spec)
    seen = []
    for attempt in range(16):
        c = connect(f.port, timeout=30)
        c.sendall(b"s\r\n")
        assert recv_line(c) == b"+\r\n"
        end = upload_until_it_ends(c, 2 * MIB)
        c.close()
        if end is not None:
            seen.append(end)
            if len(seen) == 4:
                break
    assert seen == ["reset"] * 4, seen
    reasons = [e["reason"] for e in wait_for(lambda: len(f.events("closed")) == attempt + 1
                                             and f.events("closed"), what="every record")]
    assert set(reasons) <= {"backend read failed", "backend write failed"}, reasons
    peer.close()


def test_spliced_pipes_keep_to_the_budget(fived):
    """fived.conf(5), relay_memory_max: with splice a full pipe is charged for its
    capacity, and over the budget an empty one is not filled.  Twenty clients that read
    nothing, each offered 4 MiB: the budget's use stays within one pipe of its maximum,
    and every stream arrives whole once read."""
    port = free_port()
    down = os.urandom(4 * MIB)
    peer = Peer(socket.AF_INET, down=down)
    f = fived("[service:s]\nbackend = %s\n" % peer.spec,
              server="splice = yes\nrelay_memory_max = 1M\n"
                     "metrics_listen = tcp:127.0.0.1:%d\n" % port)
    clients = []
    for _ in range(20):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        c.settimeout(60)
        c.connect(("127.0.0.1", f.port))
        c.sendall(b"s\r\n")
        clients.append(c)
    wait_for(lambda: len(peer.conns) == 20, what="twenty streams")
    most = 0
    for _ in range(10):
        time.sleep(0.2 * SLOW)
        used = value(scrape(("tcp", port)), "fived_relay_budget_used_bytes")
        most = max(most, used)
    assert 0 < most <= MIB + 64 * 1024, most
    results = []

    def read(c):
        assert recv_line(c) == b"+\r\n"
        c.shutdown(socket.SHUT_WR)
        results.append(digest_to_end(c))
        c.close()

    threads = [threading.Thread(target=read, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120 * SLOW)
    assert results == [(hashlib.sha256(down).hexdigest(), len(down))] * 20
    peer.close()


@pytest.mark.parametrize("splice", ["yes", "no"])
def test_idle_timeout_ends_a_quiet_spliced_stream(fived, splice):
    peer = Peer(socket.AF_INET, down=None)
    f = start(fived, splice, peer.spec, "idle_timeout = 1s\n")
    c = connect(f.port, timeout=30)
    c.sendall(b"s\r\nabc")
    assert recv_line(c) == b"+\r\n"
    c.sendall(os.urandom(MIB))
    wait_for(lambda: (f.log().count(SPLICED) == 1) == (splice == "yes"), what="the relay")
    closed = wait_for(lambda: f.events("closed"), timeout=10, what="the idle timeout")[0]
    assert closed["reason"] == "idle timeout"
    # Cut short by fived: a reset, not an end of stream.
    with pytest.raises(ConnectionResetError):
        c.recv(1)
    c.close()
    peer.close()


def test_a_short_stream_is_copied_not_spliced(fived):
    """Most sessions are a request and its answer: under 64 KiB each way, fived copies
    them and never makes the pipes (fived.conf(5), splice)."""
    small_up, small_down = os.urandom(64 * 1024 - 1), os.urandom(1000)
    peer = Peer(socket.AF_INET, down=small_down)
    f = start(fived, "yes", peer.spec)
    assert transfer(f.port, small_up) == (hashlib.sha256(small_down).hexdigest(), 1000)
    wait_for(lambda: peer.got, what="the backend to see the end of the client's stream")
    assert peer.got[0] == (hashlib.sha256(small_up).hexdigest(), len(small_up), False)
    closed = wait_for(lambda: f.events("closed"), what="the session's record")[0]
    assert (closed["bytes_in"], closed["bytes_out"]) == (len(small_up), 1000)
    assert SPLICED not in f.log()
    peer.close()


@pytest.mark.parametrize("budget", ["", "relay_memory_max = 1M\n"])
def test_the_switch_waits_for_a_full_queue_to_drain(fived, budget):
    """A client that reads nothing for a while: the backend's bytes fill the client's
    socket and what fived copied waits in its queue (with a small budget, the direction
    is held); once the client reads, the kernel takes over after the queue, and not a
    byte is lost or moved."""
    down = os.urandom(DOWN)
    peer = Peer(socket.AF_INET, down=down)
    f = fived("[service:s]\nbackend = %s\n" % peer.spec, server="splice = yes\n" + budget)
    # A small window from the start (set after the connect, it would shrink one already
    # offered, which stalls loopback TCP): fived's copies queue up behind it.
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    c.settimeout(30)
    c.connect(("127.0.0.1", f.port))
    c.sendall(b"s\r\n")
    wait_for(lambda: peer.conns, what="the backend's connection")
    time.sleep(0.5 * SLOW)
    assert recv_line(c) == b"+\r\n"
    c.shutdown(socket.SHUT_WR)
    got = digest_to_end(c)
    c.close()
    assert got == (hashlib.sha256(down).hexdigest(), DOWN)
    closed = wait_for(lambda: f.events("closed"), what="the session's record")[0]
    assert (closed["bytes_out"], closed["reason"]) == (DOWN, "done")
    assert f.log().count(SPLICED) == 1, f.log()
    peer.close()
