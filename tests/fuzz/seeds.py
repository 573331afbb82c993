#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets whose inputs are structured
(a mode byte, length-prefixed chunks, plans of records, operations):
handshake, client_seal, client_mux, client_usp, client_token, tls,
client_tls and sealed_session.  Run from the top of the tree; the seeds
are committed, so this only needs running when a format changes.

    python3 tests/fuzz/seeds.py
"""
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# TAI64N of 2023-11-14 22:13:20 UTC, as the client puts in IK message 1.
TAI64N = struct.pack(">QI", (1 << 62) + 1700000000, 123456789)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def chunk(b):
    return struct.pack(">H", len(b)) + b


def early(b):
    return struct.pack(">H", len(b)) + b


# --- handshake: mode, then chunks (msg1, msg2, msg3 payloads, two plans) ---------------

def message(b):
    """A plan's MESSAGE record of b (1 to 256 bytes)."""
    return bytes([0, len(b) - 1]) + b


FINAL = bytes([1])


def raw(b):
    return bytes([2, len(b) - 1]) + b


def flip(bit):
    return bytes([3 | (bit << 2)])


def handshake():
    ik1 = TAI64N + early(b"echo\r\nhello")
    resp = bytes([1, 1])
    resp_late = bytes([1, 0])
    fin = early(b"echo\r\n")
    up = message(b"hello") + message(b"world") + FINAL
    down = message(b"+\r\n") + message(b"hello") + FINAL
    write("handshake", "ik", bytes([0]) + chunk(ik1) + chunk(resp) + chunk(b"") +
          chunk(up) + chunk(down))
    write("handshake", "ik_empty", bytes([0]) + chunk(TAI64N + early(b"")) +
          chunk(resp_late) + chunk(b"") + chunk(FINAL) + chunk(FINAL))
    write("handshake", "xx", bytes([1]) + chunk(b"") + chunk(resp) + chunk(fin) +
          chunk(up) + chunk(down))
    # A rekey after the second record each way (mode bits 1-7: records before it, minus one).
    many = b"".join(message(bytes([i]) * (i + 1)) for i in range(6)) + FINAL
    write("handshake", "ik_rekey", bytes([1 << 1]) + chunk(ik1) + chunk(resp) +
          chunk(b"") + chunk(many) + chunk(many))
    write("handshake", "xx_rekey", bytes([1 | 1 << 1]) + chunk(b"") + chunk(resp) +
          chunk(fin) + chunk(many) + chunk(many))
    write("handshake", "tampered", bytes([1]) + chunk(b"") + chunk(resp) + chunk(fin) +
          chunk(message(b"abc") + flip(40) + message(b"def")) +
          chunk(message(b"x") + FINAL + raw(b"after")))
    write("handshake", "ik_bad_payload", bytes([0]) + chunk(b"\x00" * 14) + chunk(resp))
    # The same with AES-256-GCM records (suite 2 in message 2's payload).
    write("handshake", "ik_aes", bytes([0]) + chunk(ik1) + chunk(bytes([2, 1])) + chunk(b"") +
          chunk(up) + chunk(down))
    write("handshake", "xx_aes_rekey", bytes([1 | 1 << 1]) + chunk(b"") + chunk(bytes([2, 1])) +
          chunk(fin) + chunk(many) + chunk(many))
    write("handshake", "aes_tampered", bytes([1]) + chunk(b"") + chunk(bytes([2, 1])) +
          chunk(fin) + chunk(message(b"abc") + flip(40) + message(b"def")) +
          chunk(message(b"x") + FINAL + raw(b"after")))


# --- client_mux: mode, record size, fived's frames ----------------------------------

DATA, OPEN, ACCEPT, WINDOW, FIN, RST, PING, GOAWAY, DETACHABLE, RECEIVED = range(10)


def frame(sid, ftype, payload=b"", flags=0):
    return struct.pack(">IBBH", sid, ftype, flags, len(payload)) + payload


