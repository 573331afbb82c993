"""muxwire (tests/e2e/muxwire.py) against docs/PROTOCOL.md section 11 itself, with
no fived: frames as bytes written out by hand, the example of 11.9, every error
of 11.7 that bytes can express, and MuxSession against a scripted peer on a
socket pair (PINGs answered, windows kept both ways)."""

import socket
import struct
import threading

import pytest

import muxwire as mw
from muxwire import (ACCEPT, DATA, FIN, GOAWAY, OPEN, PING, RST, WINDOW, Decoder, Frame,
                     MuxSession, Rules, Violation, decode_all, encode, header)


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


# --- frames (11.2) ---------------------------------------------------------------------


def test_every_type_round_trips():
    frames = [
        mw.data_frame(1, b"x" * 16384),
        mw.open_frame(3, "echo", "alpha.example", b"v4.public.t", b"first"),
        mw.open_frame(5, "s" * 64, "v" * 253, b"t" * 2048),
        mw.accept_frame(7),
        mw.window_frame(0, 1),
        mw.window_frame(9, 2 ** 31 - 1),
        mw.fin_frame(11),
        mw.rst_frame(13, mw.REFUSED, "not permitted"),
        mw.rst_frame(13, mw.RESET),
        mw.ping_frame(b"12345678"),
        mw.ping_frame(b"12345678", ack=True),
        mw.goaway_frame(15, mw.PROTOCOL, "protocol error: frame too long"),
        mw.goaway_frame(0, mw.NORMAL),
    ]
    decoded = decode_all(b"".join(frames))
    assert [f.encode() for f in decoded] == frames
    # Fed a byte at a time, the same frames come out.
    d = Decoder()
    out = []
    for b in b"".join(frames):
        out += d.feed(bytes([b]))
    assert out == decoded and d.partial == 0
    o = mw.parse_open(decoded[1].payload)
    assert o == (b"echo", b"alpha.example", b"v4.public.t", b"first")
    assert mw.parse_window(decoded[5].payload) == 2 ** 31 - 1
    assert mw.parse_rst(decoded[7].payload) == (1, "not permitted")
    assert mw.parse_goaway(decoded[11].payload) == (15, 1, "protocol error: frame too long")


def test_header_layout_is_big_endian():
    assert mw.data_frame(0x01020304, b"ab") == h("01020304 00 00 0002") + b"ab"
    assert mw.window_frame(0, 0x40000) == h("00000000 03 00 0004 00040000")
    assert mw.ping_frame(b"ABCDEFGH", ack=True) == h("00000000 06 01 0008") + b"ABCDEFGH"
    assert mw.goaway_frame(7, 2, "idle timeout") == \
        h("00000000 07 00 0011 00000007 02") + b"idle timeout"


# --- the example of 11.9 -----------------------------------------------------------------

EXAMPLE_CLIENT = (b"MULTIPLEX\r\n" +
                  h("00000001 01 00 000d 04") + b"echo" + h("00 0000") + b"hello")
PING_BYTES = b"\x01\x02\x03\x04\x05\x06\x07\x08"
EXAMPLE_SERVER = (b"+ MULTIPLEX\r\n" + h("00000000 06 00 0008") + PING_BYTES +
                  h("00000001 02 00 0000") + h("00000001 00 00 0005") + b"hello")
EXAMPLE_CLIENT_2 = (h("00000000 06 01 0008") + PING_BYTES +
                    h("00000003 01 00 000a 06") + b"secret" + h("00 0000"))
EXAMPLE_SERVER_2 = h("00000003 05 00 000e 01") + b"not permitted"
EXAMPLE_CLIENT_3 = h("00000001 04 00 0000")
EXAMPLE_SERVER_3 = h("00000001 04 00 0000")


