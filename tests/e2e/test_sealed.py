"""The sealed transport end to end, spoken by sealwire (an implementation of
docs/PROTOCOL.md section 6 written from the document) and by five."""

import base64
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import FIVE, FIVED, SLOW, run_five, stop_listening, wait_for
from fivewire import load_key, parse_challenge, signature_line, signed_data, user_line
from sealwire import (COOKIE, IK, REJECT, RESPONSE, XX, AuthFailure, CipherState, Closed, Conn,
                      Handshake, Initiator, PATTERNS, SealedClient, TAG_PUSH, Truncated, blake2b,
                      exchange_raw, fix_mac1, initiation_bytes, keypair, leading_zero_bits,
                      open_handshake, pow_hash, public_of, read_server_message, solve_pow,
                      tai64n)

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(os.environ.get("FIVE_VECTORS_DIR") or os.path.join(HERE, "../vectors"),
                       "noise_25519_ChaChaPoly_BLAKE2b.json")
T = 5 * SLOW  # a socket timeout that outlasts any prompt answer

ECHO = "[service:echo]\nbackend = builtin:echo\n"

def server_key(f):
    out = subprocess.run([FIVED, "--print-key", "-c", str(f.conf)], capture_output=True,
                         text=True, check=True).stdout
    return base64.b64decode(out.split()[0], validate=True)


def b64(key):
    return base64.b64encode(key).decode()


def fingerprint(key):
    return b"SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).rstrip(b"=")


def authorized_file(tmp_path, clients):
    """An authorized_clients file from {identity: public key}."""
    path = tmp_path / "authorized_clients"
    path.write_text("# clients known by their static key\n" + "".join(
        "%s %s\n" % (b64(pub), name) for name, pub in clients.items()))
    path.chmod(0o644)
    return path


def sentinel_service(s, name="s"):
    return "[service:%s]\nbackend = tcp:127.0.0.1:%d\n" % (name, s.port)


def records_until_close(c):
    """The plaintext the server sends until it closes, with or without FINAL (see
    test_final_when_the_client_ends_before_a_request)."""
    out = bytearray()
    try:
        while True:
            data = c.recv()
            if not data:
                break
            out += data
    except Truncated:
        pass
    return bytes(out)


def wait_received(s, n=1):
    wait_for(lambda: len(s.received) >= n, what="the sentinel's streams to end")


# --- sealwire itself -------------------------------------------------------------------


def test_sealwire_noise_matches_the_published_vectors():
    """The independent Noise code agrees with cacophony's vectors for every
    interactive pattern (IK and XX among them), transport messages included."""
    with open(VECTORS) as fh:
        vectors = json.load(fh)["vectors"]
    checked = set()
    for v in vectors:
        pattern = v["protocol_name"].split("_")[1]
        if pattern not in PATTERNS:
            continue

        def hx(k):
            return bytes.fromhex(v[k]) if k in v else None
        i = Initiator(pattern, hx("init_prologue"), static=hx("init_static"),
                      remote_static=hx("init_remote_static"), ephemeral=hx("init_ephemeral"))
        for index, m in enumerate(v["messages"]):
            ct, pt = bytes.fromhex(m["ciphertext"]), bytes.fromhex(m["payload"])
            if not i.done:
                if index % 2 == 0:
                    assert i.write_message(pt) == ct, (pattern, index)
                else:
                    assert i.read_message(ct) == pt, (pattern, index)
                if i.done:
                    assert i.h == hx("handshake_hash"), pattern
                    send, recv = (CipherState(k) for k in i.split())
            elif index % 2 == 0:
                assert send.encrypt(b"", pt) == ct, (pattern, index)
            else:
                assert recv.decrypt(b"", ct) == pt, (pattern, index)
        checked.add(pattern)
    assert checked == set(PATTERNS)


# --- IK and XX to a service ---------------------------------------------------------


def test_ik_and_xx_round_trip(fived):
    f = fived(ECHO + "[service:daytime]\nbackend = builtin:daytime\n")
    key = server_key(f)
    # XX: first contact; the server's static key is the one --print-key shows.
    with SealedClient(f.port, early=b"echo\r\nfirst contact", timeout=T) as c:
        assert c.hs.pattern == XX and c.server_static == key and not c.zero_rtt
        data = os.urandom(40000)
        c.send(b", then records")
        c.send(data)
        c.close_write()
        got = c.recv_all()     # raises Truncated unless the server ends with FINAL
    assert got == b"+\r\nfirst contact, then records" + data
    # IK: records of every size both ways.
    with SealedClient(f.port, key, early=b"echo\r\n", timeout=T) as c:
        assert c.hs.pattern == IK and c.server_static == key
        assert c.recv_until(b"+\r\n") == b"+\r\n"
        data = os.urandom(70000)
        c.send(data[:1], record_size=1)
        c.send(data[1:16385])
        c.send(data[16385:], record_size=999)
        assert c.recv_until(lambda got: len(got) >= len(data)) == data
        c.close_write()
        assert c.recv_all() == b""
    # The server ends its direction first: FINAL, and ours is still open until we end it.
    with SealedClient(f.port, key, early=b"daytime\r\n", timeout=T) as c:
        out = c.recv_all()
        assert out.startswith(b"+\r\n") and out.endswith(b"-UTC\r\n")
        c.close_write()
    wait_for(lambda: len(f.events("closed")) == 3)
    assert [e["reason"] for e in f.events("closed")] == ["done"] * 3


def test_a_stream_without_final_is_truncated(fived, sentinel):
    s = sentinel("count")
    f = fived(sentinel_service(s))
    key = server_key(f)
    c = SealedClient(f.port, key, early=b"s\r\n", timeout=T)
    assert c.recv_until(b"+\r\n") == b"+\r\n"
    c.send(b"cut short")
    wait_for(lambda: s.bytes == 9)
    c.conn.shutdown()          # TCP's end of stream, no FINAL record
    assert c.conn.read_rest() == b""
    c.close()
    wait_for(lambda: f.events("closed"))
    assert f.events("closed")[0]["reason"] == "client stream truncated"


def test_final_when_the_client_ends_before_a_request(fived):
    """Section 6.7: each direction ends with FINAL. A client that ends its stream
    properly before asking for anything should see the server's end the same way."""
    f = fived(ECHO)
    key = server_key(f)
    for early in (b"", b"ech"):
        with SealedClient(f.port, key, early=early, timeout=T) as c:
            c.close_write()
            assert c.recv_all() == b""
    wait_for(lambda: len(f.events("closed")) == 2)
    assert [e["reason"] for e in f.events("closed")] == ["client closed before a request"] * 2


