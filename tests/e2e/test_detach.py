"""DETACHABLE and ATTACH (docs/PROTOCOL.md section 12) against a real fived, spoken by
muxwire, a client written from the document alone.

A detachable session outlives its connection: its streams and their backends stay,
what fived sends meanwhile is kept (within detach_queue_max, backends paused beyond
it, never dropped), and a new connection that shows the ticket goes on where the old
one stopped, with no byte lost or repeated either way.
"""

import hashlib
import os
import socket
import subprocess
import time

import pytest

import muxwire as mw
from conftest import SLOW, connect_from, wait_for
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
