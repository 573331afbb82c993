"""The overall budget for relayed bytes (relay_memory_max).

Many sessions push at a peer that stops reading: fived's worker stays
within the budget plus a fixed overhead, a session to a fast peer keeps
moving meanwhile, and once the stalled peer reads again every byte
arrives intact.
"""

import hashlib
import os
import re
import selectors
import socket
import ssl
import threading
import time

from conftest import SANITIZED, SLOW, connect, free_port, recv_line, stop_listening, wait_for

MIB = 1024 * 1024
BUDGET = 4 * MIB
SESSIONS = 96
PAYLOAD = 1 * MIB
# What fived may hold beyond the budget: the read chunk in hand, under-pressure reads
# of the sessions caught at the limit, allocator slack.
OVERHEAD = 4 * MIB


def within_budget(grown):
    """AddressSanitizer keeps freed memory in quarantine: its RSS says nothing of the
    budget, and only the rest of each test holds there."""
    if not SANITIZED:
        assert grown < BUDGET + OVERHEAD, grown


class Stall:
    """A TCP backend that accepts and does not read (or, in "push" mode, sends payload
    to every connection and does not read) until told to drain."""

    def __init__(self, path, push=None):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(1024)
        self.push = push
        self.conns = []
        self.sent = []  # digests of what each connection was sent, in push mode
        self.go = threading.Event()  # push mode: start sending
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            # What the kernel holds for a Unix stream is its sender's buffer: keep ours
            # small.  In push mode it keeps its size, so that fived reads whole chunks.
            if self.push is None:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            with self.lock:
                self.conns.append(conn)
            if self.push is not None:
                threading.Thread(target=self._push, args=(conn,), daemon=True).start()

    def _push(self, conn):
        data = self.push()
        with self.lock:
            self.sent.append(hashlib.sha256(data).hexdigest())
        self.go.wait()
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def drain(self, count, timeout):
        """Reads every connection to its end; the digests of what each one carried."""
        wait_for(lambda: len(self.conns) >= count, what="backend connections")
        return read_all(self.conns, timeout)

    def close(self):
        stop_listening(self.sock)
        for c in self.conns:
            c.close()


def read_all(socks, timeout, reader=None):
    """Reads each socket (or reader(sock), for TLS) to its end, all at once; digests."""
    sel = selectors.DefaultSelector()
    hashes = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        hashes[s] = hashlib.sha256()
    open_ = set(socks)
    deadline = time.monotonic() + timeout * SLOW
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                data = reader(s) if reader is not None else s.recv(1 << 20)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            if not data:
                sel.unregister(s)
                open_.discard(s)
                continue
            hashes[s].update(data)
    sel.close()
    assert not open_, "%d streams did not end" % len(open_)
    return sorted(h.hexdigest() for h in hashes.values())


def push_until_stuck(socks, payloads, quiet=1.0, limit=30.0):
    """Sends each payload as far as the socket takes it, until nothing moves for `quiet`
    seconds.  Returns how much of each was sent."""
    sel = selectors.DefaultSelector()
    sent = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_WRITE)
        sent[s] = 0
    last = time.monotonic()
    end = last + limit * SLOW
    while sent and time.monotonic() - last < quiet and time.monotonic() < end:
        for key, _ in sel.select(0.1):
            s = key.fileobj
            try:
                n = s.send(payloads[s][sent[s]:sent[s] + 65536])
            except BlockingIOError:
                continue
            sent[s] += n
            last = time.monotonic()
            if sent[s] == len(payloads[s]):
                sel.unregister(s)
    sel.close()
    return sent


def finish_sending(socks, payloads, sent, timeout):
    """Sends the rest of each payload, then ends each stream."""
    sel = selectors.DefaultSelector()
    for s in socks:
        if sent[s] < len(payloads[s]):
            sel.register(s, selectors.EVENT_WRITE)
        else:
            s.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + timeout * SLOW
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                sent[s] += s.send(payloads[s][sent[s]:sent[s] + 65536])
            except BlockingIOError:
                continue
            if sent[s] == len(payloads[s]):
                sel.unregister(s)
                s.shutdown(socket.SHUT_WR)
    assert not sel.get_map(), "the stalled streams did not move again"
    sel.close()


def fast_round_trip(port, size=4 * MIB, timeout=10.0):
    """An echo session through fived moving size bytes each way; seconds it took."""
    data = os.urandom(size)
    start = time.monotonic()
    with connect(port, timeout=timeout) as c:
        c.sendall(b"fast\r\n")
        assert recv_line(c) == b"+\r\n"
        got = bytearray()

        def reader():
            while len(got) < size:
                chunk = c.recv(1 << 20)
                if not chunk:
                    return
                got.extend(chunk)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        c.sendall(data)
        t.join(timeout * SLOW)
    assert bytes(got) == data, "the fast session did not move while others were held"
    return time.monotonic() - start


def tls_read(s):
    """What a non-blocking TLS socket has now: b"" at its end."""
    out = bytearray()
    while True:
        try:
            data = s.recv(1 << 20)
        except ssl.SSLWantReadError:
            if out:
                return bytes(out)
            raise
        if not data:
            return bytes(out)
        out += data


def stats(f):
    """The relay memory figures of the latest periodic stats line: used, budget, pauses."""
    found = re.findall(r"relay memory (\d+) of (\d+) bytes, (\d+) pauses", f.log())
    return tuple(int(x) for x in found[-1]) if found else None


