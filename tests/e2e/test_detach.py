"""DETACHABLE and ATTACH (docs/PROTOCOL.md section 12) against a real fived, spoken by
muxwire, a client written from the document alone.

A detachable session outlives its connection: its streams and their backends stay,
what fived sends meanwhile is kept (within detach_queue_max, backends paused beyond
it, never dropped), and a new connection that shows the ticket goes on where the old
one stopped, with no byte lost or repeated either way.
"""

import hashlib
import os
import signal
import socket
import subprocess
import time

import pytest

import muxwire as mw
from conftest import (SLOW, connect, connect_from, exchange, recv_all, recv_line, serve_each,
                      stop_listening, wait_for)
from muxwire import MuxSession, PlainTransport, SealedTransport
from test_multiplex import backend  # noqa: F401  (the fixture)

T = 10 * SLOW
MIB = 1024 * 1024


def start(fived, echo, server="detach_plaintext = yes\n", **kw):
    """fived with an echo service (detach_plaintext by default: most tests are plaintext)."""
    return fived("[service:echo]\n" + echo.service, server=server, **kw)


def detachable_session(f, pipelined=b""):
    """A plaintext framed session, made detachable (its ticket in s.ticket)."""
    s = MuxSession.connect(f.port, timeout=T)
    assert s.enter(pipelined=mw.detachable_frame() + pipelined) == b"+ MULTIPLEX\r\n"
    s.wait(lambda: s.detach_answer is not None, "the DETACHABLE answer")
    assert s.detach_answer[0] == "granted", s.detach_answer
    return s


def plain_to(f, source="127.0.0.1"):
    sock = connect_from(f.port, source) if source != "127.0.0.1" else \
        socket.create_connection(("127.0.0.1", f.port), timeout=T)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return PlainTransport(sock)


def sha(data):
    return hashlib.sha256(bytes(data)).hexdigest()


def test_detach_then_attach_plaintext_loses_nothing(fived, backend):
    """Data both ways around a reset of the connection: after ATTACH every byte the
    echo returns arrives once, in order, and the backend saw each byte once."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    assert s.detach_timeout == 900
    sid = s.open("echo")
    first = os.urandom(300000)
    s.write(sid, first)
    s.read_exact(sid, 1000)
    s.drop_connection("reset")
    wait_for(lambda: f.events("detached"), timeout=T, what="detached")
    second = os.urandom(200000)
    s.stream(sid).out += second           # queued while away: sent after ATTACH
    theirs, timeout, ticket = s.attach(plain_to(f))
    assert timeout == 900 and ticket != s.detach_answer[2]
    got = s.read_exact(sid, len(first) + len(second) - 1000)
    assert sha(first[1000:] + second) == sha(got)
    s.fin(sid)
    assert s.read_all(sid) == b""
    wait_for(lambda: 0 in echo.ended, timeout=T, what="the backend's end")
    assert sha(echo.received[0]) == sha(first + second)
    ids = {r["session"] for r in f.events() if "session" in r and r["event"] != "accepted"}
    attached = f.events("attached")
    assert len(attached) == 1 and attached[0]["session"] == f.events("detachable")[0]["session"]
    assert attached[0]["was_detached"] is True
    assert len(ids) == 1, ids


def attach_raw(f, ticket, received, source="127.0.0.1"):
    """A bare ATTACH on a new plaintext connection: fived's reply line and the socket."""
    c = connect_from(f.port, source)
    c.sendall(mw.attach_line(ticket, received))
    return recv_line(c), c


def detached(f, n=1):
    wait_for(lambda: len(f.events("detached")) >= n, timeout=T, what="detached")


# --- sealed ------------------------------------------------------------------------------


def sealed_transport(f, source="127.0.0.1"):
    from sealwire import SealedClient
    return SealedTransport(SealedClient(f.port, f.server_key(), host="127.0.0.1",
                                        timeout=T))