def test_records_rekey_after_65536(fived, sentinel):
    """70000 records of one byte: both sides rekey after the 65536th (section 6.7)."""
    s = sentinel("count")
    f = fived(sentinel_service(s))
    with SealedClient(f.port, server_key(f), early=b"s\r\n", timeout=T) as c:
        data = os.urandom(70000)
        c.send(data, record_size=1)
        assert c.sender.count == 1 + 70000     # the request sent again, then the data
        c.close_write()
        assert c.recv_all() == b"+\r\ngot 70000\n"
    wait_received(s)
    assert s.received == [data]


def test_bad_records_end_the_session(fived, sentinel):
    """A record that does not authenticate, with a length out of range, with no data,
    with another tag, or after FINAL: the session ends, nothing of it is forwarded."""
    s = sentinel("echo")
    f = fived(sentinel_service(s))
    key = server_key(f)

    def flip(c):
        record = c.sender.record(b"flipped")
        c.conn.send(flipped(record, 5))

    def after_final(c):
        c.conn.send(c.sender.final_record())
        c.sender.final = False
        c.conn.send(c.sender.record(b"after FINAL"))

    cases = [
        lambda c: c.conn.send(c.sender.record(b"pushed", TAG_PUSH)),
        lambda c: c.conn.send(c.sender.record(b"")),
        lambda c: c.conn.send(c.sender.record(b"x" * 16385)),
        lambda c: c.conn.send(struct.pack("!H", 16) + bytes(16)),
        flip,
        after_final,
    ]
    for i, bad in enumerate(cases):
        with SealedClient(f.port, key, early=b"s\r\n", timeout=T) as c:
            assert c.recv_until(b"+\r\n") == b"+\r\n"
            c.send(b"first")
            assert c.recv_until(b"first") == b"first"
            bad(c)
            with pytest.raises(Truncated):
                c.recv()
        wait_received(s, i + 1)
        assert s.received[i] == b"first", i
    wait_for(lambda: len(f.events("closed")) == len(cases))
    assert [e["reason"] for e in f.events("closed")] == ["transport failed"] * len(cases)


def test_early_data_from_an_unknown_client_is_sent_again(fived, sentinel):
    s = sentinel("echo")
    f = fived(sentinel_service(s))
    key = server_key(f)
    # Not acted on: the flag is clear and nothing reaches the service until it comes again.
    with SealedClient(f.port, key, early=b"s\r\nPAYLOAD", resend_early=False, timeout=T) as c:
        assert not c.zero_rtt
        c.close_write()
        assert records_until_close(c) == b""
    assert s.connections == 0 and f.events("granted") == []
    # Sent again as the first records, it arrives once.
    with SealedClient(f.port, key, early=b"s\r\nPAYLOAD", timeout=T) as c:
        assert not c.zero_rtt
        c.send(b" and more")
        c.close_write()
        assert c.recv_all() == b"+\r\nPAYLOAD and more"
    wait_received(s)
    assert s.connections == 1 and s.received == [b"PAYLOAD and more"]
    assert f.events("authenticated") == [] and f.events("granted")[0]["identity"] == ""


def test_early_data_from_an_authorized_client_is_0rtt(fived, sentinel, tmp_path):
    s = sentinel("echo")
    priv, pub = keypair()
    other_priv, _ = keypair()
    clients = authorized_file(tmp_path, {"robot": pub})
    f = fived(sentinel_service(s), server="authorized_clients = %s" % clients)
    key = server_key(f)
    with SealedClient(f.port, key, static_key=priv, early=b"s\r\nPAYLOAD", timeout=T) as c:
        assert c.zero_rtt
        c.close_write()
        assert c.recv_all() == b"+\r\nPAYLOAD"
    wait_received(s)
    assert s.received == [b"PAYLOAD"]
    auth = f.events("authenticated")
    assert [(a["identity"], a["method"]) for a in auth] == [("robot", "external")]
    assert f.events("granted")[0]["identity"] == "robot"
    # XX with the same static key: authenticated too (its early data is always acted on).
    with SealedClient(f.port, static_key=priv, early=b"s\r\nxx", timeout=T) as c:
        assert c.server_static == key and not c.zero_rtt
        c.close_write()
        assert c.recv_all() == b"+\r\nxx"
    # Another key is nobody.
    with SealedClient(f.port, key, static_key=other_priv, early=b"s\r\nanon", timeout=T) as c:
        assert not c.zero_rtt
        c.close_write()
        assert c.recv_all() == b"+\r\nanon"
    assert [g["identity"] for g in f.events("granted")] == ["robot", "robot", ""]


# --- 0-RTT once, never on replay ----------------------------------------------------


def test_0rtt_is_delivered_once_never_on_replay(fived, sentinel, tmp_path):
    s = sentinel("count")
    priv, pub = keypair()
    f = fived(sentinel_service(s),
              server="authorized_clients = %s" % authorized_file(tmp_path, {"robot": pub}))
    key = server_key(f)
    hs = Handshake(key, priv, early=b"s\r\nPAYLOAD")
    recorded = hs.initiation
    c = SealedClient(f.port, handshake=hs, timeout=T)
    assert c.zero_rtt
    c.close_write()
    assert c.recv_all() == b"+\r\ngot 7\n"
    c.close()
    # The same bytes on new connections: closed without a word (the replay filter).
    for _ in range(3):
        assert exchange_raw(f.port, recorded, timeout=T, shut=False) == b""
    # A fresh ephemeral key with the recorded timestamp: answered, but the early data
    # is dropped (the timestamp is not later than the last one seen with this key).
    again = Handshake(key, priv, early=b"s\r\nPAYLOAD", timestamp=hs.timestamp)
    with SealedClient(f.port, handshake=again, resend_early=False, timeout=T) as c:
        assert not c.zero_rtt
        c.close_write()
        assert records_until_close(c) == b""
    # Timestamps more than 600 s behind, or 10 s ahead, are not acted on either.
    for skew in (-700, 700, 30):
        stale = Handshake(key, priv, early=b"s\r\nPAYLOAD", timestamp=tai64n(time.time() + skew))
        with SealedClient(f.port, handshake=stale, resend_early=False, timeout=T) as c:
            assert not c.zero_rtt
            c.close_write()
            assert records_until_close(c) == b""
    wait_received(s)
    assert s.connections == 1 and s.received == [b"PAYLOAD"]
    assert len(f.events("granted")) == 1


# --- every byte flipped --------------------------------------------------------------


def flipped(message, i, mask=0x01):
    m = bytearray(message)
    m[i] ^= mask
    return bytes(m)


def outcome(reply):
    if reply == b"":
        return "close"
    if len(reply) == 3 and reply[0] == REJECT and reply[1] == 1:
        return "reject %d" % reply[2]
    if reply.startswith(b"- ") and b"+" not in reply:
        return "text refusal"
    if reply[0] == RESPONSE:
        return "response"
    return "answered %r" % reply[:8]