def client_mux():
    def mode(sealed=False, streams=1, announce=False, local_end=False, final=False,
             ahead=False, token=False):
        return bytes([sealed | streams << 1 | announce << 3 | local_end << 4 | final << 5 |
                      ahead << 6 | token << 7])

    good = (frame(1, ACCEPT) + frame(1, DATA, b"hello") + frame(1, WINDOW, struct.pack(">I", 4096)) +
            frame(0, WINDOW, struct.pack(">I", 65536)) + frame(1, FIN))
    write("client_mux", "plain", mode() + b"\x00" + good)
    write("client_mux", "plain_local_end", mode(local_end=True) + b"\x00" + good)
    write("client_mux", "sealed", mode(sealed=True, final=True) + b"\x00" + good)
    write("client_mux", "sealed_ahead", mode(sealed=True, final=True, ahead=True, token=True) +
          b"\x03" + good)
    write("client_mux", "sealed_cut", mode(sealed=True) + b"\x00" + good)
    write("client_mux", "three", mode(streams=3, announce=True) + b"\x00" +
          frame(1, ACCEPT) + frame(3, RST, b"\x01no such service") + frame(5, ACCEPT) +
          frame(5, DATA, b"x" * 100) + frame(0, PING, b"12345678") +
          frame(0, GOAWAY, struct.pack(">IB", 5, 0) + b"bye") + frame(1, FIN) + frame(5, FIN))
    write("client_mux", "ping_ack", mode() + b"\x00" + frame(0, PING, b"\x00" * 8, flags=1))
    write("client_mux", "goaway_protocol", mode(streams=2) + b"\x00" +
          frame(0, GOAWAY, struct.pack(">IB", 0, 1) + b"protocol error: confused"))
    write("client_mux", "bad_server_id", mode() + b"\x00" + frame(2, DATA, b"x"))
    write("client_mux", "bad_open", mode() + b"\x00" + frame(1, OPEN, b"\x04echo\x00\x00\x00"))
    write("client_mux", "bad_detachable", mode() + b"\x00" + frame(0, DETACHABLE, b"\x00"))
    write("client_mux", "data_before_accept", mode() + b"\x00" + frame(1, DATA, b"early"))
    write("client_mux", "window_overflow", mode() + b"\x00" + frame(1, ACCEPT) +
          frame(1, WINDOW, struct.pack(">I", 0x7fffffff)) +
          frame(0, WINDOW, struct.pack(">I", 0x7fffffff)))


# --- client_seal: mode, then a chunk per answer of the server, then its records ------------

def client_seal():
    XX, REPAIR, FIN, PENDING, PLAIN = 1, 2, 4, 8, 16

    def awaits(n):
        return n << 5

    resp = bytes([0xF6, 1, 1])
    late = bytes([0xF6, 1, 0])
    cookie = bytes([0xF7, 4]) + bytes(range(16))
    lines = b"+\r\n+ ATTACHED 60 0123456789abcdef\r\n- refused: no such service\r\n"
    write("client_seal", "ik", bytes([REPAIR | FIN | awaits(1)]) + chunk(resp) + chunk(lines))
    write("client_seal", "ik_aes", bytes([REPAIR | FIN | awaits(1)]) + chunk(bytes([0xF6, 2, 1])) +
          chunk(lines))
    write("client_seal", "xx_aes", bytes([XX | REPAIR | FIN | awaits(1)]) +
          chunk(bytes([0xF6, 2, 1])) + chunk(lines))
    write("client_seal", "ik_pending", bytes([REPAIR | FIN | PENDING | awaits(2)]) +
          chunk(late) + chunk(lines))
    write("client_seal", "ik_cut", bytes([REPAIR | awaits(1)]) + chunk(resp) + chunk(b"+\r\n"))
    write("client_seal", "xx", bytes([XX | REPAIR | FIN | awaits(1)]) + chunk(resp) +
          chunk(lines))
    write("client_seal", "ik_cookie", bytes([REPAIR | FIN | awaits(1)]) + chunk(cookie) +
          chunk(resp) + chunk(lines))
    write("client_seal", "xx_cookies", bytes([XX | REPAIR | FIN]) + chunk(cookie) +
          chunk(cookie) + chunk(cookie))
    write("client_seal", "reject", bytes([0]) + chunk(bytes([0xF9, 1, 4])))
    write("client_seal", "refused_in_text", bytes([0]) + chunk(b"- too many connections\r\n"))
    write("client_seal", "refused_bare", bytes([XX]) + chunk(b"-\r\n"))
    write("client_seal", "reject_unknown", bytes([XX]) + chunk(bytes([0xF9, 7, 200])))
    write("client_seal", "raw_response", bytes([0]) + chunk(bytes([0xF6, 1, 0, 50]) + bytes(50)) +
          chunk(bytes(24) + b"\x00\x20" + bytes(32)))
    write("client_seal", "raw_cookie", bytes([0]) + chunk(bytes([0xF7, 1, 3, 0]) + bytes(56)))
    write("client_seal", "plain", bytes([PLAIN | awaits(2)]) + chunk(b"+\r\n+\r\n" + lines))
    write("client_seal", "plain_long", bytes([PLAIN | awaits(1)]) + chunk(b"+" * 1500 + b"\n"))