def test_sealed_detach_and_attach_both_ways_exact(fived, backend):
    """Sealed (detach_plaintext at its default, no): a session broken twice, once by a
    reset and once by a close without FINAL, with a few MiB each way between; every
    byte hashed at both ends."""
    echo = backend("echo")
    f = start(fived, echo, server="")
    s = MuxSession.sealed(f.port, f.server_key(), timeout=T)
    assert s.enter(pipelined=mw.detachable_frame()) == b"+ MULTIPLEX\r\n"
    s.wait(lambda: s.detach_answer is not None, "the answer")
    assert s.detach_answer[0] == "granted"
    sid = s.open("echo")
    sent = bytearray()
    got = bytearray()
    for how in ("reset", "close"):
        chunk = os.urandom(3 * MIB)
        s.write(sid, chunk)
        sent += chunk
        got += s.read(sid, timeout=T)
        s.drop_connection(how)
        s.attach(sealed_transport(f))
    while len(got) < len(sent):
        got += s.read(sid, timeout=T)
    assert sha(got) == sha(sent)
    s.fin(sid)
    assert s.read_all(sid) == b""
    wait_for(lambda: 0 in echo.ended, timeout=T, what="the backend's end")
    assert echo.ended[0] == "eof" and sha(echo.received[0]) == sha(sent)
    assert [r["transport"] for r in f.events("attached")] == ["sealed", "sealed"]
    assert len(f.events("detached")) == 2


def test_plaintext_refused_without_detach_plaintext(fived, backend):
    echo = backend("echo")
    f = start(fived, echo, server="")
    s = MuxSession.connect(f.port, timeout=T)
    s.enter()
    assert s.detachable() == ("refused", mw.NOT_PERMITTED, "encryption required")
    sid = s.open("echo")                     # the session goes on, not detachable
    assert s.send(sid, b"x") is None and s.read_exact(sid, 1) == b"x"
    reply, c = attach_raw(f, os.urandom(48), 0)
    assert reply == b"- encryption required\r\n"


def test_detachable_no(fived, backend):
    echo = backend("echo")
    f = start(fived, echo, server="detachable = no\ndetach_plaintext = yes\n")
    s = MuxSession.connect(f.port, timeout=T)
    s.enter()
    assert s.detachable() == ("refused", mw.NOT_PERMITTED, "not permitted")
    reply, c = attach_raw(f, os.urandom(48), 0)
    assert reply == b"- command not supported\r\n"


def test_max_detachable(fived, backend):
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\nmax_detachable = 2\n")
    a, b = detachable_session(f), detachable_session(f)
    c = MuxSession.connect(f.port, timeout=T)
    c.enter()
    assert c.detachable() == ("refused", mw.DETACH_LIMIT, "too many detachable sessions")
    a.wait_answer(a.open("echo"))    # a stream open: any end is a break
    a.drop_connection("reset")               # detached still counts
    detached(f)
    d = MuxSession.connect(f.port, timeout=T)
    d.enter()
    assert d.detachable()[0] == "refused"
    b.end()                                  # a proper end frees a place
    b.wait_closed()
    wait_for(lambda: f.events("closed"), timeout=T, what="b's end")
    e = MuxSession.connect(f.port, timeout=T)
    e.enter()
    assert e.detachable()[0] == "granted"


# --- protocol errors ------------------------------------------------------------------


