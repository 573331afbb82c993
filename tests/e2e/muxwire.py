"""A client of fived's MULTIPLEX, written from docs/PROTOCOL.md section 11
alone (not from src/proto/mux.c): the frames of 11.2, the stream states of
11.3, the flow control of 11.4, and the errors of 11.7.  Tests use it to
speak framed mode byte by byte, independently of fived's own code.

Layers, from the bottom:

* `Frame`, `encode`, the `*_frame` builders and `parse_open` etc.: one frame
  as bytes and back (11.2).
* `Decoder`: a byte stream cut into frames, with the checks of 11.2 and 11.7
  that need no state (length, type, flags, payload form, id 0 or not).
* `Rules`: the checks of 11.3, 11.4 and 11.7 that need the session's state,
  as a receiver applies them to what its peer sends (`sender="client"` is
  fived's view of us, `sender="server"` is ours of fived).
* `MuxSession`: one framed session over a TCP socket (plaintext, after any
  HOST or AUTH) or over a sealed session (sealwire.SealedClient): answers
  PINGs, tracks every window both ways, never sends beyond the peer's
  windows, gives credit back as it delivers data, and records every frame.

Everything fived sends is checked against the same rules: a frame that
breaks section 11 raises `Violation` in the test that received it.
"""

import os
import select
import socket
import struct
import time
from collections import namedtuple

# --- constants (11.2, 11.4) ---------------------------------------------------------

DATA, OPEN, ACCEPT, WINDOW, FIN, RST, PING, GOAWAY, DETACHABLE, RECEIVED = range(10)
TYPE_NAMES = {DATA: "DATA", OPEN: "OPEN", ACCEPT: "ACCEPT", WINDOW: "WINDOW", FIN: "FIN",
              RST: "RST", PING: "PING", GOAWAY: "GOAWAY", DETACHABLE: "DETACHABLE",
              RECEIVED: "RECEIVED"}
# Session frames (12.1): counted, kept until the peer has them, sent again after ATTACH.
COUNTED = (DATA, OPEN, ACCEPT, WINDOW, FIN, RST)
TICKET_ID, TICKET_SECRET = 16, 32
TICKET = TICKET_ID + TICKET_SECRET
# DETACHABLE answers (12.2)
GRANTED, NOT_PERMITTED, DETACH_LIMIT = 0, 1, 2
RECEIVED_EVERY = 131072       # RECEIVED at least this often (12.3)
ACK = 0x01
HEADER = 8
MUX_PAYLOAD_MAX = 16384
MUX_STREAM_WINDOW = 262144
MUX_SESSION_WINDOW = 1048576
WINDOW_MAX = 2 ** 31 - 1
PIPELINE_MAX = 64 * 1024     # what fived holds behind a MULTIPLEX line (11.1)

# RST codes (11.2)
REFUSED, UNAVAILABLE, RESET, LIMIT, SHUTDOWN = 1, 2, 3, 4, 5
RST_NAMES = {REFUSED: "REFUSED", UNAVAILABLE: "UNAVAILABLE", RESET: "RESET", LIMIT: "LIMIT",
             SHUTDOWN: "SHUTDOWN"}
# GOAWAY codes (11.2)
NORMAL, PROTOCOL, IDLE = 0, 1, 2
GOAWAY_NAMES = {NORMAL: "NORMAL", PROTOCOL: "PROTOCOL", IDLE: "IDLE"}

SERVICE_MAX, VHOST_MAX, TOKEN_MAX, REASON_MAX = 64, 253, 2048, 255


class MuxError(Exception):
    """Something a test did not expect of the session."""


class Violation(MuxError):
    """Bytes that break section 11.  `reason` says how, in the words of 11.7."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Refused(MuxError):
    """fived answered MULTIPLEX with a '-' line (11.1)."""

    def __init__(self, line):
        super().__init__(line)
        self.line = line


class SessionEnded(MuxError):
    """The session's byte stream ended while the test still waited for something."""


class Timeout(MuxError):
    pass


# --- one frame (11.2) ---------------------------------------------------------------


class Frame(namedtuple("Frame", "stream type flags payload")):
    """One frame: 8-byte header (id, type, flags, length; big-endian) and payload."""

    def encode(self):
        return encode(self.stream, self.type, self.payload, self.flags)

    def __repr__(self):
        name = TYPE_NAMES.get(self.type, "0x%02x" % self.type)
        flags = " ACK" if self.flags == ACK and self.type == PING else (
            " flags=0x%02x" % self.flags if self.flags else "")
        shown = self.payload if len(self.payload) <= 32 else self.payload[:32] + b"..."
        return "[%d %s%s %r]" % (self.stream, name, flags, shown)


def header(stream, type_, flags, length):
    """An 8-byte header; any field value, lengths beyond the maximum included (tests)."""
    return struct.pack("!IBBH", stream, type_, flags, length)


def encode(stream, type_, payload=b"", flags=0):
    """A frame as bytes (11.2); a payload over 65535 bytes cannot be expressed."""
    return header(stream, type_, flags, len(payload)) + bytes(payload)


def data_frame(stream, data):
    return encode(stream, DATA, data)


def open_payload(service, vhost=b"", token=b"", data=b""):
    """OPEN's payload (11.2): S, service, V, vhost, T (2 bytes), token, first data.
    Lengths are not checked, so that tests can build bad ones."""
    service, vhost, token = (x.encode() if isinstance(x, str) else bytes(x)
                             for x in (service, vhost, token))
    return (bytes([len(service) & 0xFF]) + service + bytes([len(vhost) & 0xFF]) + vhost +
            struct.pack("!H", len(token) & 0xFFFF) + token + bytes(data))


def open_frame(stream, service, vhost=b"", token=b"", data=b""):
    return encode(stream, OPEN, open_payload(service, vhost, token, data))


def accept_frame(stream):
    return encode(stream, ACCEPT)


def window_frame(stream, credit):
    return encode(stream, WINDOW, struct.pack("!I", credit))