def config(tmp_path, echo_port, stall):
    return ("[server]\nlisten = tcp:127.0.0.1:0 unix:%s\naudit_log = none\n"
            "max_per_source = 1000\nhandshakes_per_source = 1000\nrelay_memory_max = %d\n"
            "[service:stall]\nbackend = unix:%s\n"
            "[service:fast]\nbackend = tcp:127.0.0.1:%d\n" %
            (tmp_path / "fived.sock", BUDGET, stall.path, echo_port))


def local_connect(tmp_path):
    """A connection to fived's Unix socket: unlike TCP's, the kernel buffers of Unix
    streams do not grow, so fived's own queues fill after a few hundred KiB."""
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(30 * SLOW)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    c.connect(str(tmp_path / "fived.sock"))
    return c


def open_sessions(tmp_path, n):
    socks = []
    for _ in range(n):
        c = local_connect(tmp_path)
        c.sendall(b"stall\r\n")
        socks.append(c)
    for c in socks:
        assert recv_line(c) == b"+\r\n"
    return socks


def test_backend_that_stops_reading_stays_within_the_budget(fived, sentinel, tmp_path):
    echo = sentinel("echo")
    stall = Stall(tmp_path / "stall.sock")
    f = fived(config(tmp_path, echo.port, stall))
    clients = open_sessions(tmp_path, SESSIONS)
    wait_for(lambda: len(stall.conns) >= SESSIONS, what="backend connections")
    base = f.rss_kb()
    payloads = {c: os.urandom(PAYLOAD) for c in clients}
    sent = push_until_stuck(clients, payloads)
    assert all(n < PAYLOAD for n in sent.values()), "the kernel took everything"
    grown = (f.rss_kb() - base) * 1024
    moving = fast_round_trip(f.port)
    print("\nstalled backend: %d sessions pushed %.1f MiB, worker grew %.1f MiB "
          "(budget %.1f MiB); a fast 4 MiB round trip took %.2fs" %
          (SESSIONS, sum(sent.values()) / MIB, grown / MIB, BUDGET / MIB, moving))
    within_budget(grown)
    # The backend reads again: everything arrives, in order, intact.
    done = threading.Thread(target=finish_sending, args=(clients, payloads, sent, 60))
    done.start()
    got = stall.drain(SESSIONS, 60)
    done.join()
    assert got == sorted(hashlib.sha256(p).hexdigest() for p in payloads.values())
    for c in clients:
        c.close()
    stall.close()
    # The periodic stats line says how full the budget is and how often it paused readers.
    line = wait_for(lambda: stats(f), timeout=15, what="the relay memory figures")
    assert line[1] == BUDGET and line[2] > 0, line


def test_clients_that_stop_reading_stay_within_the_budget(fived, sentinel, tmp_path):
    """The other direction, through TLS: what fived encrypts for the client counts too."""
    echo = sentinel("echo")
    stall = Stall(tmp_path / "stall.sock", push=lambda: os.urandom(PAYLOAD))
    f = fived(config(tmp_path, echo.port, stall))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    clients = []
    for _ in range(SESSIONS // 2):
        c = ctx.wrap_socket(local_connect(tmp_path))
        c.sendall(b"stall\r\n")
        clients.append(c)
    for c in clients:
        assert recv_line(c) == b"+\r\n"
    wait_for(lambda: len(stall.sent) >= len(clients), what="backend payloads")
    base = f.rss_kb()
    stall.go.set()
    # The backends push until everything in between is full.
    last, quiet = f.rss_kb(), time.monotonic()
    while time.monotonic() - quiet < 1.5:
        time.sleep(0.25)
        now = f.rss_kb()
        if now > last:
            last, quiet = now, time.monotonic()
    grown = (f.rss_kb() - base) * 1024
    moving = fast_round_trip(f.port)
    print("\nclients not reading (TLS): %d sessions, worker grew %.1f MiB (budget %.1f MiB); "
          "a fast 4 MiB round trip took %.2fs" %
          (len(clients), grown / MIB, BUDGET / MIB, moving))
    within_budget(grown)
    got = read_all(clients, 60, reader=tls_read)
    assert got == sorted(stall.sent)
    for c in clients:
        c.close()
    stall.close()


def test_chargen_holds_to_the_budget(fived):
    """chargen, whose clients never read, stops at the budget as the relay does: its
    output counts in relay_memory_max, and it makes nothing while the budget is over
    (each would otherwise keep a tick's output, 50 KB at its fastest, beyond it)."""
    from test_metrics import scrape, value
    port = free_port()
    f = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = none\nmax_per_source = 100\n"
              "relay_memory_max = 1M\nmetrics_listen = tcp:127.0.0.1:%d\n"
              "[service:chargen]\nbackend = builtin:chargen\nchargen_rate = 1000000\n" % port)
    socks = []
    for _ in range(64):
        c = socket.create_connection(("127.0.0.1", f.port))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(b"chargen\r\n")
        socks.append(c)
    used = 0
    for _ in range(10):
        time.sleep(1)
        used = max(used, value(scrape(("tcp", port)), "fived_relay_budget_used_bytes"))
    assert used <= (1 << 20) + 64 * 4096, used
    for c in socks:
        c.close()
