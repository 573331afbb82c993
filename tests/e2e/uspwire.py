"""A client of fived's USP dialect and a reader of its tokens, written from
docs/PROTOCOL.md sections 8 and 9 alone: it writes the JSON bytes itself and
checks every server message against the rules of section 8.1 (one compact
JSON object per line, "message" first, the session ids last).  Section 4's
key blobs and signed data come from fivewire.

Layers:

* message builders: `initialize`, `menu`, `invalidate`, `pubkey`, ... return
  dicts; `encode` turns one into its line.
* `Reader`: splits the server's bytes into messages, then application bytes.
* `UspClient`: a connection to fived speaking the above, on plain TCP or
  from a chosen source address.
* tokens: `parse_token`, `claims`, `kid`, `verify_public`, `mint_public`,
  `tampered`: section 9.1's format, enough to read, check and make tokens.
"""

import base64
import hashlib
import json
import re
import socket
import struct
import time

from fivewire import key_blob, signed_data, ssh_string

MAX_LINE = 65536
DEPTH_MAX = 4
SERVER_ID = re.compile(r"[0-9a-f]{32}\Z")
CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
IMPLICIT = b"fived-token-v1"
PUBLIC, LOCAL = b"v4.public.", b"v4.local."


class ProtocolError(AssertionError):
    """The server wrote something section 8 does not allow."""


# --- client messages (8.2) ----------------------------------------------------------------


def encode(msg, crlf=False):
    """One message as its line: compact JSON, UTF-8, LF (or CR LF)."""
    text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
    return text + (b"\r\n" if crlf else b"\n")


def stream(application, token=None, parameters=None):
    s = {"application": application}
    if token is not None:
        s["token"] = token.decode() if isinstance(token, bytes) else token
    if parameters is not None:
        s["parameters"] = parameters
    return s


def initialize(*streams, authentication=None, vhost=None, client_session_id=None):
    """streams: application names, (name, token) pairs, or stream() dicts."""
    out = []
    for s in streams:
        if isinstance(s, str):
            s = stream(s)
        elif isinstance(s, tuple):
            s = stream(*s)
        out.append(s)
    msg = {"message": "initialize", "streams": out}
    if authentication is not None:
        msg["authentication"] = list(authentication)
    return _common(msg, vhost, client_session_id)


def menu(vhost=None, client_session_id=None):
    return _common({"message": "menu"}, vhost, client_session_id)


def invalidate(*tokens, client_session_id=None):
    msg = {"message": "invalidate",
           "tokens": [t.decode() if isinstance(t, bytes) else t for t in tokens]}
    return _common(msg, None, client_session_id)


def session_request(client_session_id, authorization_token=None, token=None, action=None):
    """The email's first request (8.7): the menu, or an application begun or ended."""
    app = None if action is None else {
        "token": token.decode() if isinstance(token, bytes) else token, "action": action}
    return {"client_session_id": client_session_id, "authorization_token": authorization_token,
            "application_session": app}


def service_request(client_session_id, requested, authorization_token=None):
    """The email's requested_services (8.7): {index: body}, index 0 authentication or
    invalidation."""
    return {"client_session_id": client_session_id, "authorization_token": authorization_token,
            "requested_services": {str(k): v for k, v in requested.items()}}


def _common(msg, vhost, client_session_id):
    if vhost is not None:
        msg["vhost"] = vhost
    if client_session_id is not None:
        msg["client_session_id"] = client_session_id
    return msg


def pubkey(user, pk):
    return {"message": "pubkey", "user": user, "key": b64(key_blob(pk))}


def signature(sk, challenge, user, pk, binding=b"", server_key=b""):
    """The answer to a challenge message: section 4.2's signed data with its session and
    nonce, naming the server by server_key (its static key) when given."""
    nonce = base64.b64decode(challenge["nonce"], validate=True)
    if len(nonce) != 32:
        raise ProtocolError("a nonce of %d bytes" % len(nonce))
    data = signed_data(challenge["session"].encode(), nonce, user, pk, binding, server_key)
    blob = ssh_string(b"ssh-ed25519") + ssh_string(sk.sign(data))
    return {"message": "signature", "signature": b64(blob)}