def expected_for_initiation(pattern, i, fixed, n):
    """What section 6.4 says of an INITIATION with bit 0 of byte i flipped (and its mac1
    recomputed when `fixed`): framing is checked before mac1, and only the version,
    pattern and suites have REJECT codes.  Flipping a suites bit leaves an offer the
    server can answer (an unknown suite added, or 0, which stands for suite 1), so the
    change is found where the prologue is: by Noise."""
    if i == 0:
        return "text refusal"          # 0xF4 is not the sealed magic
    if i == 1:
        return "reject 1"              # version 0
    if fixed and pattern == XX and (i in (4, 5) or 8 <= i < 8 + n):
        # XX's message 1 (e, and an empty payload with no key yet) authenticates
        # nothing: the server answers, and the client finds the change in message 2.
        return "response"
    return "close"


def test_every_byte_of_the_handshake_flipped(fived, sentinel, tmp_path):
    s = sentinel("count")
    priv, pub = keypair()
    f = fived(sentinel_service(s),
              server="authorized_clients = %s\nhandshakes_per_source = 1000000\n"
                     "request_timeout = 5\npow_difficulty_max = 8"
                     % authorized_file(tmp_path, {"robot": pub}))
    key = server_key(f)
    early = b"s\r\nPAYLOAD"
    wrong = []
    for pattern in (IK, XX):
        hs = Handshake(key if pattern == IK else None, priv, early if pattern == IK else b"")
        n = len(hs.msg1)
        assert len(hs.initiation) == 48 + n
        for i in range(len(hs.initiation)):
            # Each flip on a fresh handshake, so that the replay filter never decides.
            hs = Handshake(key if pattern == IK else None, priv,
                           early if pattern == IK else b"")
            raw = flipped(hs.initiation, i)
            got = outcome(exchange_raw(f.port, raw, timeout=T))
            if got != expected_for_initiation(pattern, i, False, n):
                wrong.append((pattern, i, "raw", got))
            # The same with mac1 made right, so that the flip reaches the later checks
            # and Noise. (Not for n, which moves mac1, nor the flags: see below.)
            if 1 <= i < 16 + n and i not in (3, 6, 7):
                hs = Handshake(key if pattern == IK else None, priv,
                               early if pattern == IK else b"")
                reply = exchange_raw(f.port, fix_mac1(flipped(hs.initiation, i), hs.mac1_key),
                                     timeout=T)
                got = outcome(reply)
                if got != expected_for_initiation(pattern, i, True, n):
                    wrong.append((pattern, i, "mac1 fixed", got))
                if got == "response":
                    with pytest.raises(AuthFailure):
                        hs.read_response(reply)
    # FINISH: a complete XX exchange up to it, then one flipped byte.
    for i in range(4 + 66 + len(early)):
        hs = Handshake(None, priv)
        # (Answering cookies: see test_a_failed_finish_leaves_the_server_unloaded.)
        c, response, _ = open_handshake(f.port, hs, timeout=T)
        hs.read_response(response)
        c.send(flipped(hs.finish(early), i))
        c.shutdown()
        got = outcome(c.read_rest())
        c.close()
        if got != "close":
            wrong.append(("FINISH", i, "raw", got))
    assert wrong == []
    assert s.connections == 0 and f.events("granted") == []
    # Still serving, and the control: the same messages unflipped do deliver.
    with SealedClient(f.port, key, static_key=priv, early=early, timeout=T) as c:
        assert c.zero_rtt
        c.close_write()
        assert c.recv_all() == b"+\r\ngot 7\n"
    with SealedClient(f.port, static_key=priv, early=early, timeout=T) as c:
        c.close_write()
        assert c.recv_all() == b"+\r\ngot 7\n"
    wait_received(s, 2)
    assert s.received == [b"PAYLOAD", b"PAYLOAD"]


def test_no_reject_after_the_response(fived):
    """Section 6.4: a REJECT answers an INITIATION only.  After its RESPONSE fived's
    client reads records, and what comes in place of FINISH (here, an INITIATION of
    another version, which would have a REJECT first) is closed on without a word: a
    REJECT there would be read as a record that does not open.  Found by
    fuzz_sealed_session."""
    f = fived(ECHO)
    for instead in ("initiation", "finish"):
        hs = Handshake(None)
        c, response, _ = open_handshake(f.port, hs, timeout=T)
        hs.read_response(response)
        if instead == "initiation":
            c.send(b"\xf5\x09" + bytes(64))
        else:
            c.send(flipped(hs.finish(b""), 1, 0x08))
        c.shutdown()
        assert c.read_rest() == b"", instead
        c.close()


def test_a_failed_finish_leaves_the_server_unloaded(fived):
    """One XX handshake whose FINISH does not authenticate must not put fived in
    its loaded state: first messages are still answered without a cookie round."""
    f = fived(ECHO, server="pow_difficulty_max = 12")
    key = server_key(f)
    hs = Handshake(None)
    c, response, _ = open_handshake(f.port, hs, timeout=T)
    hs.read_response(response)
    c.send(flipped(hs.finish(b"echo\r\n"), 30))
    c.shutdown()
    assert c.read_rest() == b""
    c.close()
    time.sleep(1.0)      # a few of the governor's quarter-second ticks
    with SealedClient(f.port, key, early=b"echo\r\n", cookie_rounds=0, timeout=T) as c:
        c.close_write()
        assert c.recv_all() == b"+\r\n"     # CookieDemand: difficulty 12, at 0 % load
    assert "loaded," not in f.log()


def test_cookie_flag_unchecked_while_not_loaded(fived, tmp_path):
    """Section 6.4: the cookie and the work are checked only while the server is
    loaded. A set cookie flag with a right mac1 and a bogus mac2 is answered then."""
    f = fived(ECHO)
    key = server_key(f)
    hs = Handshake(key, early=b"echo\r\n")
    m = fix_mac1(flipped(hs.initiation, 3), hs.mac1_key)
    c = Conn(f.port, timeout=T)
    c.send(m)
    assert hs.read_response(read_server_message(c)) == 0
    c.close()


def test_a_flipped_response_does_not_authenticate(fived):
    """Client side: any byte of the RESPONSE changed makes the handshake fail."""
    f = fived(ECHO)
    key = server_key(f)
    for server_pub in (key, None):
        hs = Handshake(server_pub, early=b"echo\r\n" if server_pub else b"")
        c = Conn(f.port, timeout=T)
        c.send(hs.initiation)
        response = read_server_message(c)
        c.close()
        assert len(response) == (54 if server_pub else 102)
        for i in range(len(response)):
            with pytest.raises(AuthFailure):
                hs.copy().read_response(flipped(response, i))
        # The control: the unchanged message authenticates.
        assert hs.copy().read_response(response) in (0, 1)