# --- client_usp: mode, then fived's messages ---------------------------------------------

def client_usp():
    import base64
    import json

    NONE, PASSWORD, PUBKEY, BOTH, NO_ANSWER, TOKEN = 0, 1, 2, 3, 4, 8
    sid = "9f" * 16

    def msgs(*ms):
        return b"".join(json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in ms)

    connect = {"message": "connect", "application": "echo", "server_session_id": sid}
    token = {"message": "token", "identity": "alice",
             "streams": [{"application": "echo", "token": "v4.public.eyJhYmMiOjF9"}],
             "server_session_id": sid}
    challenge = {"message": "challenge", "session": sid,
                 "nonce": base64.b64encode(bytes(range(32))).decode(),
                 "server_session_id": sid}
    write("client_usp", "connect", bytes([NONE]) + msgs(connect) + b"hello")
    write("client_usp", "token_connect", bytes([TOKEN]) + msgs(connect))
    write("client_usp", "pubkey", bytes([PUBKEY]) + msgs(
        {"message": "authenticate", "protocol": "pubkey", "server_session_id": sid},
        challenge, token, connect))
    write("client_usp", "password", bytes([PASSWORD]) + msgs(
        {"message": "authenticate", "protocol": "password", "server_session_id": sid},
        {"message": "prompt", "kind": "info", "text": "hello\x1b[2J"},
        {"message": "prompt", "kind": "echo-off", "text": "Password: "},
        {"message": "prompt", "kind": "echo-on", "text": "Code: "},
        token, connect))
    write("client_usp", "password_refused", bytes([BOTH | NO_ANSWER]) + msgs(
        {"message": "authenticate", "protocol": "password", "server_session_id": sid},
        {"message": "prompt", "kind": "echo-off", "text": "Password: "}))
    write("client_usp", "error", bytes([BOTH]) + msgs(
        {"message": "error", "error": "authentication required",
         "supported": ["pubkey", "password", "\u0007bell"]}))
    write("client_usp", "token_error", bytes([PASSWORD]) + msgs(
        {"message": "authenticate", "protocol": "password"},
        {"message": "token", "streams": [{"application": "other", "token": "x"},
                                         {"application": "ECHO", "error": "not allowed"}]}))
    write("client_usp", "wrong_app", bytes([NONE]) + msgs(
        {"message": "connect", "application": "daytime"}))
    write("client_usp", "redirect", bytes([NONE]) + msgs(
        {"message": "redirect", "application": "echo", "host": "b.example", "port": 5501,
         "target_application": "echo2", "server_session_id": sid}))
    write("client_usp", "not_json", bytes([NONE]) + b"{\"message\":\"connect\"\n")
    write("client_usp", "duplicate", bytes([NONE]) +
          b'{"message":"connect","message":"error","application":"echo"}\n')


# --- client_token: mode (bit 0 proof, bits 1-2 '+' lines first, bit 3 small buffer), lines -----

