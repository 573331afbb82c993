"""A client of fived's sealed handshake, written from docs/PROTOCOL.md
section 6 alone: Noise IK and XX (revision 34, 25519/ChaChaPoly/BLAKE2b),
the message framing, mac1 and mac2, cookie rounds with proof of work, the
choice of record suite, the record streams of both suites (XChaCha20-Poly1305
secretstream, AES-256-GCM) and the channel binding.  Tests use it to speak the sealed
transport byte by byte, independently of five and libfive.

Layers, from the bottom:

* `Initiator`: a Noise handshake state for the initiator role of the
  interactive patterns, checked against the cacophony vectors.
* `Handshake`: one sealed handshake as the client sees it, without I/O:
  INITIATION bytes, answering a COOKIE, reading the RESPONSE, FINISH.
* `RecordSender` / `RecordReceiver`: the record streams (section 6.7).
* `SealedClient`: a connection to fived doing all of the above.
"""

import hashlib
import hmac
import socket
import struct
import time

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization
from nacl import bindings as nb

HASHLEN = 64
DHLEN = 32

INITIATION, RESPONSE, COOKIE, FINISH, REJECT = 0xF5, 0xF6, 0xF7, 0xF8, 0xF9
VERSION = 1
IK, XX = 0, 1
FLAG_COOKIE = 0x01
# Record suites: numbers in the RESPONSE payload, bit (number - 1) in the offer.
XCHACHA, AES256GCM = 1, 2
SUITES = (XCHACHA, AES256GCM)


def offer(*suites):
    """The INITIATION's suites field offering these suites."""
    return sum(1 << (s - 1) for s in suites)


SUITE_1 = offer(XCHACHA)  # what clients before AES-256-GCM offered
FLAG_0RTT = 0x01
PROLOGUE = b"fived sealed v1"
Z32 = bytes(32)
MAX_EARLY = 16384
MAX_RECORD_DATA = 16384
RECORD_MIN, RECORD_MAX = 17, 16401
GCM_TAG = 16
REKEY_EVERY = 65536
GCM_REKEY_NONCE = bytes(4) + b"\xff" * 8
COOKIE_LEN = 60
REJECT_CODES = {1: "version not supported", 2: "no common suite", 3: "pattern unknown",
                4: "busy"}

TAG_MESSAGE = nb.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL
TAG_PUSH = nb.crypto_secretstream_xchacha20poly1305_TAG_PUSH
HEADERBYTES = nb.crypto_secretstream_xchacha20poly1305_HEADERBYTES


class SealError(Exception):
    """The handshake or the record stream failed."""


class Closed(SealError):
    """The server closed the connection (without a word, or in the middle of a message)."""


class Rejected(SealError):
    def __init__(self, code):
        super().__init__("REJECT %d (%s)" % (code, REJECT_CODES.get(code, "?")))
        self.code = code


class CookieDemand(SealError):
    """The server answered with a COOKIE and no more cookie rounds were allowed."""

    def __init__(self, message):
        super().__init__("COOKIE, difficulty %d" % message[2])
        self.message = message


class AuthFailure(SealError):
    """A message or record did not authenticate, or the server is not the one expected."""


class Truncated(SealError):
    """The server's record stream ended without a FINAL record."""


# --- primitives ---------------------------------------------------------------


def blake2b(data, size=64, key=b""):
    return hashlib.blake2b(data, digest_size=size, key=key).digest()


def hmac_hash(key, data):
    return hmac.new(key, data, hashlib.blake2b).digest()


def hkdf(ck, ikm, n):
    temp = hmac_hash(ck, ikm)
    out1 = hmac_hash(temp, b"\x01")
    out2 = hmac_hash(temp, out1 + b"\x02")
    if n == 2:
        return out1, out2
    return out1, out2, hmac_hash(temp, out2 + b"\x03")