class Relay:
    """A man in the middle for five: it flips bit 0 of byte `flip_at` of what the
    server sends, holds the server's bytes back `delay` seconds, ends the
    server's stream to the client after `cut_at` bytes, or gathers the server's
    first `hold` bytes and passes them on in one write, on every connection;
    `gate` (N, event) holds the Nth connection until the event is set."""

    def __init__(self, target, flip_at=None, delay=0.0, cut_at=None, hold=0, gate=None):
        self.target, self.flip_at, self.delay, self.cut_at = target, flip_at, delay, cut_at
        self.hold, self.gate, self.accepted = hold, gate, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.gate is not None and self.accepted == self.gate[0]:
                self.gate[1].wait(10)
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.flip_at,
                                                      self.delay, self.cut_at, self.hold),
                             daemon=True).start()

    @staticmethod
    def _gather(src, hold):
        data = b""
        while len(data) < hold:
            try:
                chunk = src.recv(hold - len(data))
            except OSError:
                chunk = b""
            if not chunk:
                break
            data += chunk
        return data

    @staticmethod
    def _pump(src, dst, at=None, delay=0.0, cut_at=None, hold=0):
        seen = 0
        if hold > 0:
            dst.sendall(Relay._gather(src, hold))
        while True:
            try:
                data = src.recv(65536 if cut_at is None else min(65536, cut_at - seen))
            except OSError:
                data = b""
            if not data or (cut_at is not None and seen >= cut_at):
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if at is not None and seen <= at < seen + len(data):
                data = flipped(data, at - seen)
            seen += len(data)
            time.sleep(delay)
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        stop_listening(self.sock)
        for c in self.conns:
            c.close()


def test_five_refuses_a_tampered_response(fived, sentinel, tmp_path):
    s = sentinel("echo")
    f = fived(sentinel_service(s))
    key = b64(server_key(f))
    known_hosts = tmp_path / "known_hosts"
    # IK's RESPONSE is 54 bytes, XX's 102: flip one inside the Noise message.
    for args, at in ((["--key", key], 20), (["--key", key], 50), ([], 40), ([], 90)):
        proxy = Relay(f.port, flip_at=at)
        try:
            r = run_five(*args, "-p", str(proxy.port), "127.0.0.1", "s", input=b"x")
        finally:
            proxy.close()
        assert r.returncode == 6 and r.stdout == b"", (args, at, r)
        assert r.stderr == (b"five: 127.0.0.1 s: protocol: the server's answer does not "
                            b"authenticate\n"), (args, at)
        assert not known_hosts.exists() or str(proxy.port) not in known_hosts.read_text()
    assert s.connections == 0


def test_five_reports_a_truncated_stream(fived):
    """The server's stream cut on the way (a TCP end, no FINAL): five fails, and does
    not pass it off as the end of the service's output."""
    f = fived(ECHO)
    relay = Relay(f.port, cut_at=2000)
    try:
        r = run_five("--key", b64(server_key(f)), "-p", str(relay.port), "127.0.0.1", "echo",
                     input=b"a" * 3000)
    finally:
        relay.close()
    # Records that arrived whole are the service's (fived's first records are small);
    # the rest is reported missing, not taken for the end of the output.
    assert r.returncode == 6 and len(r.stdout) < 2000 and r.stdout == b"a" * len(r.stdout)
    assert r.stderr == b"five: 127.0.0.1 echo: protocol: the session was cut short\n"


def test_five_takes_a_handshake_answer_with_many_records_behind_it(fived, tmp_path):
    """A 0-RTT service starts sending at once: the RESPONSE can reach five in one read
    with as many records as its handshake buffer holds, and all of them are kept."""
    f = fived("[service:big]\nbackend = exec:/usr/bin/head -c 300000 /dev/zero\n")
    r = run_five("-p", str(f.port), "id", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    clients = authorized_file(tmp_path, {"robot": base64.b64decode(r.stdout.strip())})
    f.reload("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
             "authorized_clients = %s\n[service:big]\n"
             "backend = exec:/usr/bin/head -c 300000 /dev/zero\n" % clients)
    relay = Relay(f.port, hold=200000)
    try:
        r = run_five("--key", b64(server_key(f)), "-p", str(relay.port), "127.0.0.1", "big")
    finally:
        relay.close()
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout == bytes(300000)
    assert [a["identity"] for a in f.events("authenticated")] == ["robot"]


def test_five_solves_a_second_cookie_when_the_work_rose(fived):
    """Section 6.5: the work fived demands rose between its COOKIE and the client's
    retry (here a reload raises pow_difficulty_min from 8 to 16 bits while the retry
    is held on the way). fived answers the retry with another COOKIE, and five solves
    that one too instead of giving up."""
    server = ("cookie = always\npow_difficulty_min = %d\npow_difficulty_max = 16\n"
              "handshakes_per_source = 1000000\n")
    f = fived(ECHO, server=server % 8)
    gate = threading.Event()
    relay = Relay(f.port, gate=(2, gate))
    try:
        p = subprocess.Popen([FIVE, "--key", b64(server_key(f)), "-p", str(relay.port),
                              "127.0.0.1", "echo"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: relay.accepted == 2, what="five's retry with the first cookie")
        f.server = server % 16
        f.reload(ECHO)
        gate.set()
        out, err = p.communicate(b"after two cookies", timeout=60)
    finally:
        gate.set()
        relay.close()
    assert (p.returncode, out, err) == (0, b"after two cookies", b""), err
    assert relay.accepted == 3


class Watcher:
    """A backend that records how each stream it reads ends: "eof" or "reset"."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.ends = []
        self.bytes = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        data = bytearray()
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except ConnectionResetError:
                    self.ends.append(("reset", bytes(data)))
                    return
                if not chunk:
                    self.ends.append(("eof", bytes(data)))
                    return
                data += chunk
                self.bytes = len(data)

    def close(self):
        stop_listening(self.sock)


def test_a_truncated_stream_is_no_end_of_stream_to_the_service(fived):
    """Section 6.7: a connection that ends without FINAL was truncated, an error and
    not an end of stream. The service must not see it end as if the client had
    finished (an upload cut short would look complete): fived resets its side."""
    w = Watcher()
    try:
        f = fived("[service:w]\nbackend = tcp:127.0.0.1:%d\n" % w.port)
        c = SealedClient(f.port, server_key(f), early=b"w\r\n", timeout=T)
        assert c.recv_until(b"+\r\n") == b"+\r\n"
        c.send(b"half an upl")
        wait_for(lambda: w.bytes == 11, what="the bytes to reach the backend")
        c.conn.shutdown()
        wait_for(lambda: w.ends, what="the backend's stream to end")
        c.close()
    finally:
        w.close()
    assert w.ends == [("reset", b"half an upl")]


# --- cookie rounds ---------------------------------------------------------------------


def cookie_of(f, hs):
    """Sends hs's first INITIATION; returns the COOKIE that must answer it."""
    c = Conn(f.port, timeout=T)
    c.send(hs.initiation)
    reply = read_server_message(c)
    assert c.read_rest() == b""      # and closed
    c.close()
    assert reply[0] == COOKIE and len(reply) == 60, reply[:4]
    return reply


def test_cookie_round(fived, tmp_path):
    f = fived(ECHO, server="cookie = always\npow_difficulty_min = 8\n"
                           "handshakes_per_source = 1000000")
    key = server_key(f)
    for server_pub in (key, None):
        hs = Handshake(server_pub, early=b"echo\r\n" if server_pub else b"")
        message = cookie_of(f, hs)
        assert message[1:4] == b"\x01\x08\x00"
        difficulty, cookie = hs.open_cookie(message)
        assert difficulty == 8 and len(cookie) == 16
        # Work that does not solve the puzzle: another COOKIE.
        bad = next(i.to_bytes(8, "big") for i in range(1000)
                   if leading_zero_bits(pow_hash(cookie, hs.original_mac1,
                                                 i.to_bytes(8, "big"))) < 8)
        reply = exchange_raw(f.port, hs.with_cookie(cookie, bad), timeout=T)
        assert reply[:1] == bytes([COOKIE]) and len(reply) == 60
        # The cookie of another ephemeral key, with work done for it: another COOKIE.
        other = Handshake(server_pub, early=b"echo\r\n" if server_pub else b"")
        nonce, _ = solve_pow(cookie, other.original_mac1, difficulty)
        reply = exchange_raw(f.port, other.with_cookie(cookie, nonce), timeout=T)
        assert reply[:1] == bytes([COOKIE]) and len(reply) == 60
        # The right cookie and work, but mac2 changed: another COOKIE.
        nonce, _ = solve_pow(cookie, hs.original_mac1, difficulty)
        good = hs.with_cookie(cookie, nonce)
        reply = exchange_raw(f.port, flipped(good, len(good) - 1), timeout=T)
        assert reply[:1] == bytes([COOKIE])
        # The same Noise message 1 again with cookie and work: through.
        with SealedClient(f.port, handshake=hs, early=b"echo\r\n", timeout=T) as c:
            assert c.cookies == [8]     # (for XX, `early` rides in FINISH)
            c.send(b"after the work")
            c.close_write()
            assert c.recv_all() == b"+\r\nafter the work"
    # five solves it too.
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"five did the work")
    assert (r.returncode, r.stdout) == (0, b"five did the work"), r.stderr
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"and with IK")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"and with IK", b"")