def test_example_of_11_9_as_bytes():
    assert EXAMPLE_CLIENT == b"MULTIPLEX\r\n" + mw.open_frame(1, "echo", data=b"hello")
    assert decode_all(EXAMPLE_SERVER[len(b"+ MULTIPLEX\r\n"):]) == [
        Frame(0, PING, 0, PING_BYTES), Frame(1, ACCEPT, 0, b""), Frame(1, DATA, 0, b"hello")]
    assert decode_all(EXAMPLE_CLIENT_2) == [
        Frame(0, PING, 1, PING_BYTES), Frame(3, OPEN, 0, mw.open_payload("secret"))]
    assert decode_all(EXAMPLE_SERVER_2) == [Frame(3, RST, 0, b"\x01not permitted")]
    # Both sides' rules accept the whole exchange.
    server_view, client_view = Rules("client"), Rules("server")
    for f in decode_all(EXAMPLE_CLIENT[11:] + EXAMPLE_CLIENT_2 + EXAMPLE_CLIENT_3):
        assert server_view.check(f) is not None
        if f.type == OPEN:
            client_view.opened_by_client(f.stream, len(mw.parse_open(f.payload).data))
    for f in decode_all(EXAMPLE_SERVER[13:] + EXAMPLE_SERVER_2 + EXAMPLE_SERVER_3):
        assert client_view.check(f) is not None