@pytest.mark.parametrize("frames,why", [
    (lambda s: [mw.detachable_frame()], "protocol error: second DETACHABLE"),
    (lambda s: [mw.received_frame(s.sent_count + 1)], "protocol error: bad RECEIVED"),
    (lambda s: [mw.received_frame(0)], "protocol error: bad RECEIVED"),
])
def test_protocol_errors_of_detachable_sessions(fived, backend, frames, why):
    """A second DETACHABLE, a RECEIVED above what fived sent or below one before:
    GOAWAY PROTOCOL and the end (not a detach)."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    sid = s.open("echo")
    s.send(sid, os.urandom(1000))
    s.read_exact(sid, 1000)
    s.wait(lambda: s.reported > 0, "our first RECEIVED")
    s.send_received(s.recv_count)            # a first count: fived must not go below it
    for frame in frames(s):
        s.send_raw(frame)
    assert s.wait_goaway()[1:] == (mw.PROTOCOL, why)
    s.wait_closed()
    assert not f.events("detached")


@pytest.mark.parametrize("frame,why", [
    (mw.received_frame(0), "protocol error: bad RECEIVED"),
    (mw.detachable_frame(b"\x00" + bytes(52)), "protocol error: DETACHABLE with a payload"),
    (mw.detachable_frame(b"\x00"), "protocol error: malformed DETACHABLE"),
])
def test_received_or_payload_in_a_session_not_detachable(fived, backend, frame, why):
    echo = backend("echo")
    f = start(fived, echo)
    s = MuxSession.connect(f.port, timeout=T)
    s.enter()
    s.send_raw(frame)
    assert s.wait_goaway()[1:] == (mw.PROTOCOL, why)


# --- detached: queued, paused, ended ----------------------------------------------------


def test_full_queue_pauses_the_backend_and_loses_nothing(fived):
    """A backend that writes 6 MiB at once to a detached session whose copies are
    bounded at 256 KiB: fived stops reading it (it is paused, its socket fills), and
    after ATTACH all 6 MiB arrive, exact."""
    import threading
    payload = os.urandom(6 * MIB)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    progress = {"sent": 0}

    def serve():
        conn, _ = lsock.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        conn.recv(1)                         # the client's go
        view = memoryview(payload)
        while view:
            n = conn.send(view[:65536])
            progress["sent"] += n
            view = view[n:]
        conn.shutdown(socket.SHUT_WR)

    threading.Thread(target=serve, daemon=True).start()
    f = fived("[service:big]\nbackend = tcp:127.0.0.1:%d\n" % lsock.getsockname()[1],
              server="detach_plaintext = yes\ndetach_queue_max = 256K\n")
    s = detachable_session(f)
    sid = s.open("big", data=b"g")
    s.wait_answer(sid)
    s.auto_received = False                  # fived's copies are never dropped now
    s.drop_connection("reset")
    detached(f)
    time.sleep(1.5)
    assert progress["sent"] < 4 * MIB, progress   # paused: not read to its end
    s.auto_received = True
    s.attach(plain_to(f))
    got = s.read_all(sid, timeout=T)
    assert len(got) == len(payload) and sha(got) == sha(payload)
    assert progress["sent"] == len(payload)
    lsock.close()


@pytest.mark.parametrize("end", ["reset", "close"])
def test_detached_sessions_end_at_once_when_stopping(fived, backend, end):
    """SIGTERM takes no new connection, so no detached session can be attached again: one
    detached before ends at once, and so does one whose connection breaks during the
    drain, their backends told as detach_end says; fived stops without waiting for
    drain_timeout."""
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\ndrain_timeout = 60s\n"
              "detach_end = %s\n" % end)
    sessions = [detachable_session(f) for _ in range(2)]
    for s in sessions:
        sid = s.open("echo")
        s.send(sid, b"hello")
        s.read_exact(sid, 5)
    sessions[0].drop_connection("reset")
    detached(f)
    f.proc.send_signal(signal.SIGTERM)
    sessions[1].wait_goaway()
    started = time.monotonic()
    sessions[1].drop_connection("reset")
    assert f.proc.wait(T) == 0
    assert time.monotonic() - started < T
    assert [e["reason"] for e in f.events("closed")] == ["server shutting down"] * 2
    wait_for(lambda: len(echo.ended) == 2, timeout=T, what="the backends' ends")
    assert set(echo.ended.values()) == {"reset" if end == "reset" else "eof"}


def test_detach_end_close_ends_backends_cleanly(fived, backend):
    """detach_end = close: nobody attaches within detach_timeout, the session ends
    ("detach timeout") and the backend sees the end of its input (EOF), not a reset;
    the ticket is then unknown."""
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\ndetach_timeout = 1s\n"
              "detach_end = close\n")
    s = detachable_session(f)
    assert s.detach_timeout == 1
    sid = s.open("echo")
    s.send(sid, b"hello")
    s.read_exact(sid, 5)
    s.drop_connection("reset")
    wait_for(lambda: f.events("closed"), timeout=T, what="the session's end")
    assert f.events("closed")[0]["reason"] == "detach timeout"
    wait_for(lambda: 0 in echo.ended, timeout=T, what="the backend's end")
    assert echo.ended[0] == "eof"
    reply, _ = attach_raw(f, s.ticket, s.recv_count)
    assert reply == b"- unknown session\r\n"


def two_detached(f):
    """Two detachable sessions with a stream to echo each, their connections reset."""
    sessions = [detachable_session(f) for _ in range(2)]
    sids = [s.open("echo") for s in sessions]
    for s in sessions:
        s.drop_connection("reset")
    detached(f, 2)
    return sessions, sids


def attach_back(f, sessions, sids, transport=plain_to):
    """Each session ATTACHes on a new connection (transport(f)), and its stream echoes
    again."""
    for s, sid in zip(sessions, sids):
        s.attach(transport(f))
        s.send(sid, b"back")
        assert s.read_exact(sid, 4) == b"back"
    assert len(f.events("attached")) == len(sessions)


def test_detached_sessions_do_not_keep_their_attach_out(fived, backend):
    """A detached session keeps its place among its source's max_per_source, as its
    streams keep theirs; at the limit, a connection more per detached session is let in,
    to ATTACH only: both come back from the address they left, and a connection for
    anything else is refused as before."""
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\nmax_per_source = 4\n")
    sessions, sids = two_detached(f)
    assert exchange(f.port, b"echo\r\nx") == b"- too many connections from your address\r\n"
    attach_back(f, sessions, sids)


def test_a_refused_connection_gives_its_place_back_at_once(fived, backend):
    """A refused connection gives its place among its source's back as its refusal goes
    out, not once it has lingered (its last reply on its way, while its client keeps the
    connection open): at the limit, the connection more a detached session keeps for its
    ATTACH is free again at once."""
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\nmax_per_source = 2\n")
    s = detachable_session(f)
    sid = s.open("echo")
    s.wait_answer(sid)
    s.drop_connection("reset")
    detached(f)
    with connect(f.port) as refused:
        refused.sendall(b"echo\r\n")
        assert recv_line(refused) == b"- too many connections from your address\r\n"
        s.attach(plain_to(f))
        s.send(sid, b"back")
        assert s.read_exact(sid, 4) == b"back"


def through_balancer(f):
    """A plain connection from the balancer (127.0.0.2), its PROXY header sent."""
    sock = connect_from(f.port, "127.0.0.2")
    sock.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 1111 %d\r\n" % f.port)
    return PlainTransport(sock)


@pytest.mark.parametrize("via", ["direct", "balancer"])
def test_detached_sessions_keep_their_place_among_max_connections(fived, backend, via):
    """As with max_per_source, a detached session keeps its place among max_connections:
    at the limit, a connection more per detached session is let in, to ATTACH only, and
    one for anything else is refused ("too many connections").  Two detached sessions
    with a stream each (streams count too) and two connections yet to make a request
    fill the six places.  From a balancer, such a connection is read for its PROXY
    header first."""
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\nmax_connections = 6\n"
              "proxy_from = 127.0.0.2\n")
    sessions, sids = two_detached(f)
    accepted = len(f.events("accepted"))
    idle = [socket.create_connection(("127.0.0.1", f.port)) for _ in range(2)]
    wait_for(lambda: len(f.events("accepted")) == accepted + 2, timeout=T,
             what="the idle connections")
    assert exchange(f.port, b"echo\r\nx") == b"- too many connections\r\n"
    attach_back(f, sessions, sids, through_balancer if via == "balancer" else plain_to)
    with connect(f.port) as c:            # refused as it is accepted: nothing to send
        assert recv_all(c) == b"- too many connections\r\n"
    for c in idle:
        c.close()


def test_copies_take_at_most_half_the_relay_budget(fived, backend):
    """A detachable session keeps a copy of what it sent until the client acknowledges
    it: clients that never do would hold the whole relay budget in copies (up to
    detach_queue_max each) and stall every session's relay.  Copies take half of it at
    most; a session that is not detachable still moves."""
    def source(conn):
        try:
            while True:
                conn.sendall(b"c" * 65536)
        except OSError:
            pass
    src = serve_each(source)
    echo = backend("echo")
    f = fived("[service:src]\nbackend = tcp:127.0.0.1:%d\n[service:echo]\n%s"
              % (src.getsockname()[1], echo.service),
              server="detach_plaintext = yes\nrelay_memory_max = 8M\ndetach_queue_max = 4M\n")
    hogs = []
    for _ in range(4):
        s = detachable_session(f)
        s.auto_received = False
        for _ in range(2):
            s.grant(s.open("src"), 8 << 20)
        s.grant(0, 16 << 20)
        hogs.append(s)
    time.sleep(2 * SLOW)
    victim = MuxSession.connect(f.port, timeout=T)
    assert victim.enter() == b"+ MULTIPLEX\r\n"
    sid = victim.open("echo")
    data = os.urandom(2 << 20)
    victim.write(sid, data)
    assert victim.read_exact(sid, len(data), timeout=10 * SLOW) == data
    for s in hogs:
        s.close()
    stop_listening(src)


def test_a_proper_end_ends_the_session(fived, backend):
    """A plaintext FIN with no stream open is the proper end of 11.6: no detach."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    s.end()
    s.wait_closed()
    wait_for(lambda: f.events("closed"), timeout=T, what="closed")
    assert not f.events("detached")