def admitted(f, key, count, cookie_flag):
    """How many of `count` IK INITIATIONs sent in a row get a RESPONSE."""
    ok = 0
    for _ in range(count):
        hs = Handshake(key)
        m = hs.initiation
        if cookie_flag:       # the flag, and a mac1 right for it; no cookie at all
            m = fix_mac1(flipped(m, 3), hs.mac1_key)
        c = Conn(f.port, timeout=T)
        c.send(m)
        try:
            ok += c.read_exact(1) == bytes([RESPONSE])
        except Closed:
            pass
        c.close()
    return ok


def test_the_cookie_flag_alone_does_not_raise_the_budget(fived):
    """Section 6.4, check 4: the larger handshake budget is for INITIATIONs with a
    valid cookie. Anyone can set the flag and recompute mac1."""
    f = fived(ECHO, server="handshakes_per_source = 5")
    key = server_key(f)
    plain = admitted(f, key, 40, False)
    assert plain < 30                  # the budget bites
    time.sleep(3)                      # and fills up again
    flagged = admitted(f, key, 40, True)
    assert flagged <= plain + 8, (plain, flagged)     # today: 40 of 40


def test_cookie_difficulty_levels(fived):
    f = fived(ECHO, server="cookie = always")
    key = server_key(f)
    for bits in (0, 5, 13):
        f.server = ("cookie = always\npow_difficulty_min = %d\npow_difficulty_max = %d\n"
                    "handshakes_per_source = 1000000" % (bits, bits))
        f.reload(ECHO)
        hs = Handshake(key, early=b"echo\r\n")
        message = cookie_of(f, hs)
        assert message[2] == bits
        with SealedClient(f.port, handshake=hs, timeout=T) as c:
            assert c.cookies == [bits]
            c.close_write()
            assert c.recv_all() == b"+\r\n"


# --- dark ---------------------------------------------------------------------------------


# A dark server closes every stranger's connection request_timeout after it
# was made, whatever it sent; these servers set it to DARK_WAIT.
DARK_WAIT = 2.0
DARK_SLACK = 0.5 * SLOW


def dark_probe(port, data, source, shut=False):
    """Connects from source, sends data (b"": nothing), ends the write side if
    shut, and reads until the server closes: (bytes received, seconds from the
    connection to the close)."""
    c = socket.socket()
    try:
        c.bind((source, 0))
        c.settimeout(3 * DARK_WAIT + 5 * SLOW)
        start = time.monotonic()
        c.connect(("127.0.0.1", port))
        if data:
            c.sendall(data)
        if shut:
            c.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            try:
                chunk = c.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return bytes(got), time.monotonic() - start
    finally:
        c.close()