# fived's answers as fived writes them, signed once with proto/token.c's token_issue and
# proto/proof.c's proof_sign under the key of seed 0x22 * 32: the proof for the nonce
# "fuzz-nonce-0123456789" and the consumer "consumer.example" (the target's challenge),
# issued at 1700000000 for 300 s (the target verifies it at 1700000100).
SIGN_KEY = b"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA="
TOKEN = (b"v4.public.eyJhcHAiOiJlY2hvIiwic3ViIjoiYWxpY2UiLCJhbXIiOiJwdWJrZXkiLCJpYXQiOiIy"
         b"MDIzLTExLTE0VDIyOjEzOjIwWiIsImV4cCI6IjIwMjMtMTEtMTRUMjM6MTM6MjBaIiwianRpIjoiMDAx"
         b"MTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmYifW3VoNWNjU5JWUZ5ej4yKgESDuf95z4RHiC7bNCw"
         b"p581EnNYdKxJTfb5CHci7vMCm4eRKsNJMT3vnxksKG1bDgQ.eyJraWQiOiJFeVc0VU1LSEdSYnEifQ")
PROOF = (b"v4.public.eyJpc3MiOiJmaXZlZC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhbXIiOiJwdWJrZXkiLCJo"
         b"YXNoIjoiOTk0YzQ2NDM1YjY4MzA4Nzk0OGY3MTEwMWY0ODdkYjg0MmVmZjRiZDU0YjkwOWJhY2NhYzlj"
         b"YmNlMDkyNjczOSIsImlhdCI6IjIwMjMtMTEtMTRUMjI6MTM6MjBaIiwiZXhwIjoiMjAyMy0xMS0xNFQy"
         b"MjoxODoyMFoifYaC_IkoBGWt-7v7ykXtsnHN7SlLfaPKtjT5sBRhF9d1jEVZVyZKrm2lcewHvMRsY1ey"
         b"mW7wFLiVuAt8SKE86QU.eyJraWQiOiJFeVc0VU1LSEdSYnEifQ")


def client_token():
    def mode(proof=False, replies=0, small=False):
        return bytes([(1 if proof else 0) | replies << 1 | (8 if small else 0)])

    # The authentication's verdict, due after the request went out with the signature.
    auth = b"+ Authentication as alice successful\r\n"
    write("client_token", "token", mode() + b"+ TOKEN " + TOKEN + b"\r\n")
    write("client_token", "token_after_auth", mode(replies=1) + auth +
          b"+ TOKEN " + TOKEN + b"\r\n")
    write("client_token", "token_after_host", mode(replies=2) + auth + b"+ HOST\r\n" +
          b"+ TOKEN " + TOKEN + b"\r\n")
    write("client_token", "token_small", mode(small=True) + b"+ TOKEN " + TOKEN + b"\r\n")
    write("client_token", "token_refused", mode() + b"- authentication required\r\n")
    write("client_token", "token_refused_auth", mode(replies=1) +
          b"- authentication failed\r\n")
    write("client_token", "token_not_one", mode() + b"+ TOKEN v4.public.a b\r\n")
    write("client_token", "token_lf", mode() + b"+ TOKEN " + TOKEN + b"\n")
    write("client_token", "token_cut", mode() + b"+ TOKEN " + TOKEN[:40])
    proof = b"+ SIGNKEY " + SIGN_KEY + b" fived.example\r\n+ PROOF " + PROOF + b"\r\n"
    write("client_token", "proof", mode(proof=True) + proof)
    write("client_token", "proof_after_auth", mode(proof=True, replies=1) + auth + proof)
    write("client_token", "proof_small", mode(proof=True, small=True) + proof)
    write("client_token", "proof_refused", mode(proof=True) + b"+ SIGNKEY " + SIGN_KEY +
          b" fived.example\r\n- authentication required\r\n")
    write("client_token", "proof_no_provider", mode(proof=True) + b"- no provider name\r\n")
    write("client_token", "proof_other_key", mode(proof=True) + b"+ SIGNKEY " + b"A" * 43 +
          b"= fived.example\r\n+ PROOF " + PROOF + b"\r\n")
    write("client_token", "proof_not_one", mode(proof=True) + b"+ SIGNKEY " + SIGN_KEY +
          b" fived.example\r\n+ PROOF v4.public.AAAA\r\n")