# --- ATTACH: where from, with what ---------------------------------------------------


def test_roaming_and_attach_from_address(fived, backend):
    """attach_from = any (the default): a session attaches from 127.0.0.2; with
    attach_from = address that connection is refused (not permitted) and the session
    waits on, to be attached from its own address."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    sid = s.open("echo")
    s.send(sid, b"one")
    s.drop_connection("reset")
    detached(f)
    s.attach(plain_to(f, "127.0.0.2"))
    assert s.read_exact(sid, 3) == b"one"
    wait_for(lambda: f.events("attached"), timeout=T, what="attached")
    assert f.events("attached")[0]["src"] == "127.0.0.2"
    g = start(fived, echo, server="detach_plaintext = yes\nattach_from = address\n",
              name="strict")
    s = detachable_session(g)
    kept = s.open("echo")                    # a stream open: any end is a break
    s.wait_answer(kept)
    s.drop_connection("reset")
    detached(g)
    reply, _ = attach_raw(g, s.ticket, s.recv_count, "127.0.0.2")
    assert reply == b"- not permitted\r\n"
    assert g.events("attach_refused")[0]["reason"] == "not permitted"
    s.attach(plain_to(g))
    sid = s.open("echo")
    s.send(sid, b"two")
    assert s.read_exact(sid, 3) == b"two"


def test_make_before_break(fived, backend):
    """ATTACH while the old connection is still up: the new one takes over at once,
    fived closes the old one, and nothing is lost."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    sid = s.open("echo")
    data = os.urandom(500000)
    s.write(sid, data)
    got = s.read(sid)
    old = s.sock
    s.drop_connection("keep")
    s.attach(plain_to(f))
    while len(got) < len(data):
        got += s.read(sid)
    assert sha(got) == sha(data)
    old.settimeout(T)
    rest = b""
    while True:
        chunk = old.recv(65536)
        if not chunk:
            break
        rest += chunk
    assert f.events("attached")[0]["was_detached"] is False
    assert not f.events("detached")