def dark_probes(port, probes):
    """Runs every probe {name: (data, source, shut)} at once; {name: (bytes, seconds)}."""
    results = {}

    def run(name, args):
        try:
            results[name] = dark_probe(port, *args)
        except OSError as e:
            results[name] = (e, None)
    threads = [threading.Thread(target=run, args=item) for item in probes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def assert_alike(results):
    """Not a byte to anyone, and every close at the same time after the connection."""
    for name, (got, took) in sorted(results.items()):
        assert got == b"", (name, got)
        assert took is not None and abs(took - DARK_WAIT) < DARK_SLACK, (name, took)


def wrong_mac(initiation):
    """The INITIATION with one bit of its mac1 flipped (mac1 ends 16 bytes before the end)."""
    damaged = bytearray(initiation)
    damaged[-17] ^= 0x01
    return bytes(damaged)


def stranger_probes(key, prefix, max_per_source=None):
    """What a scanner may try, each from an address of its own under prefix (127.x.y.)."""
    probes = {
        "garbage": (b"\x07" + os.urandom(1023), False),
        "garbage, then end of stream": (b"\x07" + os.urandom(1023), True),
        "HTTP": (b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", False),
        "TCPMUX": (b"echo\r\n", False),
        "TLS": (bytes.fromhex("160301002e010000") + os.urandom(42), False),
        "USP": (b'{"message":"initialize","streams":[{"application":"echo"}]}\n', False),
        "idle": (b"", False),
        "idle, then end of stream": (b"", True),
        "sealed magic byte": (b"\xf5", False),
        "sealed, wrong mac1": (wrong_mac(Handshake(key, early=b"echo\r\n").initiation), False),
        "sealed, wrong key": (Handshake(keypair()[1], early=b"echo\r\n").initiation, False),
        "sealed, first contact (XX)": (Handshake(None).initiation, False),
        "sealed, version 2": (Handshake(key, version=2).initiation, False),
        "sealed, no common suite": (Handshake(key, suites=4).initiation, False),
        "sealed, truncated": (Handshake(key, early=b"echo\r\n").initiation[:100], True),
    }
    out = {name: (data, "%s%d" % (prefix, i + 1), shut)
           for i, (name, (data, shut)) in enumerate(sorted(probes.items()))}
    if max_per_source is not None:
        # One address, twice its limit: the connections over it are no different.
        for i in range(2 * max_per_source):
            out["flood %d" % i] = (b"", prefix + "200", False)
    return out


def test_dark_server_treats_every_stranger_alike(fived, tmp_path):
    """To anything but a sealed first message made with its key, a dark server
    says nothing, and closes when the request time is up, whatever came: garbage,
    other protocols, nothing, the start of a sealed handshake, a first message
    with a wrong MAC, a connection over max_per_source.  Not a refusal line,
    not a REJECT, and no earlier close for what it recognizes as not sealed."""
    clients = authorized_file(tmp_path, {})
    server = "dark = yes\nrequest_timeout = %ds\nmax_per_source = 3\nauthorized_clients = %s" % (
        DARK_WAIT, clients)
    f = fived(ECHO, server=server)
    key = server_key(f)
    port = str(f.port)
    assert_alike(dark_probes(f.port, stranger_probes(key, "127.0.7.", max_per_source=3)))
    # Third-party clients see the same.
    start = time.monotonic()
    r = subprocess.run(["nc", "-N", "127.0.0.1", port], input=b"echo\r\n", capture_output=True,
                       timeout=3 * DARK_WAIT)
    assert r.stdout == b"" and abs(time.monotonic() - start - DARK_WAIT) < DARK_SLACK
    start = time.monotonic()
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:" + port],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=3 * DARK_WAIT)
    assert r.returncode != 0 and b"SSL handshake has read 0 bytes" in r.stdout, r.stdout
    assert abs(time.monotonic() - start - DARK_WAIT) < DARK_SLACK
    # The right key gets through at once: a client five knows, and one it does not.
    r = run_five("--key", b64(key), "-p", port, "id", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    authorized_file(tmp_path, {"laptop": base64.b64decode(r.stdout.strip(), validate=True)})
    f.reload("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n%s\n" % server + ECHO)
    start = time.monotonic()
    r = run_five("--key", b64(key), "-p", port, "127.0.0.1", "echo", input=b"five too")
    assert (r.returncode, r.stdout) == (0, b"five too"), r.stderr
    assert time.monotonic() - start < DARK_WAIT / 2
    assert f.events("granted")[-1]["identity"] == "laptop"
    with SealedClient(f.port, key, early=b"echo\r\nin the dark", timeout=T) as c:
        c.close_write()
        assert c.recv_all() == b"+\r\nin the dark"
    assert not (f.dir / "known_hosts").exists()


def test_full_dark_server_treats_every_stranger_alike(fived):
    """At max_connections, with every connection past its request, a dark server
    neither answers `- too many connections` nor closes at once."""
    f = fived(ECHO, server="dark = yes\nrequest_timeout = %ds\nmax_connections = 16" % DARK_WAIT)
    key = server_key(f)
    held = []
    try:
        for _ in range(16):
            c = SealedClient(f.port, key, early=b"echo\r\n", timeout=T)
            held.append(c)
            assert c.recv() == b"+\r\n"
        probes = stranger_probes(key, "127.0.8.")
        # Even the right key: the server is full.
        probes["sealed, right key"] = (Handshake(key, early=b"echo\r\n").initiation,
                                       "127.0.8.100", False)
        assert_alike(dark_probes(f.port, probes))
    finally:
        for c in held:
            c.close()
    refused = [e["reason"] for e in f.events("refused")]
    assert refused.count("too many connections") == len(probes), refused


def test_dark_server_cookie_only_for_its_key(fived):
    """A loaded dark server answers a COOKIE to a first message whose MAC proves
    the client knows its key, and to nothing else."""
    f = fived(ECHO, server="dark = yes\ncookie = always\nrequest_timeout = %ds" % DARK_WAIT)
    key = server_key(f)
    reply = exchange_raw(f.port, Handshake(key, early=b"echo\r\n").initiation, timeout=T)
    assert reply[0] == COOKIE and len(reply) == 60
    assert_alike(dark_probes(f.port, {
        "wrong mac1": (wrong_mac(Handshake(key, early=b"echo\r\n").initiation), "127.0.9.1",
                       False),
        "wrong key": (Handshake(keypair()[1]).initiation, "127.0.9.2", False),
        "first contact": (Handshake(None).initiation, "127.0.9.3", False)}))


def test_rejects_of_a_server_that_is_not_dark(fived):
    f = fived(ECHO)
    key = server_key(f)
    assert exchange_raw(f.port, Handshake(key, version=2).initiation, timeout=T) == \
        bytes([REJECT, 1, 1])
    assert exchange_raw(f.port, Handshake(key, suites=4).initiation, timeout=T) == \
        bytes([REJECT, 1, 2])
    hs = Handshake(key)
    unknown = initiation_bytes(7, hs.msg1, hs.mac1_key)
    assert exchange_raw(f.port, unknown, timeout=T) == bytes([REJECT, 1, 3])


# --- five -----------------------------------------------------------------------------------


def test_five_sealed_and_the_key_change(fived, sentinel, tmp_path):
    s = sentinel("echo")
    f = fived(sentinel_service(s))
    port = f.port
    key = server_key(f)
    known_hosts = tmp_path / "known_hosts"
    r = run_five("-p", str(port), "127.0.0.1", "s", input=b"first")
    assert (r.returncode, r.stdout) == (0, b"first"), r.stderr
    assert known_hosts.read_text() == "127.0.0.1:%d %s\n" % (port, b64(key))
    f.stop()
    # Same address, another key.
    g = fived("[server]\nlisten = tcp:127.0.0.1:%d\naudit_log = @AUDIT@\n" % port
              + sentinel_service(s), name="impostor")
    assert server_key(g) != key
    r = run_five("-p", str(port), "127.0.0.1", "s", input=b"must not be sent")
    assert r.returncode == 5 and r.stdout == b""
    # Not trusted by five, not refused by fived: five(1) says "refused" all the same.
    assert r.stderr.startswith(b"five: 127.0.0.1 s: refused: THE KEY OF 127.0.0.1:%d HAS "
                               b"CHANGED" % port)
    assert b"HAS CHANGED" in r.stderr and str(known_hosts).encode() in r.stderr
    assert fingerprint(key) in r.stderr and fingerprint(server_key(g)) in r.stderr
    assert g.events("granted") == []
    wait_received(s)
    assert s.connections == 1 and s.received == [b"first"]
    assert known_hosts.read_text() == "127.0.0.1:%d %s\n" % (port, b64(key))


def test_five_id_authorizes_the_client(fived, tmp_path):
    clients = authorized_file(tmp_path, {})
    config = ECHO
    f = fived(config, server="authorized_clients = %s" % clients)
    key = server_key(f)
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"anonymous")
    assert r.stdout == b"anonymous"
    assert f.events("authenticated") == []
    r = run_five("-p", str(f.port), "id", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    client_pub = base64.b64decode(r.stdout.strip(), validate=True)
    # Section 6.9: derived from the master secret and the server's key.
    master = base64.b64decode((tmp_path / "identity").read_text().split()[-1])
    assert public_of(blake2b(b"five-client-static-v1" + key, 32, master)) == client_pub
    authorized_file(tmp_path, {"laptop": client_pub})
    f.reload("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
             "authorized_clients = %s\n" % clients + config)
    r = run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"known")
    assert (r.returncode, r.stdout) == (0, b"known"), r.stderr
    auth = f.events("authenticated")
    assert [(a["identity"], a["method"]) for a in auth] == [("laptop", "external")]
    assert f.events("granted")[-1]["identity"] == "laptop"


def test_five_id_on_first_contact(fived, tmp_path):
    """`five id HOST` for a host not pinned yet learns its key (XX) with the default
    reply timeout. Without -t it waits 0 ms: it fails whenever the RESPONSE is not
    already there ("protocol: no handshake reply within 0 ms", exit 6). Here the
    server's answer is held back 100 ms on the way."""
    f = fived(ECHO)
    relay = Relay(f.port, delay=0.1)
    try:
        r = run_five("-t", "5", "-p", str(relay.port), "id", "127.0.0.1")
        assert r.returncode == 0, r.stderr        # the control: with -t it works
        (tmp_path / "known_hosts").unlink()
        r = run_five("-p", str(relay.port), "id", "127.0.0.1")
    finally:
        relay.close()
    assert r.returncode == 0, r.stderr
    assert len(base64.b64decode(r.stdout.strip(), validate=True)) == 32
    assert (tmp_path / "known_hosts").read_text() == \
        "127.0.0.1:%d %s\n" % (relay.port, b64(server_key(f)))


def test_five_with_the_key_given(fived, tmp_path):
    f = fived(ECHO)
    key = b64(server_key(f))
    known_hosts = tmp_path / "known_hosts"
    r = run_five("-p", str(f.port), "%s@127.0.0.1" % key, "echo", input=b"key@host")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"key@host", b"")
    r = run_five("--key", key, "-p", str(f.port), "127.0.0.1", "echo", input=b"--key")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"--key", b"")
    assert not known_hosts.exists()
    # A wrong key is a failure, not a first contact: both fingerprints are named.
    wrong = keypair()[1]
    for argv in (["--key", b64(wrong), "127.0.0.1"], ["%s@127.0.0.1" % b64(wrong)]):
        r = run_five("-p", str(f.port), *argv, "echo", input=b"no")
        assert r.returncode == 5 and r.stdout == b""
        assert fingerprint(wrong) in r.stderr and fingerprint(server_key(f)) in r.stderr
    assert not known_hosts.exists()