def keypair(private=None):
    """(private bytes, public bytes) of an X25519 key, new unless private is given."""
    sk = (X25519PrivateKey.from_private_bytes(private) if private is not None
          else X25519PrivateKey.generate())
    priv = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return priv, public_of(priv)


def public_of(private):
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dh(private, public):
    return X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(public))


def mac1_key(k):
    return blake2b(b"mac1----" + k, 32)


def cookie_key(k):
    return blake2b(b"cookie--" + k, 32)


def tai64n(unix=None):
    t = time.time() if unix is None else unix
    seconds = int(t)
    nanos = int(round((t - seconds) * 1e9)) % 1000000000
    return struct.pack("!QI", (1 << 62) + seconds, nanos)


def leading_zero_bits(digest):
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def pow_hash(cookie, original_mac1, nonce):
    return blake2b(b"fived-pow-v1" + cookie + original_mac1 + nonce, 32)


def solve_pow(cookie, original_mac1, difficulty, limit=1 << 26, start=0):
    """The first 8-byte nonce (a big-endian counter from start) whose work has
    `difficulty` leading zero bits, and the number of attempts."""
    prefix = b"fived-pow-v1" + cookie + original_mac1
    for i in range(start, start + limit):
        nonce = i.to_bytes(8, "big")
        if leading_zero_bits(blake2b(prefix + nonce, 32)) >= difficulty:
            return nonce, i - start + 1
    raise SealError("no proof of work within %d attempts" % limit)


# --- Noise ---------------------------------------------------------------------


class CipherState:
    def __init__(self, k=None):
        self.k = k
        self.n = 0

    def encrypt(self, ad, plaintext):
        if self.k is None:
            return plaintext
        nonce = b"\0\0\0\0" + struct.pack("<Q", self.n)
        out = ChaCha20Poly1305(self.k).encrypt(nonce, plaintext, ad)
        self.n += 1
        return out

    def decrypt(self, ad, ciphertext):
        if self.k is None:
            return ciphertext
        nonce = b"\0\0\0\0" + struct.pack("<Q", self.n)
        try:
            out = ChaCha20Poly1305(self.k).decrypt(nonce, ciphertext, ad)
        except Exception as e:
            raise AuthFailure("Noise message does not authenticate") from e
        self.n += 1
        return out


# Interactive patterns, initiator's view: pre-messages, then messages.
PATTERNS = {
    "NN": ([], [], [["e"], ["e", "ee"]]),
    "NK": ([], ["s"], [["e", "es"], ["e", "ee"]]),
    "NX": ([], [], [["e"], ["e", "ee", "s", "es"]]),
    "XN": ([], [], [["e"], ["e", "ee"], ["s", "se"]]),
    "XK": ([], ["s"], [["e", "es"], ["e", "ee"], ["s", "se"]]),
    "XX": ([], [], [["e"], ["e", "ee", "s", "es"], ["s", "se"]]),
    "KN": (["s"], [], [["e"], ["e", "ee", "se"]]),
    "KK": (["s"], ["s"], [["e", "es", "ss"], ["e", "ee", "se"]]),
    "KX": (["s"], [], [["e"], ["e", "ee", "se", "s", "es"]]),
    "IN": ([], [], [["e", "s"], ["e", "ee", "se"]]),
    "IK": ([], ["s"], [["e", "es", "s", "ss"], ["e", "ee", "se"]]),
    "IX": ([], [], [["e", "s"], ["e", "ee", "se", "s", "es"]]),
}