def test_make_before_break_drops_a_frame_half_read(fived, backend):
    """ATTACH while the old connection is up, with half a frame read from it: that half
    is dropped, as at a break (12.4), and the client's frames sent again from the count
    ATTACHED names (whole frames only) are read from their start: the stream goes on
    exact, with no framing error."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    sid = s.open("echo")
    s.send(sid, b"before")
    assert s.read_exact(sid, 6) == b"before"
    # Half a DATA frame of the client's, on the old connection only.
    s.sock.sendall(mw.data_frame(sid, b"half")[:6])
    time.sleep(0.2)
    s.drop_connection("keep")
    s.attach(plain_to(f))
    s.send(sid, b"after")
    assert s.read_exact(sid, 5) == b"after"
    assert f.events("attached")[0]["was_detached"] is False
    assert b"half" not in b"".join(echo.received.values())


def one_detached(f):
    """A detachable session with a stream to echo open (any end is a break), its
    connection reset."""
    s = detachable_session(f)
    s.wait_answer(s.open("echo"))
    s.drop_connection("reset")
    detached(f)
    return s


def test_wrong_tickets_are_unknown_and_penalized(fived, backend):
    """A wrong secret, a wrong id: "- unknown session", each counted as a failed
    authentication: the next attempt from that source waits first."""
    echo = backend("echo")
    f = start(fived, echo)
    s = one_detached(f)
    wrong_secret = s.ticket[:16] + bytes(32)
    wrong_id = bytes(16) + s.ticket[16:]
    for ticket in (wrong_secret, wrong_id):
        reply, _ = attach_raw(f, ticket, 0)
        assert reply == b"- unknown session\r\n"
    start_at = time.monotonic()
    reply, _ = attach_raw(f, wrong_id, 0)
    assert reply == b"- unknown session\r\n"
    assert time.monotonic() - start_at >= 0.45     # 250 ms doubling: 500 ms after two
    assert [r["reason"] for r in f.events("attach_refused")] == ["unknown session"] * 3
    # The right ticket is taken at once, from that source too: only wrong ones wait.
    start_at = time.monotonic()
    s.attach(plain_to(f))
    assert time.monotonic() - start_at < 0.2 * SLOW


def test_a_malformed_attach_is_told_so_without_a_penalty(fived, backend):
    """12.5: a ticket that is not a ticket's text, or a received count that is not a
    decimal count without leading zeros, makes a malformed line, not a ticket guessed:
    "- invalid ticket" or "- invalid count" (recorded as attach_refused), and no penalty:
    a wrong ticket from that source after them is answered at once, as a first one is."""
    echo = backend("echo")
    f = start(fived, echo)
    s = one_detached(f)
    ticket = mw.ticket_text(s.ticket).encode()
    lines = {b"ATTACH %s= 0\r\n" % ticket[:-1]: b"- invalid ticket\r\n",
             b"ATTACH %s 00\r\n" % ticket: b"- invalid count\r\n",
             b"ATTACH %s -1\r\n" % ticket: b"- invalid count\r\n"}
    for line, reply in lines.items():
        with connect(f.port) as c:
            c.sendall(line)
            assert recv_all(c) == reply
    assert [r["reason"] for r in f.events("attach_refused")] == [
        "invalid ticket", "invalid count", "invalid count"]
    start_at = time.monotonic()
    reply, _ = attach_raw(f, bytes(16) + s.ticket[16:], 0)
    assert reply == b"- unknown session\r\n"
    assert time.monotonic() - start_at < 0.2 * SLOW
    s.attach(plain_to(f))


def test_old_ticket_valid_until_the_first_frame(fived, backend):
    """After "+ ATTACHED" the old ticket stays valid until fived reads the new
    connection's first frame; then only the new one is, and the used one is unknown."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    first = s.ticket
    s.wait_answer(s.open("echo"))    # a stream open: any end is a break
    s.drop_connection("reset")
    detached(f)
    # An ATTACH whose reply is lost: its connection breaks before any frame.
    reply, c = attach_raw(f, first, 0)
    assert reply.startswith(b"+ ATTACHED ")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    detached(f, 2)
    s.attach(plain_to(f), ticket=first)      # the old ticket, once more
    sid = s.open("echo")
    s.send(sid, b"x")
    s.read_exact(sid, 1)
    reply, _ = attach_raw(f, first, 0, "127.0.0.4")
    assert reply == b"- unknown session\r\n"