# --- tls: mode (bit 0 ALPN, bit 1 client certificate, bit 2 refuse), operations ------------

ALPN, CERT, REFUSE = 1, 2, 4


def tls_op(kind, arg=0, data=b""):
    return bytes([kind | arg << 3]) + data


def tls_write(b):
    """WRITE of b (1 to 31 bytes: 32 is the big one)."""
    return tls_op(0, len(b) - 1, b)


def tls_out(b):
    return tls_op(4, len(b) - 1, b)


def tls():
    close, finish = tls_op(1), tls_op(5)
    write("tls", "handshake", bytes([0]))
    write("tls", "alpn_cert", bytes([ALPN | CERT]))
    write("tls", "hello", bytes([0]) + tls_write(b"echo\r\n") + tls_write(b"hello") + close)
    write("tls", "echo_cert", bytes([ALPN | CERT]) + tls_write(b"echo\r\n") +
          tls_out(b"+\r\n") + tls_write(b"hello") + tls_out(b"hello") + close + finish)
    write("tls", "fived_first", bytes([ALPN]) + tls_out(b"+ fived ready\r\n") + finish +
          tls_write(b"late") + close)
    write("tls", "key_update", bytes([0]) + tls_write(b"before") + tls_op(6, 1) +
          tls_write(b"after") + tls_op(6, 0) + tls_write(b"again") + close)
    write("tls", "pieces", bytes([CERT]) + tls_op(7, 0) + tls_write(b"one byte at a time") +
          tls_op(7, 4) + tls_write(b"five") + close)
    write("tls", "long", bytes([0]) + tls_write(bytes(range(31))) * 4 + tls_out(b"x" * 31) * 2 +
          close)
    big = tls_op(0, 31)
    write("tls", "big", bytes([0]) + big + tls_op(4, 31) + big + tls_op(4, 31) + tls_out(b"small") +
          close + finish)
    write("tls", "flip_hello", bytes([0]) + tls_op(3, 13) + tls_write(b"never"))
    write("tls", "flip_record", bytes([0]) + tls_write(b"first") + tls_op(3, 31) +
          tls_write(b"second") + close)
    write("tls", "cut", bytes([0]) + tls_write(b"first") + tls_op(7, 30) +
          tls_write(b"second half gone") + close)
    write("tls", "cut_hello", bytes([CERT]) + tls_op(7, 30) + tls_write(b"never"))
    write("tls", "raw", bytes([0]) + tls_write(b"first") +
          tls_op(2, 4, bytes([0x17, 0x03, 0x03, 0x00, 0x10])) + tls_write(b"second"))
    write("tls", "raw_alert", bytes([0]) + tls_op(2, 6, bytes([0x15, 0x03, 0x03, 0x00, 0x02,
                                                                0x02, 0x28])))
    write("tls", "refuse", bytes([REFUSE]) + tls_write(b"echo\r\n") + tls_write(b"more") +
          close)


# --- client_tls: mode (bit 0 another key, bit 1 a request first), the server's operations -------