class Initiator:
    """The initiator of a Noise_<pattern>_25519_ChaChaPoly_BLAKE2b handshake.

    static: our static private key (32 bytes) or None; remote_static: the
    responder's public key when the pattern pre-knows it; ephemeral: a fixed
    ephemeral private key (for test vectors), else a new one.
    """

    def __init__(self, pattern, prologue=b"", static=None, remote_static=None,
                 ephemeral=None):
        name = ("Noise_%s_25519_ChaChaPoly_BLAKE2b" % pattern).encode()
        self.h = name.ljust(HASHLEN, b"\0") if len(name) <= HASHLEN else blake2b(name)
        self.ck = self.h
        self.cs = CipherState()
        self.s = static
        self.rs = remote_static
        self.e = None
        self.re = None
        self.fixed_e = ephemeral
        pre_i, pre_r, self.messages = PATTERNS[pattern]
        self.mix_hash(prologue)
        for _ in pre_i:
            self.mix_hash(public_of(self.s))
        for _ in pre_r:
            self.mix_hash(self.rs)
        self.index = 0

    def copy(self):
        other = Initiator.__new__(Initiator)
        other.__dict__.update(self.__dict__)
        other.cs = CipherState(self.cs.k)
        other.cs.n = self.cs.n
        return other

    def mix_hash(self, data):
        self.h = blake2b(self.h + data)

    def mix_key(self, ikm):
        self.ck, temp = hkdf(self.ck, ikm, 2)
        self.cs = CipherState(temp[:32])

    def encrypt_and_hash(self, plaintext):
        c = self.cs.encrypt(self.h, plaintext)
        self.mix_hash(c)
        return c

    def decrypt_and_hash(self, ciphertext):
        p = self.cs.decrypt(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return p

    def _dh(self, token):
        mine = self.e if token[0] == "e" else self.s
        theirs = self.re if token[1] == "e" else self.rs
        self.mix_key(dh(mine, theirs))

    def write_message(self, payload=b""):
        assert self.index % 2 == 0, "not the initiator's turn"
        out = bytearray()
        for token in self.messages[self.index]:
            if token == "e":
                self.e = self.fixed_e if self.fixed_e is not None else keypair()[0]
                pub = public_of(self.e)
                out += pub
                self.mix_hash(pub)
            elif token == "s":
                out += self.encrypt_and_hash(public_of(self.s))
            else:
                self._dh(token)
        out += self.encrypt_and_hash(payload)
        self.index += 1
        return bytes(out)

    def read_message(self, message):
        assert self.index % 2 == 1, "not the responder's turn"
        pos = 0
        for token in self.messages[self.index]:
            if token == "e":
                if len(message) < pos + DHLEN:
                    raise AuthFailure("Noise message too short")
                self.re = message[pos:pos + DHLEN]
                pos += DHLEN
                self.mix_hash(self.re)
            elif token == "s":
                n = DHLEN + (16 if self.cs.k is not None else 0)
                if len(message) < pos + n:
                    raise AuthFailure("Noise message too short")
                self.rs = self.decrypt_and_hash(message[pos:pos + n])
                pos += n
            else:
                self._dh(token)
        if self.cs.k is not None and len(message) - pos < 16:
            raise AuthFailure("Noise message too short")
        payload = self.decrypt_and_hash(message[pos:])
        self.index += 1
        return payload

    @property
    def done(self):
        return self.index == len(self.messages)

    def split(self):
        """(initiator-to-responder key, responder-to-initiator key), 32 bytes each."""
        k1, k2 = hkdf(self.ck, b"", 2)
        return k1[:32], k2[:32]


# --- one sealed handshake, without I/O ------------------------------------------


def initiation_bytes(pattern, msg1, mac1k, flags=0, pow_nonce=bytes(8), cookie=None,
                     version=VERSION, suites=SUITE_1, kind=INITIATION, n=None):
    """An INITIATION around Noise message 1, with its mac1 (and mac2 when a cookie
    is given). The fields may be set to anything, for tests of the server's checks."""
    head = struct.pack("!BBBBHH", kind, version, pattern, flags, suites,
                       len(msg1) if n is None else n)
    body = head + msg1 + pow_nonce
    mac1 = blake2b(body, 16, mac1k)
    mac2 = blake2b(body + mac1, 16, cookie) if cookie is not None else bytes(16)
    return body + mac1 + mac2


def fix_mac1(message, mac1k):
    """The INITIATION `message` with its mac1 made right for its bytes (mac2 kept)."""
    n = struct.unpack("!H", message[6:8])[0]
    end = 16 + n
    return message[:end] + blake2b(message[:end], 16, mac1k) + message[end + 16:]


class Handshake:
    """The client's side of one sealed handshake.

    server_pub: the server's static key for IK, None for XX (first contact).
    static: our static private key (a new one if None). early: for IK the early
    data carried in message 1 (for XX give it to finish()). timestamp: the
    TAI64N label (12 bytes) for IK, now if None.
    """

    def __init__(self, server_pub=None, static=None, early=b"", timestamp=None,
                 ephemeral=None, version=VERSION, suites=SUITE_1):
        self.pattern = IK if server_pub is not None else XX
        self.server_pub = server_pub
        self.static = static if static is not None else keypair()[0]
        self.static_pub = public_of(self.static)
        self.version, self.suites = version, suites
        self.k = server_pub if self.pattern == IK else Z32
        self.mac1_key = mac1_key(self.k)
        self.cookie_key = cookie_key(self.k)
        if self.pattern == IK:
            assert len(early) <= MAX_EARLY
            self.timestamp = timestamp if timestamp is not None else tai64n()
            payload = self.timestamp + struct.pack("!H", len(early)) + early
            n = 110 + len(early)
        else:
            assert not early, "XX carries its early data in FINISH"
            payload = b""
            n = 32
        self.early = early
        head = struct.pack("!BBBBHH", INITIATION, version, self.pattern, 0, suites, n)
        self.noise = Initiator("IK" if self.pattern == IK else "XX", PROLOGUE + head,
                               static=self.static, remote_static=server_pub,
                               ephemeral=ephemeral)
        self.msg1 = self.noise.write_message(payload)
        assert len(self.msg1) == n
        self.initiation = initiation_bytes(self.pattern, self.msg1, self.mac1_key,
                                           version=version, suites=suites)
        self.original_mac1 = self.initiation[16 + n:32 + n]
        self.ephemeral_pub = self.msg1[:32]
        self.flags = None
        self.suite = None
        self.server_static = None
        self.pow_attempts = 0

    def with_cookie(self, cookie, pow_nonce):
        """The same INITIATION again, with the cookie flag, the work and mac2."""
        return initiation_bytes(self.pattern, self.msg1, self.mac1_key, flags=FLAG_COOKIE,
                                pow_nonce=pow_nonce, cookie=cookie, version=self.version,
                                suites=self.suites)

    def open_cookie(self, message):
        """(difficulty, cookie) from a COOKIE message answering this handshake."""
        if len(message) != COOKIE_LEN or message[0] != COOKIE or message[1] != VERSION \
                or message[3] != 0 or message[2] > 32:
            raise SealError("malformed COOKIE %r" % message[:4])
        try:
            cookie = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(
                message[28:60], self.original_mac1 + message[0:4], message[4:28],
                self.cookie_key)
        except Exception as e:
            raise AuthFailure("COOKIE does not open") from e
        return message[2], cookie

    def answer_cookie(self, message, limit=1 << 26):
        """The INITIATION to send on a new connection after `message` (a COOKIE)."""
        difficulty, cookie = self.open_cookie(message)
        nonce, tries = solve_pow(cookie, self.original_mac1, difficulty, limit)
        self.pow_attempts += tries
        return self.with_cookie(cookie, nonce)

    def read_response(self, message):
        """Reads the RESPONSE; returns its flags. Raises AuthFailure if it does not
        authenticate (a wrong server, or bytes changed on the way)."""
        expect = 50 if self.pattern == IK else 98
        if len(message) < 4 or message[0] != RESPONSE or message[1] != VERSION:
            raise AuthFailure("not a RESPONSE: %r" % message[:4])
        n = struct.unpack("!H", message[2:4])[0]
        if n != expect or len(message) != 4 + n:
            raise AuthFailure("RESPONSE of length %d" % n)
        payload = self.noise.read_message(message[4:])
        offered = self.suites or offer(XCHACHA)
        if len(payload) != 2 or payload[0] not in SUITES or \
                not offered & offer(payload[0]) or payload[1] & ~FLAG_0RTT:
            raise AuthFailure("RESPONSE payload %r" % payload)
        self.suite = payload[0]
        self.flags = payload[1]
        self.server_static = self.noise.rs
        return self.flags

    def finish(self, early=b""):
        """XX: the FINISH message carrying `early`."""
        assert self.pattern == XX and len(early) <= MAX_EARLY
        self.early = early
        msg3 = self.noise.write_message(struct.pack("!H", len(early)) + early)
        assert len(msg3) == 66 + len(early)
        return struct.pack("!BBH", FINISH, VERSION, len(msg3)) + msg3

    def copy(self):
        """An independent copy, to try several continuations of one handshake."""
        other = Handshake.__new__(Handshake)
        other.__dict__.update(self.__dict__)
        other.noise = self.noise.copy()
        return other

    @property
    def handshake_hash(self):
        return self.noise.h

    def keys(self):
        """(client-to-server key, server-to-client key)."""
        assert self.noise.done
        return self.noise.split()


# --- records ----------------------------------------------------------------------


def header_len(suite):
    return HEADERBYTES if suite == XCHACHA else 0


def gcm_nonce(number):
    """AES-256-GCM: record `number` of a direction (from 0, FINAL included)."""
    return bytes(4) + struct.pack("!Q", number)


def gcm_rekey(key):
    """Noise's Rekey(k): the first 32 bytes of ENCRYPT(k, 2^64 - 1, empty, zeros)."""
    return AESGCM(key).encrypt(GCM_REKEY_NONCE, bytes(32), None)[:32]


class RecordSender:
    def __init__(self, key, suite=XCHACHA):
        self.suite = suite
        if suite == XCHACHA:
            self.state = nb.crypto_secretstream_xchacha20poly1305_state()
            self.header = nb.crypto_secretstream_xchacha20poly1305_init_push(self.state, key)
        else:
            self.key, self.number, self.header = key, 0, b""
        self.count = 0
        self.final = False

    def records(self, data, size=MAX_RECORD_DATA):
        out = bytearray()
        for i in range(0, len(data), size):
            out += self.record(data[i:i + size])
        return bytes(out)

    def record(self, chunk, tag=TAG_MESSAGE):
        """One record; for AES-256-GCM the tag says only MESSAGE or FINAL (no data)."""
        assert not self.final
        if self.suite == XCHACHA:
            c = nb.crypto_secretstream_xchacha20poly1305_push(self.state, chunk, None, tag)
        else:
            assert tag in (TAG_MESSAGE, TAG_FINAL)
            c = AESGCM(self.key).encrypt(gcm_nonce(self.number), chunk, None)
            self.number += 1
        if tag == TAG_MESSAGE:
            self.count += 1
            if self.count % REKEY_EVERY == 0:
                if self.suite == XCHACHA:
                    nb.crypto_secretstream_xchacha20poly1305_rekey(self.state)
                else:
                    self.key = gcm_rekey(self.key)
        elif tag == TAG_FINAL:
            self.final = True
        return struct.pack("!H", len(c)) + c

    def final_record(self):
        return self.record(b"", TAG_FINAL)


class RecordReceiver:
    def __init__(self, key, header, suite=XCHACHA):
        self.suite = suite
        if suite == XCHACHA:
            self.state = nb.crypto_secretstream_xchacha20poly1305_state()
            nb.crypto_secretstream_xchacha20poly1305_init_pull(self.state, header, key)
        else:
            assert header == b""
            self.key, self.number = key, 0
        self.count = 0
        self.final = False

    def open(self, body):
        """The data of one record (its length prefix removed); b"" at FINAL."""
        if self.final:
            raise AuthFailure("a record after FINAL")
        if self.suite == AES256GCM:
            return self._open_gcm(body)
        if not RECORD_MIN <= len(body) <= RECORD_MAX:
            raise AuthFailure("record length %d" % len(body))
        try:
            m, tag = nb.crypto_secretstream_xchacha20poly1305_pull(self.state, body, None)
        except Exception as e:
            raise AuthFailure("record does not authenticate") from e
        if tag == TAG_FINAL:
            if m:
                raise AuthFailure("FINAL record with data")
            self.final = True
            return b""
        if tag != TAG_MESSAGE or not m:
            raise AuthFailure("record with tag %d and %d bytes" % (tag, len(m)))
        self.count += 1
        if self.count % REKEY_EVERY == 0:
            nb.crypto_secretstream_xchacha20poly1305_rekey(self.state)
        return m

    def _open_gcm(self, body):
        if not GCM_TAG <= len(body) <= MAX_RECORD_DATA + GCM_TAG:
            raise AuthFailure("record length %d" % len(body))
        try:
            m = AESGCM(self.key).decrypt(gcm_nonce(self.number), body, None)
        except Exception as e:
            raise AuthFailure("record does not authenticate") from e
        self.number += 1
        if not m:
            self.final = True
            return b""
        self.count += 1
        if self.count % REKEY_EVERY == 0:
            self.key = gcm_rekey(self.key)
        return m


# --- a connection ----------------------------------------------------------------


class Conn:
    """A TCP connection with exact reads."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def fill(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                got = bytes(self.buf)
                self.buf.clear()
                if got:
                    raise Closed("closed after %d of %d bytes: %r" % (len(got), n, got[:16]))
                raise Closed("closed")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_rest(self):
        """Everything until the peer closes; socket.timeout if it does not."""
        while self.fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def shutdown(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.sock.close()


def read_server_message(conn):
    """The server's next handshake message: RESPONSE, COOKIE or REJECT, whole.
    Raises Closed if it closes without one."""
    first = conn.read_exact(1)
    kind = first[0]
    if kind == RESPONSE:
        head = first + conn.read_exact(3)
        n = struct.unpack("!H", head[2:4])[0]
        if n > 1024:
            raise SealError("RESPONSE length %d" % n)
        return head + conn.read_exact(n)
    if kind == COOKIE:
        return first + conn.read_exact(COOKIE_LEN - 1)
    if kind == REJECT:
        return first + conn.read_exact(2)
    raise SealError("unexpected message type 0x%02x" % kind)


def exchange_raw(port, message, timeout=5.0, shut=True, host="127.0.0.1"):
    """Sends raw bytes, optionally ends the write side, and returns what the server
    sends back until it closes (b"" for a silent close); socket.timeout if it
    does not close within `timeout`."""
    c = Conn(port, host, timeout)
    try:
        c.send(message)
        if shut:
            c.shutdown()
        return c.read_rest()
    finally:
        c.close()


def open_handshake(port, hs, host="127.0.0.1", timeout=10.0, cookie_rounds=2,
                   pow_limit=1 << 26):
    """Sends hs's INITIATION, answering COOKIEs (on new connections, as many as
    cookie_rounds); returns (connection, RESPONSE, difficulty of each COOKIE).
    Raises Closed, Rejected or CookieDemand."""
    cookies = []
    message = hs.initiation
    while True:
        conn = Conn(port, host, timeout)
        try:
            conn.send(message)
            reply = read_server_message(conn)
        except Exception:
            conn.close()
            raise
        if reply[0] == RESPONSE:
            return conn, reply, cookies
        conn.close()
        if reply[0] == REJECT:
            raise Rejected(reply[2])
        if len(cookies) >= cookie_rounds:
            raise CookieDemand(reply)
        cookies.append(reply[2])
        message = hs.answer_cookie(reply, pow_limit)


class SealedClient:
    """A sealed session with fived.

    server_pub: the server's key (IK), or None for XX. static_key: our static
    private key. early: the first bytes of the plaintext stream (e.g.
    b"echo\\r\\nhello"); with IK they ride in message 1 and are sent again in
    records if the server did not act on them; with XX they ride in FINISH.
    expect_server: for XX, the key the server must have (else AuthFailure before
    FINISH). cookie_rounds: how many COOKIEs to answer before giving up.
    resend_early: False to leave early data the server dropped unsent (tests).
    handshake: a Handshake made beforehand; its IK early data is its own, and
    `early` then serves only XX's FINISH.
    """

    def __init__(self, port, server_pub=None, static_key=None, early=b"", host="127.0.0.1",
                 timeout=10.0, cookie_rounds=2, pow_limit=1 << 26, expect_server=None,
                 resend_early=True, timestamp=None, handshake=None, suites=SUITE_1):
        self.port, self.host, self.timeout = port, host, timeout
        self.started = time.monotonic()
        self.hs = handshake or Handshake(server_pub, static_key,
                                         early if server_pub is not None else b"",
                                         timestamp=timestamp, suites=suites)
        self.conn, reply, self.cookies = open_handshake(port, self.hs, host, timeout,
                                                       cookie_rounds, pow_limit)
        self.response = reply
        try:
            self.hs.read_response(reply)
        except SealError:
            self.conn.close()
            raise
        self.flags = self.hs.flags
        self.suite = self.hs.suite
        self.server_static = self.hs.server_static
        if expect_server is not None and self.server_static != expect_server:
            self.conn.close()
            raise AuthFailure("the server's key is not the one expected")
        if self.hs.pattern == XX:
            self.conn.send(self.hs.finish(early))
        send_key, recv_key = self.hs.keys()
        self.handshake_hash = self.hs.handshake_hash
        self.sender = RecordSender(send_key, self.suite)
        self._recv_key = recv_key
        self.receiver = None
        out = self.sender.header
        if self.hs.pattern == IK and self.hs.early and not self.zero_rtt and resend_early:
            out += self.sender.records(self.hs.early)
        self.conn.send(out)
        self.first_byte_at = None
        self.pending = bytearray()

    @property
    def zero_rtt(self):
        return bool(self.flags & FLAG_0RTT)

    def send(self, data, record_size=MAX_RECORD_DATA):
        self.conn.send(self.sender.records(data, record_size))

    def close_write(self, shutdown=True):
        """Ends our direction: FINAL, then (unless told not to) the end of our
        side of the TCP connection."""
        self.conn.send(self.sender.final_record())
        if shutdown:
            self.conn.shutdown()

    def recv(self):
        """The data of the server's next record; b"" at FINAL. Raises Truncated if the
        connection ends without FINAL."""
        if self.receiver is None:
            header = self._read(header_len(self.suite))
            self.receiver = RecordReceiver(self._recv_key, header, self.suite)
        if self.receiver.final:
            return b""
        length = struct.unpack("!H", self._read(2))[0]
        data = self.receiver.open(self._read(length))
        if data and self.first_byte_at is None:
            self.first_byte_at = time.monotonic()
        return data

    def _read(self, n):
        try:
            return self.conn.read_exact(n)
        except Closed as e:
            raise Truncated("the server's stream ended without FINAL") from e

    def recv_all(self):
        """Everything until the server's FINAL."""
        out = bytearray(self.pending)
        self.pending.clear()
        while True:
            data = self.recv()
            if not data:
                return bytes(out)
            out += data

    def recv_until(self, want):
        """Data up to and including `want` (bytes), or, for a function, all the data
        once it returns true on what was received so far."""
        while True:
            if isinstance(want, bytes):
                at = self.pending.find(want)
                if at >= 0:
                    out = bytes(self.pending[:at + len(want)])
                    del self.pending[:at + len(want)]
                    return out
            elif want(bytes(self.pending)):
                out = bytes(self.pending)
                self.pending.clear()
                return out
            data = self.recv()
            if not data:
                raise Truncated("FINAL before %r, after %r" % (want, bytes(self.pending)))
            self.pending += data

    def recv_line(self):
        return self.recv_until(b"\n")

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