def fin_frame(stream):
    return encode(stream, FIN)


def rst_frame(stream, code, reason=b""):
    reason = reason.encode() if isinstance(reason, str) else reason
    return encode(stream, RST, bytes([code]) + reason)


def ping_frame(opaque, ack=False):
    assert len(opaque) == 8
    return encode(0, PING, opaque, ACK if ack else 0)


def detachable_frame(payload=b""):
    """The client's DETACHABLE (12.2): empty (a payload only to break the rules)."""
    return encode(0, DETACHABLE, payload)


def received_frame(count):
    """RECEIVED (12.3): the count of session-frame bytes received."""
    return encode(0, RECEIVED, struct.pack("!Q", count))


def parse_detachable(payload):
    """fived's DETACHABLE answer (12.2): ("granted", timeout, ticket) or
    ("refused", code, reason)."""
    if not payload:
        raise Violation("DETACHABLE answer empty")
    if payload[0] == GRANTED:
        if len(payload) != 1 + 4 + TICKET:
            raise Violation("DETACHABLE grant of %d bytes" % len(payload))
        return ("granted", struct.unpack("!I", payload[1:5])[0], bytes(payload[5:]))
    if payload[0] not in (NOT_PERMITTED, DETACH_LIMIT) or len(payload) > 1 + REASON_MAX:
        raise Violation("DETACHABLE refusal of form %r" % payload[:8])
    if not printable(payload[1:]):
        raise Violation("DETACHABLE reason not printable")
    return ("refused", payload[0], payload[1:].decode())


def parse_received(payload):
    if len(payload) != 8:
        raise Violation("RECEIVED of %d bytes" % len(payload))
    return struct.unpack("!Q", payload)[0]


def ticket_text(ticket):
    """The ticket in base64url without padding (12.5): 64 characters."""
    import base64
    return base64.urlsafe_b64encode(ticket).rstrip(b"=").decode()


def ticket_from_text(text):
    import base64
    if len(text) != 64:
        raise Violation("ticket text of %d characters" % len(text))
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def attach_line(ticket, received):
    return b"ATTACH %s %d\r\n" % (ticket_text(ticket).encode(), received)


def goaway_frame(last, code, reason=b""):
    reason = reason.encode() if isinstance(reason, str) else reason
    return encode(0, GOAWAY, struct.pack("!IB", last, code) + reason)


OpenRequest = namedtuple("OpenRequest", "service vhost token data")


def parse_open(payload):
    """OpenRequest from an OPEN payload; Violation if it is not of OPEN's form (11.2)."""
    p = bytes(payload)
    if len(p) < 1:
        raise Violation("OPEN without a service")
    s = p[0]
    if not 1 <= s <= SERVICE_MAX:
        raise Violation("OPEN with a service name of %d bytes" % s)
    if len(p) < 1 + s + 1:
        raise Violation("OPEN cut short in the service name")
    service = p[1:1 + s]
    at = 1 + s
    v = p[at]
    if v > VHOST_MAX:
        raise Violation("OPEN with a vhost of %d bytes" % v)
    if len(p) < at + 1 + v + 2:
        raise Violation("OPEN cut short in the vhost")
    vhost = p[at + 1:at + 1 + v]
    at += 1 + v
    t = struct.unpack("!H", p[at:at + 2])[0]
    if t > TOKEN_MAX:
        raise Violation("OPEN with a token of %d bytes" % t)
    if len(p) < at + 2 + t:
        raise Violation("OPEN cut short in the token")
    token = p[at + 2:at + 2 + t]
    return OpenRequest(service, vhost, token, p[at + 2 + t:])


def parse_window(payload):
    if len(payload) != 4:
        raise Violation("WINDOW of %d bytes" % len(payload))
    credit = struct.unpack("!I", payload)[0]
    if not 1 <= credit <= WINDOW_MAX:
        raise Violation("WINDOW credit %d" % credit)
    return credit


def printable(reason):
    return all(0x20 <= b <= 0x7E for b in reason)


def parse_rst(payload):
    """(code, reason as str) of an RST (11.2)."""
    if not 1 <= len(payload) <= 1 + REASON_MAX:
        raise Violation("RST of %d bytes" % len(payload))
    if not printable(payload[1:]):
        raise Violation("RST reason not printable: %r" % payload[1:])
    return payload[0], payload[1:].decode()


def parse_goaway(payload):
    """(last stream id, code, reason as str) of a GOAWAY (11.2)."""
    if not 5 <= len(payload) <= 5 + REASON_MAX:
        raise Violation("GOAWAY of %d bytes" % len(payload))
    if not printable(payload[5:]):
        raise Violation("GOAWAY reason not printable: %r" % payload[5:])
    last, code = struct.unpack("!IB", payload[:5])
    return last, code, payload[5:].decode()


def check_form(frame):
    """The checks of 11.2/11.7 one frame allows on its own, whoever sent it: known
    type, flags, payload of its type's form, id 0 only where the type is the
    session's.  Raises Violation; returns nothing."""
    sid, t, flags, p = frame
    if t not in TYPE_NAMES:
        raise Violation("unknown type 0x%02x" % t)
    if flags & ~(ACK if t == PING else 0):
        raise Violation("unknown flag 0x%02x on %s" % (flags, TYPE_NAMES[t]))
    if len(p) > MUX_PAYLOAD_MAX:
        raise Violation("frame too long")
    if t in (PING, GOAWAY, DETACHABLE, RECEIVED) and sid != 0:
        raise Violation("%s on stream %d" % (TYPE_NAMES[t], sid))
    if t not in (PING, GOAWAY, WINDOW, DETACHABLE, RECEIVED) and sid == 0:
        raise Violation("%s on id 0" % TYPE_NAMES[t])
    if t == DATA and not p:
        raise Violation("empty DATA")
    elif t == OPEN:
        parse_open(p)
    elif t in (ACCEPT, FIN) and p:
        raise Violation("%s with a payload" % TYPE_NAMES[t])
    elif t == WINDOW:
        parse_window(p)
    elif t == RST:
        parse_rst(p)
    elif t == PING and len(p) != 8:
        raise Violation("PING of %d bytes" % len(p))
    elif t == GOAWAY:
        parse_goaway(p)
    elif t == DETACHABLE and p:
        parse_detachable(p)
    elif t == RECEIVED:
        parse_received(p)