def test_resume_point_lost_ends_the_session(fived, backend):
    """A received count above what fived sent: "- resume point lost", and the session
    ends (its ticket unknown from then on)."""
    echo = backend("echo")
    f = start(fived, echo)
    s = one_detached(f)
    reply, _ = attach_raw(f, s.ticket, 10 ** 9)
    assert reply == b"- resume point lost\r\n"
    wait_for(lambda: f.events("closed") and any(
        r["reason"] == "resume point lost" for r in f.events("closed")), timeout=T,
        what="the session's end")
    reply, _ = attach_raw(f, s.ticket, 0, "127.0.0.5")
    assert reply == b"- unknown session\r\n"


def test_other_identity_refused(fived, backend, world):
    """A connection that proved another identity cannot attach (not permitted); the
    session's own identity can."""
    from conftest import pubkey_login, recv_line
    keys = world.root / "authorized_keys"
    keys.write_text('principals="alice" %s\nprincipals="bob" %s\n' %
                    (world.public("alice"), world.public("bob")))
    echo = backend("echo")
    f = fived("[service:echo]\n" + echo.service, env=world.fived_env(),
              server="detach_plaintext = yes\nallow_plaintext_pubkey = yes\n"
                     "authorized_keys = %s\n" % keys)
    c = pubkey_login(f, world, "alice")
    s = MuxSession(c, timeout=T)
    s.enter(pipelined=mw.detachable_frame())
    s.wait(lambda: s.detach_answer is not None, "the answer")
    s.wait_answer(s.open("echo"))    # a stream open: any end is a break
    s.drop_connection("reset")
    detached(f)
    bob = pubkey_login(f, world, "bob")
    bob.sendall(mw.attach_line(s.ticket, s.recv_count))
    assert recv_line(bob) == b"- not permitted\r\n"
    alice = pubkey_login(f, world, "alice")
    s.attach(PlainTransport(alice))
    wait_for(lambda: f.events("attached"), timeout=T, what="attached")
    assert f.events("attached")[0]["session"] == f.events("detachable")[0]["session"]