def password(user):
    return {"message": "password", "user": user}


def response(answer):
    return {"message": "response", "response": b64(answer)}


def token_message(token):
    return {"message": "token", "token": token.decode() if isinstance(token, bytes) else token}


def b64(data):
    return base64.b64encode(data).decode()


# --- server messages (8.3) ------------------------------------------------------------------

# Each server message's own members, in the order section 8.3 writes them; True when required.
SERVER_MESSAGES = {
    "authenticate": [("protocol", True)],
    "challenge": [("session", True), ("nonce", True)],
    "prompt": [("kind", True), ("text", True)],
    "token": [("identity", False), ("streams", True)],
    "connect": [("application", True)],
    "menu": [("applications", True)],
    "invalidated": [("count", True)],
    "error": [("error", True), ("application", False), ("supported", False)],
    "proof": [("proof", True)],
    "signkey": [("key", True), ("provider", True)],
    "redirect": [("application", True), ("host", True), ("port", True),
                 ("target_application", True)],
}


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ProtocolError("member %r twice" % k)
        seen[k] = v
    return seen


def _depth(v):
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


def decode_server(line, client_session_id=None):
    """One server line (with its LF) -> dict, checked against sections 8.1 and 8.3.

    client_session_id: the id the client has sent, which every message must echo; None
    when it has sent none, and then no message may carry one."""
    if not line.endswith(b"\n") or line.endswith(b"\r\n"):
        raise ProtocolError("a server line must end with a bare LF: %r" % line[-20:])
    if len(line) > MAX_LINE:
        raise ProtocolError("a server message of %d bytes" % len(line))
    try:
        msg = json.loads(line[:-1].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("not JSON: %r (%s)" % (line[:200], e))
    if not isinstance(msg, dict):
        raise ProtocolError("not an object: %r" % line[:200])
    if encode(msg) != line:
        raise ProtocolError("not compact JSON: %r" % line[:200])
    keys = list(msg)
    kind = msg.get("message")
    # The email's numbered menu nests one level more than any other message (8.7).
    if _depth(msg) > DEPTH_MAX + (kind is None and "application_menu" in msg):
        raise ProtocolError("nested too deep: %r" % line[:200])
    if kind is None:
        _check_answer(msg, keys, client_session_id)
        return msg
    if keys[:1] != ["message"] or kind not in SERVER_MESSAGES:
        raise ProtocolError("unknown or misplaced message: %r" % line[:200])
    ids = ["server_session_id"] + (["client_session_id"] if client_session_id else [])
    if keys[-len(ids):] != ids:
        raise ProtocolError("session ids missing or out of place: %r" % keys)
    if not isinstance(msg["server_session_id"], str) or not SERVER_ID.match(
            msg["server_session_id"]):
        raise ProtocolError("bad server_session_id: %r" % msg["server_session_id"])
    if client_session_id and msg["client_session_id"] != client_session_id:
        raise ProtocolError("client_session_id %r, sent %r" % (msg["client_session_id"],
                                                                client_session_id))
    own = keys[1:-len(ids)]
    allowed = [name for name, _ in SERVER_MESSAGES[kind]]
    required = [name for name, req in SERVER_MESSAGES[kind] if req]
    if [k for k in allowed if k in own] != own or any(r not in own for r in required):
        raise ProtocolError("members of %s: %r" % (kind, own))
    _check_values(msg)
    return msg


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")
INDEX = re.compile(r"(0|[1-9][0-9]{0,5})\Z")
AUTHZ = re.compile(r"[0-9a-f]{64}\Z")


def _check_menu(menu):
    """The email's numbered application menu (8.7): index 0, then 1, 2, ... in order."""
    if list(menu) != [str(i) for i in range(len(menu))]:
        raise ProtocolError("menu indices %r" % list(menu))
    zero = menu["0"]
    if isinstance(zero, list):
        for m in zero:
            if m != {"auth_method": m.get("auth_method"),
                     "expected_request_body": {"auth_method": ""}} or not PROTOCOL.match(
                         m["auth_method"]):
                raise ProtocolError("menu index 0 entry %r" % m)
    elif zero != {"name": "token invalidation", "expected_request_body": [""]}:
        raise ProtocolError("menu index 0 %r" % zero)
    for i in range(1, len(menu)):
        e = menu[str(i)]
        if (list(e) != ["name", "requires", "expected_request_body"]
                or not NAME.match(e["name"]) or e["expected_request_body"] != {}
                or any(r not in ("authentication", "encryption") for r in e["requires"])):
            raise ProtocolError("menu entry %r" % e)


def _check_answer(msg, keys, client_session_id):
    """A message of the email's forms (8.7): no "message"; the session ids last."""
    ids = ["server_session_id"] + (["client_session_id"] if client_session_id else [])
    if keys[-len(ids):] != ids or not SERVER_ID.match(msg["server_session_id"]):
        raise ProtocolError("session ids missing or out of place: %r" % keys)
    own = keys[:-len(ids)]
    head = [k for k in ("authorization_token", "application_menu") if k in own]
    if own[:len(head)] != head or not own:
        raise ProtocolError("members of an answer: %r" % own)
    if "authorization_token" in own and (not AUTHZ.match(msg["authorization_token"])
                                         or "application_menu" not in own):
        raise ProtocolError("authorization_token %r" % msg)
    if "application_menu" in own:
        _check_menu(msg["application_menu"])
    for k in own[len(head):]:
        v = msg[k]
        if not INDEX.match(k):
            raise ProtocolError("answer member %r" % k)
        if k == "0":
            ok = list(v) == ["invalidated"] and type(v["invalidated"]) is int
        else:
            ok = (list(v) == ["token"] and isinstance(v["token"], str)) or (
                list(v) == ["error"] and list(v["error"]) == ["message"]
                and isinstance(v["error"]["message"], str) and v["error"]["message"])
        if not ok:
            raise ProtocolError("answer for index %s: %r" % (k, v))
PROTOCOL = re.compile(r"[a-z0-9-]{1,32}\Z")


def _check_values(msg):
    kind = msg["message"]
    bad = None
    if kind == "authenticate" and not PROTOCOL.match(msg["protocol"]):
        bad = "protocol"
    elif kind == "challenge" and (msg["session"] != msg["server_session_id"]
                                  or len(base64.b64decode(msg["nonce"], validate=True)) != 32):
        bad = "challenge"
    elif kind == "prompt" and (msg["kind"] not in ("echo-off", "echo-on", "info", "error")
                               or not isinstance(msg["text"], str)):
        bad = "prompt"
    elif kind == "token":
        for s in msg["streams"]:
            if (not NAME.match(s.get("application", "")) or len(s) != 2
                    or not (isinstance(s.get("token"), str) or isinstance(s.get("error"), str))):
                bad = "token stream %r" % s
    elif kind == "connect" and not NAME.match(msg["application"]):
        bad = "application"
    elif kind == "menu":
        for a in msg["applications"]:
            if (list(a) != ["application", "requires"] or not NAME.match(a["application"])
                    or any(r not in ("authentication", "encryption") for r in a["requires"])):
                bad = "menu entry %r" % a
    elif kind == "redirect" and (not NAME.match(msg["application"])
                                 or not NAME.match(msg["target_application"])
                                 or type(msg["port"]) is not int
                                 or not 1 <= msg["port"] <= 65535
                                 or not re.match(r"[A-Za-z0-9._:][A-Za-z0-9._:-]{0,252}\Z",
                                                 msg["host"])):
        bad = "redirect"
    elif kind == "invalidated" and (type(msg["count"]) is not int or msg["count"] < 0):
        bad = "count"
    elif kind == "error" and (not msg["error"] or
                              any(not PROTOCOL.match(p) for p in msg.get("supported", []))):
        bad = "error"
    if bad:
        raise ProtocolError("bad %s in %r" % (bad, msg))


class Reader:
    """The server's side of the connection: messages, then (after connect) raw bytes."""

    def __init__(self):
        self.buf = bytearray()
        self.connected = False
        self.lines = []

    def feed(self, data):
        self.buf += data

    def take_line(self):
        """The next whole line, or None."""
        if self.connected:
            raise ProtocolError("no messages after connect")
        at = self.buf.find(b"\n")
        if at < 0:
            if len(self.buf) > MAX_LINE:
                raise ProtocolError("a server line longer than %d bytes" % MAX_LINE)
            return None
        line = bytes(self.buf[:at + 1])
        del self.buf[:at + 1]
        self.lines.append(line)
        return line


# --- the connection -------------------------------------------------------------------------


class Closed(AssertionError):
    """The server closed the connection where a message was expected."""


class UspClient:
    """A USP connection to fived.

    source: a loopback address to connect from.  Every message the server
    sends is checked by decode_server; `sent_id` tracks the client_session_id
    the server must echo.
    """

    def __init__(self, port, source="127.0.0.1", timeout=10.0, host="127.0.0.1",
                 server_key=b""):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.reader = Reader()
        self.sent_id = None
        self.messages = []
        self.session_id = None
        self.server_key = server_key

    # sending

    def send(self, *items):
        """Messages (dicts) and raw bytes, in one write.  A dict's client_session_id is
        sent, and echoed from then on, even in a message refused for another member."""
        out = bytearray()
        for item in items:
            if isinstance(item, dict):
                if "client_session_id" in item:
                    self.sent_id = item["client_session_id"]
                out += encode(item)
            else:
                out += item
        self.sock.sendall(bytes(out))

    def send_slowly(self, data, size=1, pause=0.0):
        """data in writes of size bytes."""
        for i in range(0, len(data), size):
            self.sock.sendall(data[i:i + size])
            if pause:
                time.sleep(pause)

    def shutdown(self):
        self.sock.shutdown(socket.SHUT_WR)

    # receiving

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self.reader.feed(chunk)
        return chunk

    def recv(self):
        """The next server message, checked; raises Closed at the end of the stream."""
        while True:
            line = self.reader.take_line()
            if line is not None:
                break
            if not self._fill():
                raise Closed("closed after %r" % bytes(self.reader.buf))
        msg = decode_server(line, self.sent_id)
        if self.session_id is None:
            self.session_id = msg["server_session_id"]
        elif msg["server_session_id"] != self.session_id:
            raise ProtocolError("server_session_id changed")
        self.messages.append(msg)
        if msg.get("message") == "connect":
            self.reader.connected = True
        return msg

    def expect(self, message, **members):
        """The next message, which must be of this kind and have these member values."""
        msg = self.recv()
        if msg.get("message") != message:
            raise AssertionError("expected %s, got %r" % (message, msg))
        for k, v in members.items():
            if msg.get(k) != v:
                raise AssertionError("%s: %s is %r, expected %r" % (message, k, msg.get(k), v))
        return msg

    def expect_error(self, error, **members):
        """An error message, then the end of the connection (8.3)."""
        msg = self.expect("error", error=error, **members)
        self.expect_closed()
        return msg

    def expect_closed(self):
        """Nothing more from the server: its end of the stream."""
        rest = self.rest()
        if rest:
            raise ProtocolError("bytes after the last message: %r" % rest[:200])

    def rest(self, limit=1 << 24):
        """Everything the server sends until it closes (after connect: the application's)."""
        out = bytearray(self.reader.buf)
        self.reader.buf.clear()
        while len(out) < limit:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def read_exact(self, n):
        """n application bytes after connect."""
        while len(self.reader.buf) < n:
            if not self._fill():
                raise Closed("closed after %r" % bytes(self.reader.buf))
        out = bytes(self.reader.buf[:n])
        del self.reader.buf[:n]
        return out

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # flows

    def pubkey_exchange(self, user, sk, pk, binding=b"", answer="token"):
        """After authenticate(pubkey): pubkey, challenge, signature; returns the answer (the
        token message, or with answer=None the email's answer)."""
        self.send(pubkey(user, pk))
        ch = self.expect("challenge")
        self.send(signature(sk, ch, user, pk, binding, self.server_key))
        return self.expect(answer) if answer else self.recv()


def tokens_of(msg):
    """{application: token or ("error", text)} of a token message."""
    return {s["application"]: s["token"] if "token" in s else ("error", s["error"])
            for s in msg["streams"]}


# --- tokens (section 9) ---------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def unb64url(text):
    if isinstance(text, str):
        text = text.encode()
    if not re.fullmatch(rb"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def parse_token(token):
    """(header, body bytes, footer bytes) of a v4 token, its footer of section 9.1's form."""
    if isinstance(token, str):
        token = token.encode()
    for header in (PUBLIC, LOCAL):
        if token.startswith(header):
            break
    else:
        raise ValueError("not a v4 token: %r" % token[:20])
    parts = token[len(header):].split(b".")
    if len(parts) != 2:
        raise ValueError("a fived token has a footer")
    footer = unb64url(parts[1])
    if not re.fullmatch(rb'\{"kid":"[A-Za-z0-9_-]{12}"\}', footer):
        raise ValueError("footer %r" % footer)
    return header, unb64url(parts[0]), footer


def claims(token):
    """The claims of a v4.public token (anyone can read them)."""
    header, body, _ = parse_token(token)
    assert header == PUBLIC
    return json.loads(body[:-64], object_pairs_hook=_no_duplicates)


def footer_kid(token):
    return json.loads(parse_token(token)[2])["kid"]


def kid(public_key):
    """Section 9.1: unpadded base64url of the first 9 bytes of SHA-256 of the public key."""
    return b64url(hashlib.sha256(public_key).digest()[:9]).decode()


def pae(*pieces):
    """PASETO's pre-authentication encoding."""
    out = struct.pack("<Q", len(pieces))
    for p in pieces:
        out += struct.pack("<Q", len(p)) + p
    return out


def verify_public(token, public_key):
    """Checks a v4.public token's signature under public_key (raw 32 bytes); raises if bad."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    header, body, footer = parse_token(token)
    assert header == PUBLIC
    message, sig = body[:-64], body[-64:]
    Ed25519PublicKey.from_public_bytes(public_key).verify(
        sig, pae(PUBLIC, message, footer, IMPLICIT))
    return json.loads(message)


def mint_public(sk, public_key, claims_, implicit=IMPLICIT, footer=None):
    """A v4.public token signed with sk (an Ed25519 private key object)."""
    message = json.dumps(claims_, separators=(",", ":")).encode()
    if footer is None:
        footer = b'{"kid":"%s"}' % kid(public_key).encode()
    sig = sk.sign(pae(PUBLIC, message, footer, implicit))
    return PUBLIC + b64url(message + sig) + (b"." + b64url(footer) if footer else b"")


def rfc3339(unix):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def from_rfc3339(text):
    import calendar
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def tampered(token, at=20):
    """The token with one character of its body changed (still well-formed base64url)."""
    if isinstance(token, str):
        token = token.encode()
    c = token[at:at + 1]
    return token[:at] + (b"B" if c == b"A" else b"A") + token[at + 1:]