class Decoder:
    """Cuts a byte stream into frames (11.2).  feed() returns the whole frames so far;
    a header announcing more than MUX_PAYLOAD_MAX raises Violation("frame too long")
    at once, without waiting for the payload, as a receiver must."""

    def __init__(self, check=True):
        self.buf = bytearray()
        self.check = check

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= HEADER:
            sid, t, flags, n = struct.unpack("!IBBH", self.buf[:HEADER])
            if n > MUX_PAYLOAD_MAX:
                raise Violation("frame too long")
            if len(self.buf) < HEADER + n:
                break
            frame = Frame(sid, t, flags, bytes(self.buf[HEADER:HEADER + n]))
            del self.buf[:HEADER + n]
            if self.check:
                check_form(frame)
            out.append(frame)
        return out

    @property
    def partial(self):
        """Bytes of a frame begun and not finished."""
        return len(self.buf)


def decode_all(data, check=True):
    """The frames of `data`, which must end on a frame boundary."""
    d = Decoder(check)
    frames = d.feed(data)
    if d.partial:
        raise Violation("%d bytes of an unfinished frame" % d.partial)
    return frames


# --- the session's rules (11.3, 11.4, 11.7) --------------------------------------


class Rules:
    """What a receiver checks of its peer's frames, with the session's state.

    sender: "client" (fived's checks of what a client sends, 11.7) or "server"
    (a client's checks of fived: it opens no stream and sends no OPEN, every
    OPEN is answered exactly once and ACCEPT comes before DATA).  Windows: the
    receiver's own, i.e. how much the sender may still send; `credit()` is the
    receiver giving more.  `check(frame)` raises Violation or returns the frame
    if it is to be acted on, None if it is to be dropped (a stream that is over).
    """

    def __init__(self, sender):
        assert sender in ("client", "server")
        self.sender = sender
        self.last_open = 0
        self.session_window = MUX_SESSION_WINDOW
        self.windows = {}       # stream -> how much the sender may still send on it
        self.fin_from = set()   # streams the sender has ended its direction of
        self.over = set()       # streams reset (either way) or over
        self.answered = set()   # server side: streams it has answered (ACCEPT or RST)
        self.accepted = set()
        self.opened = set()     # every id the client opened
        # The other way: how much the sender lets the receiver send (its WINDOWs).
        self.out_session = MUX_SESSION_WINDOW
        self.out_windows = {}

    def opened_by_client(self, sid, first_data=0):
        """On the server's side of the ledger (sender="server"): we opened sid."""
        self.opened.add(sid)
        self.last_open = max(self.last_open, sid)
        self.windows[sid] = MUX_STREAM_WINDOW
        self.out_windows[sid] = MUX_STREAM_WINDOW - first_data
        self.out_session -= first_data

    def spent(self, sid, n):
        """The receiver sent n bytes of DATA on sid, within the sender's credit."""
        self.out_windows[sid] -= n
        self.out_session -= n

    def credit(self, sid, n):
        """The receiver gives the sender n more bytes on sid (0: the session)."""
        if sid == 0:
            self.session_window += n
        elif sid in self.windows:
            self.windows[sid] += n

    def end(self, sid):
        """The stream is over (an RST either way, or both FINs and all bytes)."""
        self.over.add(sid)

    def _grow(self, sid, credit):
        if sid == 0:
            self.out_session += credit
            if self.out_session > WINDOW_MAX:
                raise Violation("a window grown past 2^31-1")
        elif sid in self.out_windows and sid not in self.over:
            self.out_windows[sid] += credit
            if self.out_windows[sid] > WINDOW_MAX:
                raise Violation("a window grown past 2^31-1")

    def _consume(self, sid, n):
        if n > self.windows[sid] or n > self.session_window:
            raise Violation("data beyond the window")
        self.windows[sid] -= n
        self.session_window -= n

    def check(self, frame):
        check_form(frame)
        sid, t, _, p = frame
        if t == WINDOW:
            self._grow(sid, parse_window(p))
        if sid == 0:
            if t == GOAWAY and self.sender == "client":
                raise Violation("GOAWAY from the client")
            return frame
        if t == OPEN:
            if self.sender == "server":
                raise Violation("OPEN from the server")
            if sid % 2 == 0:
                raise Violation("OPEN on an even id")
            if sid <= self.last_open:
                raise Violation("OPEN on an id not greater than the last")
            self.last_open = sid
            self.opened.add(sid)
            self.windows[sid] = MUX_STREAM_WINDOW
            self.out_windows[sid] = MUX_STREAM_WINDOW
            self._consume(sid, len(parse_open(p).data))
            return frame
        if sid not in self.opened:
            if t in (WINDOW, RST):
                return None
            raise Violation("%s on a stream never opened" % TYPE_NAMES[t])
        if sid in self.over:
            return None                                   # in flight when it ended
        if self.sender == "server":
            if t == ACCEPT:
                if sid in self.answered:
                    raise Violation("a second answer to OPEN %d" % sid)
                self.answered.add(sid)
                self.accepted.add(sid)
                return frame
            if t == RST and sid not in self.answered:
                self.answered.add(sid)
                self.over.add(sid)
                return frame
            if t in (DATA, FIN) and sid not in self.accepted:
                raise Violation("%s on stream %d before its ACCEPT" % (TYPE_NAMES[t], sid))
        if t in (DATA, FIN) and sid in self.fin_from:
            raise Violation("%s on a stream after its FIN" % TYPE_NAMES[t])
        if t == DATA:
            self._consume(sid, len(p))
        elif t == FIN:
            self.fin_from.add(sid)
        elif t == RST:
            self.over.add(sid)
        elif t == ACCEPT:
            raise Violation("ACCEPT from the client")
        return frame