# --- what operators see ---------------------------------------------------------------


def test_fivectl_shows_detached_and_no_ticket_is_logged(fived, backend, tmp_path):
    from test_fivectl import listing
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\nadmin_socket = %s\n" %
              (tmp_path / "admin.sock"))
    s = detachable_session(f)
    sid = s.open("echo")
    s.send(sid, b"x")
    s.read_exact(sid, 1)
    tickets = [s.ticket]
    s.drop_connection("reset")
    detached(f)
    rows = listing(f)["sessions"]
    assert [(r["state"], r["streams"]) for r in rows] == [("detached", 1)], rows
    s.attach(plain_to(f))
    tickets.append(s.ticket)
    s.send(sid, b"y")
    s.read_exact(sid, 1)
    assert [r["state"] for r in listing(f)["sessions"]] == ["multiplex"]
    s.end()
    f.stop()
    text = f.audit.read_text() + f.log()
    for t in tickets:
        for form in (mw.ticket_text(t), t.hex(), mw.ticket_text(t[16:])[:40]):
            assert form not in text


def test_memory_bounded_with_many_detached_sessions(fived):
    """60 detached sessions, each with a backend that never stops writing: the worker's
    memory grows by what detach_queue_max (256K each) and the sockets allow, not by
    what the backends write."""
    written = [0]

    def flood(conn):
        block = b"z" * 65536
        try:
            while True:
                written[0] += conn.send(block)
        except OSError:
            pass

    lsock = serve_each(flood, backlog=128)
    f = fived("[service:flood]\nbackend = tcp:127.0.0.1:%d\n" % lsock.getsockname()[1],
              server="detach_plaintext = yes\ndetach_queue_max = 256K\n"
              "max_per_source = 120\n")
    before = f.rss_kb()
    sessions = []
    for _ in range(60):
        s = detachable_session(f)
        s.open("flood")
        s.auto_received = False
        s.drop_connection("reset")
        sessions.append(s)
    detached(f, 60)
    time.sleep(2)
    at = written[0]
    time.sleep(1)
    grown = f.rss_kb() - before
    assert written[0] - at < 8 * MIB, "backends are not paused"
    # 60 x (256K of copies + a read or two): well under 60 MiB.
    assert grown < 60 * 1024, grown
    stop_listening(lsock)


