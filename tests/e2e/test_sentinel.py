"""The invariant: a refused or malformed request delivers nothing to any backend.

A sentinel backend counts every connection and byte it receives.  Every
hostile or broken request below must leave it at zero; the control at the end
shows that the sentinel does count what a granted request sends.
"""

import os
import random
import socket
import time

from conftest import SLOW, connect, exchange, recv_all, wait_for

SENTINEL_CONFIG = """
[service:guarded]
backend = tcp:127.0.0.1:%d
[service:other]
backend = tcp:127.0.0.1:%d
[vhost:inner]
services = guarded
"""


def start(fived, sentinel, **server):
    s = sentinel("echo")
    f = fived(SENTINEL_CONFIG % (s.port, s.port),
              server="request_timeout = 1\nmax_per_source = 200")
    return f, s


def attempts():
    rng = random.Random(5)
    yield b"nosuch\r\nguarded\r\npipelined bytes"
    yield b"guarded\xff\r\nsecret"
    yield b"guard\x00ed\r\n"
    yield b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03guarded\r\n"
    yield b"{\"message\":\"connect\",\"application\":\"guarded\"}\n"
    # USP: a service that does not exist, a token that is not one, a vhost that does
    # not exist, a message that is not JSON, one split by a NUL, one too deep.
    yield b'{"message":"initialize","streams":[{"application":"nosuch"}]}\nbytes'
    yield (b'{"message":"initialize","streams":[{"application":"guarded",'
           b'"token":"v4.public.AAAA"}]}\nbytes')
    yield b'{"message":"initialize","vhost":"nowhere","streams":[{"application":"guarded"}]}\nb'
    yield b'{"message":"initialize","streams":[{"application":"guarded"}\nbytes'
    yield b'{"message":"initialize",\x00"streams":[{"application":"guarded"}]}\nbytes'
    yield b'{"message":"initialize","streams":[{"application":"guarded","x":[[[1]]]}]}\nb'
    yield b'{"message":"initialize","streams":[{"application":"guarded"}]' + b" " * 70000
    yield b"g" * 513 + b"\r\nguarded\r\n"
    yield b"guarded" + b" " * 600 + b"\r\n"
    yield b"HOST nowhere\r\nguarded\r\nbytes"
    yield b"HOST inner\r\nother\r\nbytes"
    yield b"guarded extra\r\nbytes"
    yield b"AUTH\r\nguarded\r\nbytes"
    yield b"\r\nguarded\r\n"
    yield b"LIST\r\n" * 40 + b"guarded\r\n"
    yield b"QUIT\r\nguarded\r\nbytes"
    yield b"HELP\r\nguarded\r\nbytes"
    for _ in range(30):
        yield bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 2000)))
    for _ in range(10):
        # Printable garbage without a line end, then more after it.
        yield bytes(rng.randrange(0x21, 0x7f) for _ in range(600)) + b"\r\nguarded\r\n"


def grants(reply):
    """Whether a reply grants a service anywhere in it: a "+" line of the text dialect
    (after other commands' answers too), or USP's connect."""
    return b"+" in reply.split(b"\r\n") or b'"message":"connect"' in reply


def test_refused_and_malformed_requests_deliver_nothing(fived, sentinel):
    f, s = start(fived, sentinel)
    for data in attempts():
        with connect(f.port) as c:
            c.sendall(data)
            reply = recv_all(c)
        assert not grants(reply), (data[:40], reply)
    assert s.connections == 0 and s.bytes == 0


def test_slow_clients_that_never_finish(fived, sentinel):
    f, s = start(fived, sentinel)
    clients = []
    for i in range(20):
        c = connect(f.port)
        c.sendall(b"guard")
        clients.append(c)
    start_time = time.monotonic()
    for c in clients:
        assert recv_all(c) == b"- request timeout\r\n"
        c.close()
    assert time.monotonic() - start_time < 4 * SLOW
    assert s.connections == 0 and s.bytes == 0


def test_trickled_bytes_then_garbage(fived, sentinel):
    f, s = start(fived, sentinel)
    with connect(f.port) as c:
        for b in b"guar":
            c.send(bytes([b]))
            time.sleep(0.05)
        c.send(b"\x80ded\r\nsecret")
        assert recv_all(c) == b"- invalid character in request\r\n"
    assert s.connections == 0 and s.bytes == 0


def test_client_that_vanishes_mid_request(fived, sentinel):
    f, s = start(fived, sentinel)
    for _ in range(20):
        c = connect(f.port)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.send(b"guarded")
        c.close()  # reset, never finishing the line
    time.sleep(0.3)
    assert s.connections == 0 and s.bytes == 0
    # fived is still serving.
    assert exchange(f.port, b"nosuch\r\n", shut=False) == b"- unknown service\r\n"


def test_control_granted_request_is_counted(fived, sentinel):
    f, s = start(fived, sentinel)
    assert exchange(f.port, b"guarded\r\n12345") == b"+\r\n12345"
    wait_for(lambda: s.bytes == 5, what="sentinel to count")
    assert s.connections == 1