def test_five_wrong_key_given_message(fived):
    f = fived(ECHO)
    r = run_five("--key", b64(keypair()[1]), "-p", str(f.port), "127.0.0.1", "echo", input=b"no")
    assert r.returncode == 5
    # "... If the change is expected, delete line 0 of  and connect again"
    assert b"line 0" not in r.stderr and b" of  " not in r.stderr, r.stderr


def test_openssh_through_a_sealed_proxycommand(fived, tmp_path, process):
    from test_interop import ssh_args, start_sshd
    sshd_port, keys = start_sshd(tmp_path, process)
    f = fived("[service:ssh]\nbackend = tcp:127.0.0.1:%d\n" % sshd_port)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    for i in range(2):
        r = subprocess.run(ssh_args(keys, "%s -p %d %%h ssh" % (FIVE, f.port), tmp_path)
                           + ["%s@127.0.0.1" % user, "echo sealed %d" % i],
                           capture_output=True, text=True, timeout=30 * SLOW)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "sealed %d\n" % i
    # The first session learned and pinned the key (XX), the second used it (IK).
    assert (tmp_path / "known_hosts").read_text() == \
        "127.0.0.1:%d %s\n" % (f.port, b64(server_key(f)))
    assert [e["service"] for e in f.events("granted")] == ["ssh", "ssh"]


# --- channel binding ----------------------------------------------------------------------


def challenge(c):
    assert c.recv_line() == b"+ SUCCESS pubkey\r\n"
    return parse_challenge(c.recv_line())


def test_signature_is_bound_to_its_sealed_session(fived, world, sentinel):
    s = sentinel("echo")
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    f = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\nauthorized_keys = %s\n"
              "[service:secret]\nbackend = tcp:127.0.0.1:%d\nauth = required\n"
              % (keys, s.port), env=world.fived_env())
    key = server_key(f)
    sk, pk = load_key(world.keys["alice"])
    hello = b"AUTH pubkey\r\n" + user_line("alice", pk)
    a = SealedClient(f.port, key, early=hello, timeout=T)
    b = SealedClient(f.port, None, early=hello, timeout=T)
    assert a.handshake_hash != b.handshake_hash
    challenge(a)
    sid, nonce = challenge(b)
    # B's own session id and nonce, but A's channel binding: refused.
    b.send(signature_line(sk, signed_data(sid, nonce, "alice", pk, a.handshake_hash)))
    assert b.recv_line() == b"- authentication failed\r\n"
    # Without a binding (as on a plain connection): refused as well.
    b.send(hello)
    sid, nonce = challenge(b)
    b.send(signature_line(sk, signed_data(sid, nonce, "alice", pk)))
    assert b.recv_line() == b"- authentication failed\r\n"
    # B is not authenticated: the service stays out of reach.
    b.send(b"secret\r\nstolen")
    assert b.recv_line() == b"- unknown service\r\n"
    assert [e["reason"] for e in f.events("auth_failed")] == ["bad signature"] * 2
    b.close()
    a.close()
    assert s.connections == 0
    # The control: bound to its own session, the same signature is good.
    with SealedClient(f.port, key, early=hello, timeout=T) as c:
        sid, nonce = challenge(c)
        c.send(signature_line(sk, signed_data(sid, nonce, "alice", pk, c.handshake_hash))
               + b"secret\r\nbound")
        assert c.recv_line() == b"+ Authentication as alice successful\r\n"
        c.close_write()
        assert c.recv_all() == b"+\r\nbound"
    wait_received(s)
    assert s.received == [b"bound"]