def test_counts_in_the_middle_of_a_frame(fived, backend):
    """Only whole frames count (12.1): a RECEIVED in the middle of a frame ends the
    session; an ATTACH there is "- resume point lost"."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    sid = s.open("echo")
    s.send(sid, b"hello")
    s.read_exact(sid, 5)
    s.wait(lambda: s.reported == s.recv_count, "our RECEIVED")
    s.send(sid, b"world")
    s.read_exact(sid, 5)                      # one DATA frame of 13 bytes more
    s.send_raw(mw.received_frame(s.recv_count - 3))
    assert s.wait_goaway()[1:] == (mw.PROTOCOL, "protocol error: bad RECEIVED")
    t = detachable_session(f)
    sid = t.open("echo")
    t.send(sid, b"hello")
    t.read_exact(sid, 5)
    t.drop_connection("reset")
    detached(f)
    reply, _ = attach_raw(f, t.ticket, t.recv_count - 3)
    assert reply == b"- resume point lost\r\n"


def test_a_reload_that_turns_detachable_off_keeps_tickets(fived, backend):
    """A session made detachable before a reload to detachable = no can still be
    attached; a ticket of no session is then "- command not supported"."""
    echo = backend("echo")
    f = start(fived, echo)
    s = detachable_session(f)
    sid = s.open("echo")
    s.wait_answer(sid)
    s.drop_connection("reset")
    detached(f)
    f.server += "detachable = no\n"
    f.reload("[service:echo]\n" + echo.service)
    reply, _ = attach_raw(f, os.urandom(48), 0)
    assert reply == b"- command not supported\r\n"
    s.attach(plain_to(f))
    s.send(sid, b"still here")
    assert s.read_exact(sid, 10) == b"still here"


@pytest.mark.parametrize("setting", ["", "detach_plaintext = yes\n"])
def test_a_ticket_sent_in_plaintext_ends_its_session(fived, backend, setting):
    """An ATTACH in plaintext of a sealed session is "- encryption required", and the
    session its ticket names ends: the ticket crossed the network in the clear.  Also
    with detach_plaintext = yes, which is for plaintext sessions: a sealed one is never
    carried on in the clear, its streams with it."""
    echo = backend("echo")
    f = start(fived, echo, server=setting)
    s = MuxSession.sealed(f.port, f.server_key(), timeout=T)
    assert s.enter(pipelined=mw.detachable_frame()) == b"+ MULTIPLEX\r\n"
    s.wait(lambda: s.detach_answer is not None, "the answer")
    sid = s.open("echo")
    s.wait_answer(sid)
    s.drop_connection("reset")
    detached(f)
    reply, _ = attach_raw(f, s.ticket, s.recv_count)
    assert reply == b"- encryption required\r\n"
    wait_for(lambda: any(r["reason"] == "ticket sent in plaintext"
                         for r in f.events("closed")), timeout=T, what="the session's end")
    with pytest.raises(Exception):
        s.attach(sealed_transport(f))


@pytest.mark.parametrize("setting", ["", "detach_end = reset\n"])
def test_detach_timeout_resets_backends(fived, backend, setting):
    """By default and with detach_end = reset: at the detach timeout the backend sees
    a reset, not an end, so that keeping the client's path down cannot pass half an
    upload off as a whole one; the ticket is then unknown."""
    echo = backend("echo")
    f = start(fived, echo, server="detach_plaintext = yes\ndetach_timeout = 1s\n" + setting)
    s = detachable_session(f)
    sid = s.open("echo")
    s.send(sid, b"half an upload")
    s.read_exact(sid, 14)
    s.drop_connection("reset")
    wait_for(lambda: 0 in echo.ended, timeout=T, what="the backend's end")
    assert echo.ended[0] == "reset"
    # The backend is reset before the session's closed record is written.
    wait_for(lambda: f.events("closed"), timeout=T, what="the session's end")
    assert f.events("closed")[0]["reason"] == "detach timeout"
    reply, _ = attach_raw(f, s.ticket, s.recv_count)
    assert reply == b"- unknown session\r\n"


def test_fivectl_names_a_detached_sealed_session_sealed(fived, backend, tmp_path):
    """A detached session is still the session its transport carried: fivectl says
    sealed, not plain, while no connection carries it."""
    from test_fivectl import listing
    echo = backend("echo")
    f = start(fived, echo, server="admin_socket = %s\n" % (tmp_path / "admin.sock"))
    s = MuxSession.sealed(f.port, f.server_key(), timeout=T)
    assert s.enter(pipelined=mw.detachable_frame()) == b"+ MULTIPLEX\r\n"
    s.wait(lambda: s.detach_answer is not None, "the answer")
    s.wait_answer(s.open("echo"))
    s.drop_connection("reset")
    detached(f)
    rows = listing(f)["sessions"]
    assert [(r["state"], r["transport"]) for r in rows] == [("detached", "sealed")], rows