def client_tls():
    def write_(b):
        return tls_op(0, len(b) - 1, b)

    close, big, empty = tls_op(1), tls_op(6), tls_op(7)
    write("client_tls", "handshake", bytes([0]))
    write("client_tls", "other_key", bytes([1]))
    write("client_tls", "granted", bytes([2]) + write_(b"+\r\n") + write_(b"hello") + close)
    write("client_tls", "refused", bytes([0]) + write_(b"- unknown service\r\n") + close)
    write("client_tls", "lines", bytes([2]) + write_(b"+ Authentication as alice succ") +
          write_(b"essful\r\n+\r\n") + empty + write_(b"+ TOKEN v4.public.x\r\n") + close)
    write("client_tls", "key_update", bytes([0]) + write_(b"+\r\n") + tls_op(5, 1) +
          write_(b"+ after\r\n") + tls_op(5, 0) + close)
    write("client_tls", "big", bytes([0]) + big + close)
    write("client_tls", "no_close", bytes([2]) + write_(b"+\r\n"))
    write("client_tls", "flip_handshake", bytes([0]) + tls_op(3, 20) + write_(b"+\r\n"))
    write("client_tls", "half_handshake", bytes([0]) + tls_op(4) + write_(b"+\r\n"))
    write("client_tls", "flip_record", bytes([0]) + write_(b"+\r\n") + tls_op(3, 31) +
          write_(b"+ second\r\n") + close)
    write("client_tls", "half_record", bytes([0]) + write_(b"+\r\n") + tls_op(4) +
          write_(b"+ half of it\r\n") + write_(b"+ late\r\n"))
    write("client_tls", "refused_in_text", bytes([0]) +
          tls_op(2, 23, b"- too many connections\r\n"))
    write("client_tls", "refused_partly", bytes([0]) + tls_op(2, 5, b"- too "))
    write("client_tls", "raw", bytes([0]) + write_(b"+\r\n") +
          tls_op(2, 4, bytes([0x17, 0x03, 0x03, 0x00, 0x10])) + close)


# --- sealed_session: mode, tweak, early data, a plan of what follows the handshake --------

def sealed_session():
    XX, KNOWN, LOADED, TAMPER, SHUT = 0x01, 0x02, 0x10, 0x20, 0x80
    SEND, REPLAY = bytes([4]), bytes([5])

    def flip_record(byte):
        return bytes([3 | byte << 3])

    def session(mode, early_data, plan, tweak=0):
        return bytes([mode, tweak]) + chunk(early_data) + chunk(plan)

    def mux(*frames):
        return message(b"MULTIPLEX\r\n") + b"".join(message(f) for f in frames)

    echo = message(b"hello") + SEND + message(b"world") + SEND + FINAL
    open_echo = frame(1, OPEN, b"\x04echo\x00\x00\x00hi") + frame(1, DATA, b"there")
    write("sealed_session", "ik_echo", session(0, b"echo\r\n", echo))
    write("sealed_session", "ik_known_0rtt", session(KNOWN, b"echo\r\nearly", echo))
    write("sealed_session", "xx_echo", session(XX, b"echo\r\n", echo, tweak=0x80))
    write("sealed_session", "ik_cookie", session(LOADED | KNOWN, b"echo\r\n", echo))
    write("sealed_session", "ik_mux", session(0, b"", mux(open_echo, frame(1, FIN)) + SEND +
                                             FINAL))
    write("sealed_session", "xx_mux", session(XX | KNOWN | SHUT, b"",
                                              mux(open_echo, frame(0, PING, b"12345678")) +
                                              SEND))
    write("sealed_session", "ik_auth", session(0, b"", message(b"AUTH pubkey\r\n") + SEND +
                                              message(b"AAAA\r\n") + SEND +
                                              message(b"secret\r\n") + SEND + FINAL))
    write("sealed_session", "ik_text", session(KNOWN, b"HOST alpha.example\r\n",
                                               message(b"LIST\r\n") + SEND +
                                               message(b"db\r\n") + message(b"x") + SEND))
    write("sealed_session", "ik_usp", session(0, b"", message(
        b'{"message":"initialize","streams":[{"application":"echo"}]}\n') +
        SEND + message(b"data") + SEND + FINAL))
    write("sealed_session", "ik_replay", session(KNOWN, b"echo\r\n", REPLAY + SEND))
    write("sealed_session", "ik_flipped", session(0, b"echo\r\n", message(b"hello") +
                                                  flip_record(5) + SEND))
    write("sealed_session", "ik_tampered", session(TAMPER, b"echo\r\n", echo, tweak=9))


if __name__ == "__main__":
    handshake()
    client_mux()
    client_seal()
    client_usp()
    client_token()
    tls()
    client_tls()
    sealed_session()