class Peer:
    """A scripted fived on the other end of a socket pair: reads frames, checking
    them with the server's rules, and writes what the script says."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(5)
        self.raw = bytearray()
        self.dec = Decoder()
        self.rules = Rules("client")
        self.pending = []

    def read_bytes(self, n):
        while len(self.raw) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "client closed"
            self.raw += chunk
        out = bytes(self.raw[:n])
        del self.raw[:n]
        return out

    def frame(self):
        while not self.pending:
            if self.raw:
                data = bytes(self.raw)
                self.raw.clear()
            else:
                data = self.sock.recv(65536)
                assert data, "client closed"
            self.pending += self.dec.feed(data)
        f = self.pending.pop(0)
        return self.rules.check(f)


def run_peer(script):
    a, b = socket.socketpair()
    errors = []

    def body():
        try:
            script(Peer(b))
        except Exception as e:   # reported by the test's thread
            errors.append(e)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return a, b, t, errors


def test_mux_session_plays_the_example_of_11_9():
    seen = []

    def script(p):
        seen.append(p.read_bytes(len(EXAMPLE_CLIENT)))
        p.sock.sendall(EXAMPLE_SERVER)
        seen.append(p.read_bytes(len(EXAMPLE_CLIENT_2)))
        p.sock.sendall(EXAMPLE_SERVER_2)
        seen.append(p.read_bytes(len(EXAMPLE_CLIENT_3)))
        p.sock.sendall(EXAMPLE_SERVER_3)

    a, b, t, errors = run_peer(script)
    s = MuxSession(a, timeout=5)
    first = s.open_frame_for("echo", data=b"hello")
    assert s.enter(pipelined=first) == b"+ MULTIPLEX\r\n"
    assert s.wait_answer(1) == ("ACCEPT", None, None)
    assert [s.next_frame() for _ in range(3)] == [
        Frame(0, PING, 0, PING_BYTES), Frame(1, ACCEPT, 0, b""), Frame(1, DATA, 0, b"hello")]
    assert s.read(1) == b"hello"
    s.wait(lambda: s.pings == [PING_BYTES], "the PING")
    assert s.wait_answer(s.open("secret")) == ("RST", mw.REFUSED, "not permitted")
    s.fin(1)
    assert s.read_all(1) == b""
    t.join(5)
    assert not errors, errors
    assert seen == [EXAMPLE_CLIENT, EXAMPLE_CLIENT_2, EXAMPLE_CLIENT_3]
    a.close()
    b.close()


# --- MuxSession keeps the windows (11.4) ------------------------------------------------


def test_mux_session_sends_only_within_the_windows():
    got = {}
    credit_given = threading.Event()

    def script(p):
        assert p.read_bytes(11) == b"MULTIPLEX\r\n"
        p.sock.sendall(b"+ MULTIPLEX\r\n")
        total = 0
        f = p.frame()
        assert f.type == OPEN
        p.sock.sendall(mw.accept_frame(1))
        # Without credit, exactly one stream window arrives.
        p.sock.settimeout(0.5)
        try:
            while True:
                f = p.frame()
                assert f.type == DATA
                total += len(f.payload)
        except socket.timeout:
            pass
        got["first"] = total
        p.sock.settimeout(5)
        p.sock.sendall(mw.window_frame(1, 100000))
        credit_given.set()
        p.rules.credit(1, 100000)
        while total < got["first"] + 100000:
            f = p.frame()
            total += len(f.payload)
        got["second"] = total
        # The session window (1 MiB) binds too: a large stream credit is not enough.
        p.sock.sendall(mw.window_frame(1, 2000000))
        p.rules.credit(1, 2000000)
        p.sock.settimeout(0.5)
        try:
            while True:
                f = p.frame()
                total += len(f.payload)
        except socket.timeout:
            pass
        got["third"] = total

    a, b, t, errors = run_peer(script)
    s = MuxSession(a, timeout=5)
    s.enter()
    sid = s.open("sink", data=b"")
    s.write(sid, b"z" * (3 << 20))
    s.wait(lambda: credit_given.is_set() and not t.is_alive() or errors, "the peer", 8)
    t.join(5)
    assert not errors, errors
    assert got == {"first": 262144, "second": 362144, "third": 1048576}
    a.close()
    b.close()


def test_mux_session_gives_credit_as_the_test_reads():
    def script(p):
        p.read_bytes(11)
        p.sock.sendall(b"+ MULTIPLEX\r\n")
        assert p.frame().type == OPEN
        p.sock.sendall(mw.accept_frame(1) + b"".join(
            mw.data_frame(1, b"d" * 16384) for _ in range(16)))
        credits = []
        while sum(c for _, c in credits) < 2 * 262144:
            f = p.frame()
            if f.type == PING:
                continue
            assert f.type == WINDOW, f
            credits.append((f.stream, mw.parse_window(f.payload)))
        p.sock.sendall(mw.ping_frame(b"pingpong"))
        f = p.frame()
        assert f == Frame(0, PING, mw.ACK, b"pingpong"), f
        seen.extend(credits)

    seen = []
    a, b, t, errors = run_peer(script)
    s = MuxSession(a, timeout=5)
    s.enter()
    sid = s.open("src", credit="read")
    s.wait(lambda: s.stream(sid).received == 262144, "a full window")
    s.run_for(0.2)
    assert s.outbuf == b""
    s.read_exact(sid, 131071)
    s.run_for(0.1)
    s.read_exact(sid, 131073)
    s.wait(lambda: not t.is_alive(), "the peer's PING answered")
    assert not errors, errors
    # The session's credit as the bytes arrive; the stream's nothing after 131071 bytes
    # read (less than half its window), then all of it back.
    assert seen == [(0, 262144), (1, 262144)]
    a.close()
    b.close()


def test_mux_session_reports_a_peer_beyond_its_window():
    def script(p):
        p.read_bytes(11)
        p.sock.sendall(b"+ MULTIPLEX\r\n")
        p.frame()
        p.sock.sendall(mw.accept_frame(1) + b"".join(
            mw.data_frame(1, b"d" * 16384) for _ in range(16)) + mw.data_frame(1, b"!"))

    a, b, t, errors = run_peer(script)
    s = MuxSession(a, timeout=5)
    s.enter()
    s.open("src", credit="never")
    with pytest.raises(Violation, match="data beyond the window"):
        s.wait(lambda: False, "the violation")
    a.close()
    b.close()


# --- every error of 11.7 that bytes can express --------------------------------------


def opened(*sids):
    r = Rules("client")
    for sid in sids:
        r.check(Frame(sid, OPEN, 0, mw.open_payload("echo")))
    return r


def violates(frames_bytes, rules=None, match=None):
    rules = rules or Rules("client")
    with pytest.raises(Violation) as e:
        for f in Decoder().feed(frames_bytes):
            rules.check(f)
    if match:
        assert match in e.value.reason, e.value.reason
    return e.value.reason


def test_a_frame_longer_than_16384_bytes():
    # Known from the header alone, before any of the payload.
    with pytest.raises(Violation, match="frame too long"):
        Decoder().feed(header(1, DATA, 0, 16385))
    with pytest.raises(Violation, match="frame too long"):
        Decoder().feed(header(0, PING, 0, 0xFFFF))
    assert Decoder().feed(header(1, DATA, 0, 16384) + b"x" * 16384)


def test_unknown_types_and_flags():
    for t in (0x0A, 0x10, 0xFF):
        violates(encode(1, t, b"x"), opened(1), "unknown type")
    for t, flags, payload in ((DATA, 1, b"x"), (DATA, 0x80, b"x"), (PING, 2, b"12345678"),
                              (PING, 3, b"12345678"), (FIN, 1, b""), (WINDOW, 1, h("00000001"))):
        sid = 0 if t == PING else 1
        violates(encode(sid, t, payload, flags), opened(1), "unknown flag")


BAD_FORMS = [
    pytest.param(encode(1, DATA, b""), id="DATA of no byte"),
    pytest.param(encode(1, OPEN, b""), id="OPEN without service"),
    pytest.param(encode(1, OPEN, b"\x00" + h("00 0000")), id="OPEN S = 0"),
    pytest.param(encode(1, OPEN, b"\x41" + b"s" * 65 + h("00 0000")), id="OPEN S = 65"),
    pytest.param(encode(1, OPEN, b"\x04echo\xfe" + b"v" * 254 + h("0000")), id="OPEN V = 254"),
    pytest.param(encode(1, OPEN, b"\x04echo\x00" + h("0801") + b"t" * 2049), id="OPEN T = 2049"),
    pytest.param(encode(1, OPEN, b"\x04ech"), id="OPEN cut in the service"),
    pytest.param(encode(1, OPEN, b"\x04echo\x05ab"), id="OPEN cut in the vhost"),
    pytest.param(encode(1, OPEN, b"\x04echo\x00\x00"), id="OPEN cut in T"),
    pytest.param(encode(1, OPEN, b"\x04echo\x00\x00\x05abc"), id="OPEN cut in the token"),
    pytest.param(encode(1, WINDOW, h("000001")), id="WINDOW of 3 bytes"),
    pytest.param(encode(1, WINDOW, h("0000000001")), id="WINDOW of 5 bytes"),
    pytest.param(encode(1, WINDOW, h("00000000")), id="WINDOW credit 0"),
    pytest.param(encode(1, WINDOW, h("80000000")), id="WINDOW credit 2^31"),
    pytest.param(encode(1, FIN, b"x"), id="FIN with a payload"),
    pytest.param(encode(1, RST, b""), id="RST without code"),
    pytest.param(encode(1, RST, b"\x03" + b"r" * 256), id="RST reason of 256"),
    pytest.param(encode(1, RST, b"\x03bad\x07reason"), id="RST reason not printable"),
    pytest.param(encode(0, PING, b"1234567"), id="PING of 7"),
    pytest.param(encode(0, PING, b"123456789"), id="PING of 9"),
]


@pytest.mark.parametrize("frame", BAD_FORMS)
def test_payloads_not_of_their_types_form(frame):
    rules = opened(1) if frame[4] != OPEN else Rules("client")
    violates(frame, rules)


def test_payload_forms_at_their_limits_are_fine():
    r = Rules("client")
    r.check(Frame(1, OPEN, 0, mw.open_payload("s" * 64, "v" * 253, b"t" * 2048)))
    r.check(Frame(1, RST, 0, b"\x03" + b"r" * 255))
    Rules("server").check(Frame(0, GOAWAY, 0, h("00000000 01") + b"r" * 255))
    with pytest.raises(Violation):
        Rules("server").check(Frame(0, GOAWAY, 0, h("00000000 01") + b"r" * 256))
    with pytest.raises(Violation):
        Rules("server").check(Frame(0, GOAWAY, 0, h("00000000")))


def test_open_ids_odd_and_increasing():
    violates(mw.open_frame(2, "echo"), match="even")
    violates(mw.open_frame(0, "echo"))
    r = opened(5)
    violates(mw.open_frame(5, "echo"), r, "not greater")
    violates(mw.open_frame(3, "echo"), r, "not greater")
    # Not consecutive is fine.
    r.check(Frame(101, OPEN, 0, mw.open_payload("echo")))


def test_data_or_fin_after_fin():
    r = opened(1)
    for f in decode_all(mw.data_frame(1, b"a") + mw.fin_frame(1)):
        r.check(f)
    violates(mw.data_frame(1, b"b"), r, "after its FIN")
    violates(mw.fin_frame(1), r, "after its FIN")
    # WINDOW and RST still may come.
    for f in decode_all(mw.window_frame(1, 5) + mw.rst_frame(1, mw.RESET)):
        r.check(f)


def test_frames_for_a_stream_never_opened():
    for frame in (mw.data_frame(3, b"x"), mw.fin_frame(3), mw.accept_frame(3)):
        violates(frame, opened(1), "never opened")
    # WINDOW and RST on such an id are dropped, not errors.
    r = opened(1)
    assert r.check(Frame(3, WINDOW, 0, h("00000010"))) is None
    assert r.check(Frame(3, RST, 0, b"\x03")) is None


def test_ping_or_goaway_on_a_stream_id():
    violates(encode(1, PING, b"12345678"), opened(1), "PING on stream")
    violates(encode(1, GOAWAY, h("00000000 00")), opened(1), "GOAWAY on stream")


def test_a_goaway_from_the_client():
    violates(mw.goaway_frame(0, mw.NORMAL), opened(1), "GOAWAY from the client")
    # From the server it is fine.
    Rules("server").check(Frame(0, GOAWAY, 0, h("00000000 00")))


def test_data_beyond_a_stream_window():
    r = opened(1)
    full = b"".join(mw.data_frame(1, b"d" * 16384) for _ in range(16))
    for f in decode_all(full):
        r.check(f)
    violates(mw.data_frame(1, b"!"), r, "beyond the window")
    # An OPEN's first data counts: 16 KiB in the OPEN, then 240 KiB, then one byte.
    r = Rules("client")
    r.check(Frame(1, OPEN, 0, mw.open_payload("e", data=b"d" * 16378)))
    for f in decode_all(b"".join(mw.data_frame(1, b"d" * 16384) for _ in range(15)) +
                        mw.data_frame(1, b"d" * 6)):
        r.check(f)
    violates(mw.data_frame(1, b"!"), r, "beyond the window")
    # With credit, the same byte is fine.
    r.credit(1, 1)
    r.check(Frame(1, DATA, 0, b"!"))


def test_data_beyond_the_session_window():
    r = opened(1, 3, 5, 7, 9)
    for sid in (1, 3, 5, 7):
        for f in decode_all(b"".join(mw.data_frame(sid, b"d" * 16384) for _ in range(16))):
            r.check(f)
    violates(mw.data_frame(9, b"!"), r, "beyond the window")
    r.credit(0, 10)
    r.check(Frame(9, DATA, 0, b"!"))


def test_a_window_grown_past_2_31_minus_1():
    r = opened(1)
    # 262144 + (2^31 - 1 - 262144) is the largest a stream window may be.
    r.check(Frame(1, WINDOW, 0, struct.pack("!I", 2 ** 31 - 1 - 262144)))
    violates(mw.window_frame(1, 1), r, "past 2^31-1")
    r = Rules("client")
    violates(mw.window_frame(0, 2 ** 31 - 1), r, "past 2^31-1")


def test_a_client_side_view_of_the_server():
    """What MuxSession checks of fived: ACCEPT once and before DATA, no OPEN."""
    r = Rules("server")
    r.opened_by_client(1)
    violates(mw.data_frame(1, b"x"), r, "before its ACCEPT")
    r.check(Frame(1, ACCEPT, 0, b""))
    violates(mw.accept_frame(1), r, "second answer")
    violates(mw.open_frame(2, "x"), Rules("server"), "OPEN from the server")
    r = Rules("server")
    r.opened_by_client(3)
    r.check(Frame(3, RST, 0, b"\x01unknown service"))
    # Frames in flight for a stream that is over are dropped.
    assert r.check(Frame(3, DATA, 0, b"late")) is None


# --- section 12: DETACHABLE, RECEIVED, ATTACH ------------------------------------------


def test_detachable_and_received_frames():
    assert mw.detachable_frame() == bytes([0, 0, 0, 0, 8, 0, 0, 0])
    assert mw.received_frame(2 ** 40 + 5) == (bytes([0, 0, 0, 0, 9, 0, 0, 8]) +
                                               (2 ** 40 + 5).to_bytes(8, "big"))
    ticket = bytes(range(48))
    grant = mw.encode(0, mw.DETACHABLE, b"\x00" + (900).to_bytes(4, "big") + ticket)
    (f,) = mw.decode_all(grant)
    assert mw.parse_detachable(f.payload) == ("granted", 900, ticket)
    refusal = mw.encode(0, mw.DETACHABLE, b"\x02too many detachable sessions")
    (f,) = mw.decode_all(refusal)
    assert mw.parse_detachable(f.payload) == ("refused", 2, "too many detachable sessions")
    for bad in (mw.encode(1, mw.RECEIVED, bytes(8)), mw.encode(0, mw.RECEIVED, bytes(7)),
                mw.encode(0, mw.DETACHABLE, b"\x00" + bytes(10)),
                mw.encode(0, mw.DETACHABLE, b"\x07no"), mw.encode(3, mw.DETACHABLE)):
        with pytest.raises(mw.Violation):
            mw.decode_all(bad)


def test_counted_types_are_the_session_frames():
    assert set(mw.COUNTED) == {mw.DATA, mw.OPEN, mw.ACCEPT, mw.WINDOW, mw.FIN, mw.RST}
    assert not {mw.PING, mw.GOAWAY, mw.DETACHABLE, mw.RECEIVED} & set(mw.COUNTED)


def test_ticket_text_and_attach_line():
    ticket = bytes([0xfb] * 48)
    text = mw.ticket_text(ticket)
    assert len(text) == 64 and "=" not in text and "+" not in text and "/" not in text
    assert mw.ticket_from_text(text) == ticket
    assert mw.attach_line(ticket, 4096) == b"ATTACH " + text.encode() + b" 4096\r\n"
    with pytest.raises(mw.Violation):
        mw.ticket_from_text(text[:-1])


def test_the_client_counts_and_keeps_copies_from_its_detachable():
    """Without a server: what MuxSession counts and keeps of what it sends (12.1, 12.2),
    and what fived's RECEIVED drops."""
    a, b = socket.socketpair()
    s = mw.MuxSession(a, timeout=2)
    s.framed = True
    s._queue(mw.window_frame(0, 5) + mw.ping_frame(bytes(8)))
    assert s.sent_count == 12 and not s.copies
    s._queue(mw.detachable_frame())
    s._queue(mw.data_frame(1, b"abc") + mw.received_frame(3))
    assert s.sent_count == 23 and bytes(s.copies) == mw.data_frame(1, b"abc")
    s._frames_in(mw.received_frame(20))
    assert s.copies_base == 20 and bytes(s.copies) == b"abc"
    with pytest.raises(mw.Violation):
        s._frames_in(mw.received_frame(24))
    a.close()
    b.close()