# --- a flood -----------------------------------------------------------------------------


FLOODER = r"""
import json, os, socket, sys, time
sys.path.insert(0, %(here)r)
from sealwire import IK, initiation_bytes, mac1_key
port, key, seconds, source, kind, rate = %(args)r
mk = mac1_key(bytes.fromhex(key))
end = time.monotonic() + seconds
sent, answers, i = 0, {}, 0
while time.monotonic() < end:
    # Paced: at most `rate` messages a second.
    ahead = sent / rate - (seconds - (end - time.monotonic()))
    if ahead > 0:
        time.sleep(ahead)
    i += 1
    if kind == "valid":
        # A random ephemeral key and ciphertext, with a right mac1: it passes every
        # cheap check and costs the server a Diffie-Hellman, unless it asks for work.
        m = initiation_bytes(IK, os.urandom(110 + i %% 64), mk)
    elif i %% 2:
        m = b"\xf5\x01\x00\x00\x00\x01\x00\x6e" + os.urandom(150)
    else:
        m = os.urandom(300)
    s = socket.socket()
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(m)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(2)
        r = s.recv(1)
        k = "%%02x" %% r[0] if r else "close"
    except OSError as e:
        k = type(e).__name__
    s.close()
    answers[k] = answers.get(k, 0) + 1
    sent += 1
print(json.dumps({"sent": sent, "answers": answers}))
"""


def worker_cpu_seconds(f):
    """CPU time used so far by fived's worker (its child; itself without privilege separation)."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(f.proc.pid)],
                              capture_output=True, text=True).stdout.split()
    pid = int(children[0]) if children else f.proc.pid
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_flood(fived):
    """Two sources flood fived with first messages that pass every cheap check, a third
    with garbage. fived stays up and becomes loaded: it answers with cookies, demands
    pow_difficulty_min bits of work at first and raises it while the load lasts, never
    past pow_difficulty_max; every legitimate client meanwhile does the work asked of
    it and is served."""
    seconds, legit_n, pow_min, pow_max = 6.0, 20, 8, 16
    f = fived(ECHO, server="handshake_cpu_high = 3\nhandshake_cpu_low = 1\n"
                           "pow_difficulty_min = %d\npow_difficulty_max = %d\n"
                           "handshakes_per_source = 1000000\nrequest_timeout = 10"
                           % (pow_min, pow_max))
    key = server_key(f)
    cpu_before = worker_cpu_seconds(f)
    flooders = [("127.0.0.2", "valid", 2500), ("127.0.0.3", "valid", 2500),
                ("127.0.0.4", "garbage", 500)]
    procs = [subprocess.Popen([sys.executable, "-c", FLOODER % {
        "here": HERE, "args": (f.port, key.hex(), seconds, src, kind, rate)}],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for src, kind, rate in flooders]
    started = time.monotonic()
    results = []
    try:
        time.sleep(1.0)   # let the load build up
        for i in range(legit_n):
            t0 = time.monotonic()
            try:
                with SealedClient(f.port, key, early=b"echo\r\nping %d" % i, timeout=T,
                                  cookie_rounds=4, pow_limit=1 << 22) as c:
                    got = c.recv_until(b"ping %d" % i)
                    results.append({"ok": got == b"+\r\nping %d" % i,
                                    "ttfb_ms": round((c.first_byte_at - t0) * 1000, 1),
                                    "cookies": c.cookies})
            except Exception as e:   # recorded, and fails the assertion below
                results.append({"ok": False, "error": repr(e), "cookies": []})
            # Spread the clients over the flood.
            time.sleep(max(0.0, (seconds - 1.5) / legit_n - (time.monotonic() - t0)))
        outs = [p.communicate(timeout=(seconds + 30) * SLOW) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    elapsed = time.monotonic() - started
    cpu = worker_cpu_seconds(f) - cpu_before
    assert f.proc.poll() is None
    flood = [json.loads(out) for out, _ in outs]
    log = f.log()
    work = [int(b) for b in re.findall(r"handshakes: .*work (\d+) bits", log)]
    cookies_sent = sum(int(n) for n in re.findall(r"(\d+) cookies sent", log))
    ttfb = sorted(r["ttfb_ms"] for r in results if r["ok"])
    report = {
        "flood_seconds": seconds,
        "elapsed_seconds": round(elapsed, 2),
        "flooders": [dict(source=src, kind=kind, rate_cap=rate, **fl)
                     for (src, kind, rate), fl in zip(flooders, flood)],
        "difficulty_max": max(work, default=0),
        "governor_reports": len(work),
        "cookies_sent": cookies_sent,
        "fived_worker_cpu_seconds": round(cpu, 2),
        "legit": {
            "n": legit_n,
            "completed": sum(r["ok"] for r in results),
            "with_cookie": sum(1 for r in results if r["cookies"]),
            "difficulties": [r["cookies"] for r in results],
            "ttfb_ms_median": ttfb[len(ttfb) // 2] if ttfb else None,
            "ttfb_ms_max": ttfb[-1] if ttfb else None,
            "ttfb_ms": [r.get("ttfb_ms") for r in results],
        },
    }
    print("\nflood report: " + json.dumps(report))
    if os.environ.get("FIVE_FLOOD_REPORT"):
        with open(os.environ["FIVE_FLOOD_REPORT"], "w") as fh:
            json.dump(report, fh, indent=1)
    assert [r for r in results if not r["ok"]] == []
    # The governor's reports: 0 bits while not loaded, else from the minimum to the maximum;
    # and the load lasted long enough for the work demanded to rise above the minimum.
    assert work and all(w == 0 or pow_min <= w <= pow_max for w in work), work
    assert pow_min < report["difficulty_max"] <= pow_max, work
    assert all(pow_min <= d <= pow_max for r in results for d in r["cookies"]), results
    assert cookies_sent > 0
    assert sum(fl["answers"].get("%02x" % COOKIE, 0) for fl in flood) > 0