# --- transports ----------------------------------------------------------------------


class PlainTransport:
    """The session's bytes as they are: a TCP socket in plaintext (2, 11.1)."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.leftover = bytes(leftover)

    def wrap(self, plaintext):
        return bytes(plaintext)

    def unwrap(self, wire):
        """(plaintext, ended): ended is True at the end of the byte stream."""
        return bytes(wire), False

    def end_bytes(self):
        return b""


class SealedTransport:
    """The plaintext of a sealed session (6.7): records each way.  Takes over a
    sealwire.SealedClient after its handshake; frames are cut into records
    without regard to where they begin (11.1)."""

    def __init__(self, client, record_size=16384):
        from sealwire import RecordReceiver, header_len
        self.client = client
        self.sock = client.conn.sock
        self.leftover = bytes(client.conn.buf)
        client.conn.buf.clear()
        self.record_size = record_size
        self.headerbytes = header_len(client.suite)
        self.make_receiver = lambda key, header: RecordReceiver(key, header, client.suite)
        self.receiver = client.receiver
        self.inbuf = bytearray()
        self.final = False

    def wrap(self, plaintext):
        return self.client.sender.records(bytes(plaintext), self.record_size)

    def end_bytes(self):
        return self.client.sender.final_record()

    def unwrap(self, wire):
        self.inbuf += wire
        out = bytearray()
        while not self.final:
            if self.receiver is None:
                if len(self.inbuf) < self.headerbytes:
                    break
                self.receiver = self.make_receiver(self.client._recv_key,
                                                   bytes(self.inbuf[:self.headerbytes]))
                del self.inbuf[:self.headerbytes]
                continue
            if len(self.inbuf) < 2:
                break
            n = struct.unpack("!H", self.inbuf[:2])[0]
            if len(self.inbuf) < 2 + n:
                break
            body = bytes(self.inbuf[2:2 + n])
            del self.inbuf[:2 + n]
            data = self.receiver.open(body)
            if not data:
                self.final = True
            out += data
        return bytes(out), self.final


# --- a session --------------------------------------------------------------------


class Stream:
    """One stream as the client sees it (11.3)."""

    def __init__(self, sid, service, credit):
        self.id = sid
        self.service = service
        self.credit_mode = credit     # "receipt", "read" or "never"
        self.send_window = MUX_STREAM_WINDOW      # what fived lets us send
        self.max_send_window = MUX_STREAM_WINDOW  # the most it ever let us have unsent
        self.out = bytearray()        # written, not yet sent (waiting for windows)
        self.fin_wanted = False
        self.fin_sent = False
        self.rst_sent = None
        self.accepted = False
        self.rst = None               # (code, reason) from fived
        self.answer_at = None         # when ACCEPT or RST came
        self.inbox = bytearray()      # received, not yet read by the test
        self.received = 0             # every DATA byte received
        self.fin_received = False
        self.unreported = 0           # delivered, credit not yet given back

    @property
    def answered(self):
        return self.accepted or self.rst is not None

    @property
    def over(self):
        return (self.rst is not None or self.rst_sent is not None or
                (self.fin_sent and self.fin_received))

    def __repr__(self):
        return "<stream %d %s%s%s%s in=%d out=%d>" % (
            self.id, self.service, " accepted" if self.accepted else "",
            " rst=%r" % (self.rst,) if self.rst else "", " fin" if self.fin_received else "",
            self.received, len(self.out))


class MuxSession:
    """A framed session with fived (11.1-11.6), blocking, for tests.

    Build one with `MuxSession.connect(port)` (plaintext), `MuxSession(sock)` on a
    socket already past HOST or AUTH, or `MuxSession.sealed(port, ...)`; then
    `enter()` sends MULTIPLEX (with frames pipelined behind it if asked) and
    reads `+ MULTIPLEX`.  Every wait is bounded by `timeout` seconds.

    The client's own behaviour follows 11.4: it sends DATA only within both the
    stream's and the session's windows fived gave it, answers every PING at once,
    and gives a stream's credit back as its data is delivered to the test: at
    receipt (credit="receipt", the default: the test's buffer is the application),
    when the test reads it (credit="read"), or never (credit="never": a reader that
    does not read).  The session's credit goes back as bytes leave the session for
    a stream's buffer, which the stream's own window bounds.  Credit goes back once
    half a stream's initial window (or a quarter of the session's) is due.
    """

    def __init__(self, sock, timeout=10.0, transport=None, check=True):
        self.timeout = timeout
        self.transport = transport or PlainTransport(sock)
        self.sock = self.transport.sock
        self.sock.setblocking(False)
        self.check = check
        self.outbuf = bytearray()         # wire bytes to write
        self.inbound = bytearray(self.transport.leftover)   # wire bytes not yet unwrapped
        self.plain = bytearray()          # plaintext before framed mode (reply lines)
        self.decoder = Decoder(check=False)
        self.rules = Rules("server")
        self.framed = False
        self.entered = None               # the "+ MULTIPLEX" line, once read
        self.preamble = []                # reply lines before it (HOST's, for instance)
        self.streams = {}
        self.next_id = 1
        self.send_window = MUX_SESSION_WINDOW   # session window fived gave us
        self.session_unreported = 0
        self.frames = []                  # every frame received, in order
        self.cursor = 0                   # how many of them next_frame() has returned
        self.sent_frames = 0
        self.pings = []                   # PINGs fived asked (opaque bytes), answered
        self.acks = {}                    # our PING opaque -> time of the ACK
        self.windows_from_server = []     # (stream, credit) of every WINDOW received
        self.goaway = None                # (last, code, reason)
        self.eof = False                  # fived's byte stream ended
        self.eof_at = None
        self.reset = False                # ... with a TCP reset
        self.ended_write = False
        self.violation = None
        # Seconds to hold each PING's ACK: a test's way of playing a long path (the
        # round trip fived measures, 11.4), not a client's normal behaviour.
        self.ping_delay = 0.0
        self.delayed = []                 # (due time, frame bytes)
        # Resuming (section 12): counts of session-frame bytes, copies, the ticket.
        self.sent_count = 0               # session-frame bytes we sent (12.1)
        self.recv_count = 0               # ... and received, whole frames
        self.out_decoder = Decoder(check=False)
        self.keeping = False              # copies kept: from our DETACHABLE on (12.2)
        self.copies = bytearray()         # session frames sent, from copies_base on
        self.copies_base = 0
        self.detach_answer = None         # parse_detachable of fived's answer
        self.ticket = None
        self.detach_timeout = None
        self.received_from_server = []    # every count fived sent in RECEIVED
        self.auto_received = True         # send RECEIVED as 12.3 says, once detachable
        self.reported = 0                 # the count our last RECEIVED carried
        self.unreported_at = None         # when a counted frame first went unreported
        self.attached = None              # (received, timeout, ticket) of + ATTACHED

    # --- construction -------------------------------------------------------------

    @classmethod
    def connect(cls, port, host="127.0.0.1", timeout=10.0, **kw):
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, timeout=timeout, **kw)

    @classmethod
    def sealed(cls, port, server_pub=None, static_key=None, early=b"", timeout=10.0,
               **kw):
        """A sealed session (section 6, sealwire) carrying framed mode (11.1: inside a
        sealed session, frames are the plaintext).  `early` rides in the handshake
        (IK message 1 or XX FINISH): for instance b"MULTIPLEX\\r\\n" and an OPEN; pass
        the same bytes to enter(sent=...) so that they are not sent twice."""
        from sealwire import SealedClient
        c = SealedClient(port, server_pub, static_key=static_key, early=early,
                         timeout=timeout)
        session = cls(None, timeout=timeout, transport=SealedTransport(c), **kw)
        session.sealed_client = c
        return session

    # --- entering framed mode (11.1) ---------------------------------------------------

    def enter(self, pipelined=b"", sent=None):
        """Sends `MULTIPLEX\\r\\n` and the frames `pipelined` right behind it in one write
        (11.1), unless `sent` says the line and frames were already sent (sealed early
        data); reads the reply.  Returns the `+ MULTIPLEX` line; Refused on a '-'."""
        if sent is None:
            self._queue(b"MULTIPLEX\r\n" + pipelined)
        self._note_sent(pipelined)
        while self.entered is None:
            at = self.plain.find(b"\r\n")
            if at < 0:
                if len(self.plain) > 512:
                    raise MuxError("no reply line: %r" % bytes(self.plain[:80]))
                self._io(lambda: self.plain.find(b"\r\n") >= 0 or self.eof, "the reply line")
                if self.plain.find(b"\r\n") < 0:
                    raise SessionEnded("closed before a reply: %r" % bytes(self.plain))
                continue
            line = bytes(self.plain[:at + 2])
            del self.plain[:at + 2]
            if line == b"+ MULTIPLEX\r\n":
                self.entered = line
                self.framed = True
                rest = bytes(self.plain)
                self.plain.clear()
                self._frames_in(rest)
            elif line.startswith(b"-"):
                raise Refused(line.decode(errors="replace").rstrip("\r\n"))
            else:
                self.preamble.append(line)
        return self.entered

    # --- resuming (section 12) ---------------------------------------------------------

    def _note_sent(self, plaintext):
        """Counts the session frames in plaintext we send (12.1), and keeps copies of
        them once we asked to be detachable (12.2).  Frames a test breaks on purpose
        end the counting: the session cannot be resumed after them anyway."""
        if self.out_decoder is None or not plaintext:
            return
        try:
            frames = self.out_decoder.feed(plaintext)
        except Violation:
            self.out_decoder = None
            return
        for f in frames:
            if f.type == DETACHABLE:
                self.keeping = True
                self.copies_base = self.sent_count
            if f.type in COUNTED:
                wire = f.encode()
                self.sent_count += len(wire)
                if self.keeping:
                    self.copies += wire

    def _note_received(self, f):
        """A frame from fived: counted if a session frame; DETACHABLE and RECEIVED acted
        on (12.2, 12.3).  Returns True when the frame is a connection frame of 12."""
        sid, t, _, p = f
        if t in COUNTED:
            self.recv_count += HEADER + len(p)
            if self.unreported_at is None:
                self.unreported_at = time.monotonic()
            return False
        if t == DETACHABLE:
            if self.detach_answer is not None:
                raise Violation("a second DETACHABLE answer")
            self.detach_answer = parse_detachable(p)
            if self.detach_answer[0] == "granted":
                self.detach_timeout, self.ticket = self.detach_answer[1:]
            return True
        if t == RECEIVED:
            count = parse_received(p)
            if self.received_from_server and count < self.received_from_server[-1]:
                raise Violation("RECEIVED went down")
            if count > self.sent_count:
                raise Violation("RECEIVED above what was sent: %d > %d (attached %r)" % (count, self.sent_count, self.attached))
            self.received_from_server.append(count)
            self._drop_copies(count)
            return True
        return False

    def _drop_copies(self, count):
        if count > self.copies_base:
            del self.copies[:count - self.copies_base]
            self.copies_base = count

    def _maybe_report(self):
        """RECEIVED as 12.3 asks: every RECEIVED_EVERY bytes, and soon after any."""
        if not self.auto_received or self.ticket is None or not self.framed:
            return
        if self.recv_count == self.reported:
            self.unreported_at = None
            return
        due = (self.recv_count - self.reported >= RECEIVED_EVERY or
               (self.unreported_at is not None and
                time.monotonic() - self.unreported_at >= 0.3))
        if due:
            self.send_received()

    def send_received(self, count=None):
        """Sends RECEIVED with our count (or any count, to break the rules)."""
        count = self.recv_count if count is None else count
        self.reported = max(self.reported, count) if count <= self.recv_count else count
        self.unreported_at = None
        self._queue(received_frame(count))

    def detachable(self, timeout=None):
        """Asks to be detachable (DETACHABLE) and waits for fived's answer, returned as
        parse_detachable gives it."""
        self.send_raw(detachable_frame())
        self._io(lambda: self.detach_answer is not None, "the DETACHABLE answer", timeout)
        return self.detach_answer

    def wait_received(self, count, timeout=None):
        """Waits until fived's RECEIVED says it has count bytes of our session frames."""
        self._io(lambda: self.received_from_server and self.received_from_server[-1] >= count,
                 "RECEIVED %d" % count, timeout)

    def _reply_line(self):
        """The next reply line in plaintext, before framed mode."""
        while True:
            at = self.plain.find(b"\r\n")
            if at >= 0:
                line = bytes(self.plain[:at + 2])
                del self.plain[:at + 2]
                return line
            if len(self.plain) > 512:
                raise MuxError("no reply line: %r" % bytes(self.plain[:80]))
            self._io(lambda: self.plain.find(b"\r\n") >= 0 or self.eof, "the reply line",
                     allow_eof=True)
            if self.plain.find(b"\r\n") < 0:
                raise SessionEnded("closed before a reply: %r" % bytes(self.plain))

    def drop_connection(self, how="reset"):
        """Breaks the connection under the session: "reset" (RST), "close" (FIN without
        the transport's end) or "keep" (left up: make before break)."""
        if how == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if how != "keep":
            self.sock.close()
        self.old_socks = getattr(self, "old_socks", []) + [self.sock]

    def attach(self, transport, received=None, ticket=None, pipelined=b""):
        """Moves the session to a new connection (12.5) whose transport is `transport`
        (PlainTransport(sock) or SealedTransport(client), past any handshake, HOST or
        AUTH): ATTACH with our received count, then, at "+ ATTACHED", RECEIVED first and
        every session frame after fived's count; fived's own come as the first frames.
        Returns (fived's received count, timeout, new ticket); Refused on a '-'."""
        ticket = self.ticket if ticket is None else ticket
        received = self.recv_count if received is None else received
        self.transport = transport
        self.sock = transport.sock
        self.sock.setblocking(False)
        self.outbuf = bytearray()
        self.inbound = bytearray(transport.leftover)
        self.plain = bytearray()
        self.decoder = Decoder(check=False)     # a frame cut by the break is sent again
        self.eof = self.reset = self.ended_write = False
        self.eof_at = None
        self.framed = False
        self._queue_wire(self.transport.wrap(attach_line(ticket, received) + pipelined))
        line = self._reply_line()
        if line.startswith(b"-"):
            raise Refused(line.decode(errors="replace").rstrip("\r\n"))
        words = line.decode().split()
        if len(words) != 5 or words[:2] != ["+", "ATTACHED"]:
            raise Violation("not an ATTACHED reply: %r" % line)
        theirs, timeout = int(words[2]), int(words[3])
        if str(theirs) != words[2] or str(timeout) != words[3]:
            raise Violation("counts with leading zeros: %r" % line)
        if not self.copies_base <= theirs <= self.sent_count:
            raise Violation("fived resumes from %d, we hold %d..%d" %
                            (theirs, self.copies_base, self.sent_count))
        self.ticket = ticket_from_text(words[4])
        self.attached = (theirs, timeout, self.ticket)
        self.framed = True
        self.reported = self.recv_count
        again = bytes(self.copies[theirs - self.copies_base:])
        self._queue_wire(self.transport.wrap(received_frame(self.recv_count) + again))
        rest = bytes(self.plain)
        self.plain.clear()
        self._frames_in(rest)
        self._io(lambda: not self.outbuf, "the frames sent again", allow_eof=True)
        return self.attached

    # --- opening streams (11.2 OPEN) ----------------------------------------------------

    def open_frame_for(self, service, vhost="", token="", data=b"", sid=None,
                       credit="receipt"):
        """Registers a new stream and returns its OPEN frame without sending it (to
        pipeline it behind MULTIPLEX, or to send it in one write with others).  The
        first data must fit the initial windows (11.4)."""
        sid = self.next_id if sid is None else sid
        self.next_id = sid + 2
        st = Stream(sid, service, credit)
        if len(data) > min(st.send_window, self.send_window):
            raise MuxError("first data beyond the window: %d bytes" % len(data))
        self.streams[sid] = st
        self.rules.opened_by_client(sid, len(data))
        st.send_window -= len(data)
        self.send_window -= len(data)
        return open_frame(sid, service, vhost, token, data)

    def open(self, service, vhost="", token="", data=b"", credit="receipt"):
        """Opens a stream (OPEN with `data` as its first data, as much as the windows
        take; the rest follows in DATA as credit allows).  Returns its id."""
        first = bytes(data[:min(MUX_STREAM_WINDOW, self.send_window,
                                MUX_PAYLOAD_MAX - 4 - len(service) - len(vhost) - len(token))])
        frame = self.open_frame_for(service, vhost, token, first, credit=credit)
        sid = (struct.unpack("!I", frame[:4])[0])
        self.streams[sid].out += data[len(first):]
        self._queue(frame)
        self.sent_frames += 1
        self._pump_out()
        self._io(lambda: not self.outbuf, "the OPEN to be written", allow_eof=True)
        return sid

    def stream(self, sid):
        return self.streams[sid]

    # --- sending (11.4: within windows) -------------------------------------------

    def write(self, sid, data):
        """Queues data on a stream: sent as the windows allow, while the session runs."""
        st = self.streams[sid]
        if st.fin_wanted:
            raise MuxError("write after FIN on stream %d" % sid)
        st.out += data
        self._pump_out()

    def send(self, sid, data, timeout=None):
        """Sends data on a stream, waiting for credit when the windows are used up.
        Stops early if the stream is reset (its bytes are then dropped)."""
        self.write(sid, data)
        st = self.streams[sid]
        self._io(lambda: (not st.out and not self.outbuf) or st.over or self.eof,
                 "credit to send on stream %d" % sid, timeout)

    def fin(self, sid):
        """Ends our direction of the stream (FIN), after everything written (11.2)."""
        st = self.streams[sid]
        st.fin_wanted = True
        self._pump_out()
        self._io(lambda: st.fin_sent or st.over or self.eof,
                 "room to send FIN on stream %d" % sid)
        self._io(lambda: not self.outbuf, "the FIN to be written", allow_eof=True)

    def rst(self, sid, code=RESET, reason=""):
        """Ends both directions at once (RST, by default RESET: a cancel, 11.2)."""
        st = self.streams[sid]
        st.rst_sent = (code, reason)
        st.out.clear()
        self.rules.end(sid)
        self.send_raw(rst_frame(sid, code, reason))

    def grant(self, sid, credit):
        """Gives fived credit of our own accord (WINDOW on sid, 0 for the session)."""
        self.rules.credit(sid, credit)
        self.send_raw(window_frame(sid, credit))

    def ping(self, opaque=None, timeout=None):
        """Sends a PING and waits for its ACK; returns the round trip in seconds."""
        opaque = opaque or os.urandom(8)
        start = time.monotonic()
        self.send_raw(ping_frame(opaque))
        self._io(lambda: opaque in self.acks, "the PING's ACK", timeout)
        return self.acks[opaque] - start

    def send_raw(self, data):
        """Writes bytes as they are (frames of a test's own making, broken ones too),
        wrapped by the transport; does not wait for anything but the write."""
        self._queue(data)
        self._io(lambda: not self.outbuf, "a raw write to go out", allow_eof=True)

    def end(self):
        """Ends the session's byte stream (11.6): FINAL then TCP's FIN when sealed,
        TCP's FIN in plaintext."""
        self._queue_wire(self.transport.end_bytes())
        self._io(lambda: not self.outbuf, "the end to be written", allow_eof=True)
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.ended_write = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- waiting -----------------------------------------------------------------

    def wait_answer(self, sid, timeout=None):
        """Waits for fived's answer to OPEN sid: ("ACCEPT", None) or ("RST", code,
        reason) as (kind, code, reason)."""
        st = self.streams[sid]
        self._io(lambda: st.answered, "the answer to OPEN %d" % sid, timeout)
        if st.accepted:
            return ("ACCEPT", None, None)
        return ("RST",) + st.rst

    def wait_rst(self, sid, timeout=None):
        """Waits for fived's RST on sid; returns (code, reason)."""
        st = self.streams[sid]
        self._io(lambda: st.rst is not None, "RST on stream %d" % sid, timeout)
        return st.rst

    def read(self, sid, n=None, timeout=None):
        """At least one byte (up to n) of the stream, waiting for it; b"" at its FIN.
        Gives credit back for what it returns (credit="read")."""
        st = self.streams[sid]
        self._io(lambda: st.inbox or st.fin_received or st.rst is not None,
                 "data on stream %d" % sid, timeout)
        if not st.inbox and st.rst is not None:
            raise MuxError("stream %d reset: %r" % (sid, st.rst))
        n = len(st.inbox) if n is None else min(n, len(st.inbox))
        out = bytes(st.inbox[:n])
        del st.inbox[:n]
        if st.credit_mode == "read":
            self._delivered(st, len(out))
            self._io(lambda: not self.outbuf, "credit to be written", allow_eof=True)
        return out

    def read_exact(self, sid, n, timeout=None):
        out = bytearray()
        while len(out) < n:
            chunk = self.read(sid, n - len(out), timeout)
            if not chunk:
                raise MuxError("FIN on stream %d after %d of %d bytes" % (sid, len(out), n))
            out += chunk
        return bytes(out)

    def read_all(self, sid, timeout=None):
        """Everything the stream carries until fived's FIN on it."""
        out = bytearray()
        while True:
            chunk = self.read(sid, timeout=timeout)
            if not chunk:
                return bytes(out)
            out += chunk

    def wait(self, predicate, what="a condition", timeout=None, allow_eof=False):
        """Runs the session (reading, answering, sending within windows) until
        predicate() is true."""
        self._io(predicate, what, timeout, allow_eof)

    def next_frame(self, timeout=None):
        """The next frame fived sent that this method has not returned yet (every frame
        is also acted on as it arrives: PINGs answered, windows counted)."""
        self._io(lambda: self.cursor < len(self.frames), "a frame", timeout)
        self.cursor += 1
        return self.frames[self.cursor - 1]

    def wait_goaway(self, timeout=None):
        """Waits for GOAWAY; returns (last stream id, code, reason)."""
        self._io(lambda: self.goaway is not None, "GOAWAY", timeout)
        return self.goaway

    def wait_closed(self, timeout=None):
        """Waits for the end of fived's byte stream; True if it came."""
        self._io(lambda: self.eof, "the end of the session", timeout, allow_eof=True)
        return True

    def run_for(self, seconds):
        """Runs the session for a while (answering PINGs, giving credit)."""
        try:
            self._io(lambda: self.eof, "time", seconds, allow_eof=True)
        except Timeout:
            pass

    # --- the engine ------------------------------------------------------------------

    def _queue(self, plaintext):
        if self.framed:
            self._note_sent(plaintext)
        self._queue_wire(self.transport.wrap(plaintext))

    def _queue_wire(self, wire):
        self.outbuf += wire

    def _pump_out(self):
        """Moves queued stream bytes into DATA frames within both windows, every
        stream in turn, 16384 bytes at a time; FIN once a stream's bytes are out."""
        # Not before framed mode (ATTACH's reply included): frames would pass the line.
        if not self.framed or self.eof or self.goaway is not None and self.goaway[1] == PROTOCOL:
            return
        moved = True
        while moved:
            moved = False
            for st in self.streams.values():
                # Before the answer too: fived holds DATA and FIN sent ahead of it (11.2).
                if st.over or st.fin_sent:
                    continue
                if st.out:
                    n = min(len(st.out), st.send_window, self.send_window, MUX_PAYLOAD_MAX)
                    if n > 0:
                        self._queue(data_frame(st.id, st.out[:n]))
                        self.sent_frames += 1
                        del st.out[:n]
                        st.send_window -= n
                        self.send_window -= n
                        self.rules.spent(st.id, n)
                        moved = True
                elif st.fin_wanted and not st.fin_sent:
                    self._queue(fin_frame(st.id))
                    self.sent_frames += 1
                    st.fin_sent = True
                    self._maybe_over(st)
            if len(self.outbuf) > 1 << 20:
                break

    def _maybe_over(self, st):
        if st.fin_sent and st.fin_received:
            self.rules.end(st.id)

    def _delivered(self, st, n):
        """n bytes of st are delivered to the test: the stream's credit back (11.4), by
        halves of its initial window."""
        if n <= 0:
            return
        st.unreported += n
        if st.unreported >= MUX_STREAM_WINDOW // 2 and not st.over and not st.fin_received:
            self._queue(window_frame(st.id, st.unreported))
            self.rules.credit(st.id, st.unreported)
            st.unreported = 0

    def _taken_off_the_session(self, n):
        """n bytes moved from the session into a stream's buffer (which that stream's
        own window bounds): the session's credit back, by quarters of its window, so
        that a stream nobody reads holds only its own window (11.4)."""
        self.session_unreported += n
        if self.session_unreported >= MUX_SESSION_WINDOW // 4:
            self._queue(window_frame(0, self.session_unreported))
            self.rules.credit(0, self.session_unreported)
            self.session_unreported = 0

    def _frames_in(self, plaintext):
        try:
            frames = self.decoder.feed(plaintext)
        except Violation as v:
            self.violation = v
            raise Violation("fived sent: %s" % v.reason)
        for f in frames:
            self.frames.append(f)
            if self._note_received(f):
                continue
            if self.check:
                try:
                    acted = self.rules.check(f)
                except Violation as v:
                    self.violation = v
                    raise Violation("fived sent %r: %s" % (f, v.reason))
            else:
                acted = f
            if acted is not None:
                self._handle(f)

    def _handle(self, f):
        sid, t, flags, p = f
        if t == PING:
            if flags & ACK:
                self.acks.setdefault(p, time.monotonic())
            else:
                self.pings.append(p)
                if self.ping_delay:
                    self.delayed.append((time.monotonic() + self.ping_delay,
                                         ping_frame(p, ack=True)))
                else:
                    self._queue(ping_frame(p, ack=True))
            return
        if t == GOAWAY:
            self.goaway = parse_goaway(p)
            return
        if t == WINDOW:
            credit = parse_window(p)
            self.windows_from_server.append((sid, credit))
            if sid == 0:
                self.send_window += credit
                if self.send_window > WINDOW_MAX:
                    raise Violation("fived grew the session window past 2^31-1")
            elif sid in self.streams:
                st = self.streams[sid]
                st.send_window += credit
                st.max_send_window = max(st.max_send_window, st.send_window)
                if st.send_window > WINDOW_MAX:
                    raise Violation("fived grew stream %d's window past 2^31-1" % sid)
            self._pump_out()
            return
        st = self.streams.get(sid)
        if st is None:
            return          # an RST or WINDOW for an id we never opened, already dropped
        if t == ACCEPT:
            st.accepted = True
            st.answer_at = time.monotonic()
        elif t == RST:
            st.rst = parse_rst(p)
            if st.answer_at is None:
                st.answer_at = time.monotonic()
            st.out.clear()
        elif t == DATA:
            st.inbox += p
            st.received += len(p)
            self._taken_off_the_session(len(p))
            if st.credit_mode == "receipt":
                self._delivered(st, len(p))
        elif t == FIN:
            st.fin_received = True
            self._maybe_over(st)

    def _io(self, until, what, timeout=None, allow_eof=False):
        """The loop every wait runs: reads and handles frames, writes what is queued,
        until until() is true.  Raises Timeout, or SessionEnded if fived's byte
        stream ends first (unless allow_eof)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self.inbound:
                wire = bytes(self.inbound)
                self.inbound.clear()
                self._wire_in(wire)
            now = time.monotonic()
            while self.delayed and self.delayed[0][0] <= now:
                self._queue(self.delayed.pop(0)[1])
            self._pump_out()
            self._maybe_report()
            if until():
                return
            if self.eof and not self.outbuf:
                if allow_eof:
                    return
                raise SessionEnded("fived ended the session%s while waiting for %s "
                                   "(GOAWAY %r)" % (" with a reset" if self.reset else "",
                                                    what, self.goaway))
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("timed out waiting for %s; streams: %r; goaway %r" %
                              (what, list(self.streams.values())[:8], self.goaway))
            wlist = [self.sock] if self.outbuf and not self.reset else []
            wait = min(left, 0.5)
            if self.delayed:
                wait = max(0.0, min(wait, self.delayed[0][0] - time.monotonic()))
            r, w, _ = select.select([self.sock] if not self.eof else [], wlist, [], wait)
            if w:
                try:
                    n = self.sock.send(self.outbuf[:1 << 18])
                    del self.outbuf[:n]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    self.outbuf.clear()
                    self.reset = True
                    self.eof = True
            if r:
                try:
                    chunk = self.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                    self.reset = True
                if not chunk:
                    self.eof = True
                    self.eof_at = time.monotonic()
                    if self.reset:
                        self.outbuf.clear()
                    continue
                self._wire_in(chunk)

    def _wire_in(self, wire):
        plaintext, ended = self.transport.unwrap(wire)
        if ended:
            self.eof = True
            self.eof_at = time.monotonic()
        if not self.framed:
            self.plain += plaintext
            return
        self._frames_in(plaintext)

    # --- what a test asks afterwards -----------------------------------------------

    def frames_of(self, sid, type_=None):
        return [f for f in self.frames if f.stream == sid and (type_ is None or f.type == type_)]

    def stream_windows(self, sid):
        """The credits fived gave on sid, in order."""
        return [c for s, c in self.windows_from_server if s == sid]
