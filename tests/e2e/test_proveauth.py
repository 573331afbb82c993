"""PROVEAUTH and GETSIGNKEY (docs/PROTOCOL.md section 13): a user proves to a consumer the
identity its session with fived authenticated, and fived never learns who the consumer is.

The fived report, 3.1.9: "Consumer (C) responds with a challenge to user (U). The challenge
consists of a nonce chosen by C along with the canonical name for C. User (U) concatenates
the nonce and canonical names provided by the consumer (C) and hashes them. User (U) then
invokes PROVEAUTH on their authenticated session with the identity provider (P) and
provides this hash. Provider (P) concatenates the hash with the identity the user's (U)
session is authenticated as and signs the result [...] The identity consumer (C) proves
that user (U) has a right to the identity by verifying the signature on the data and
ensuring the contents of the signed message matches the identity, nonce and canonical name
expected." """

import base64
import hashlib
import os
import secrets
import subprocess
import sys
import time

from conftest import FIVED, HELPERS, SLOW, connect, pubkey_login, recv_line, run_five
from fivewire import load_key
from muxwire import LIMIT, REFUSED, MuxSession
from uspwire import UspClient, encode, initialize

# A consumer written from PROTOCOL.md section 13 alone: PyNaCl and the standard library,
# nothing of fived's code.  Run as a program of its own: KEY PROVIDER NONCE NAME, the proof
# on standard input; prints the identity, or why it refuses (exit 1).
CONSUMER = r'''
import base64, calendar, hashlib, json, sys, time
import nacl.exceptions, nacl.signing

MEMBERS = {"iss", "sub", "amr", "hash", "iat", "exp"}


def b64url(text):
    if "=" in text:
        raise ValueError("padded")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pae(*pieces):
    le64 = lambda n: n.to_bytes(8, "little")
    return le64(len(pieces)) + b"".join(le64(len(p)) + p for p in pieces)


def challenge(nonce, name):
    return hashlib.sha256(b"fived-proveauth-v1\0" + bytes([len(nonce)]) + nonce
                          + bytes([len(name)]) + name).hexdigest()


def kid(pk):
    return base64.urlsafe_b64encode(hashlib.sha256(pk).digest()[:9]).decode()


def seconds(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def verify(pk, proof, provider, nonce, name, now):
    parts = proof.split(".")
    if len(parts) != 4 or parts[:2] != ["v4", "public"]:
        return "not a proof"
    footer = b64url(parts[3])
    if footer != ('{"kid":"%s"}' % kid(pk)).encode():
        return "another key"
    body = b64url(parts[2])
    message, sig = body[:-64], body[-64:]
    try:
        nacl.signing.VerifyKey(pk).verify(
            pae(b"v4.public.", message, footer, b"fived-proof-v1"), sig)
    except nacl.exceptions.BadSignatureError:
        return "bad signature"
    claims = json.loads(message)
    if set(claims) != MEMBERS or claims["iss"] != provider:
        return "malformed claims"
    if claims["hash"] != challenge(nonce, name):
        return "another challenge"
    if seconds(claims["iat"]) > now + 60:
        return "not yet valid"
    if now >= seconds(claims["exp"]):
        return "expired"
    return claims


key, provider, nonce, name = sys.argv[1:5]
got = verify(base64.b64decode(key, validate=True), sys.stdin.read().strip(), provider,
             nonce.encode(), name.encode(), time.time())
print(got["sub"] if isinstance(got, dict) else got)
sys.exit(0 if isinstance(got, dict) else 1)
'''

PROVIDER = "idp.example"


def start(fived, world, extra="", name="fived"):
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    return fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
                 "authorized_keys = %s\nrequest_timeout = 5\nallow_plaintext_pubkey = yes\n"
                 "provider_name = %s\n%s\n"
                 "[service:db]\nbackend = builtin:echo\nauth = required\nencryption = optional\n"
                 % (keys, PROVIDER, extra), env=world.fived_env(), name=name)


def sign_key(f):
    """fived --print-sign-key: the key and the provider's name."""
    out = subprocess.run([FIVED, "--print-sign-key", "-c", str(f.conf)], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], out[1]


def challenge(nonce, name):
    """What the user computes from the consumer's challenge (section 13.2)."""
    return hashlib.sha256(b"fived-proveauth-v1\0" + bytes([len(nonce)]) + nonce
                          + bytes([len(name)]) + name).hexdigest().encode()


def consume(tmp_path, key, proof, nonce, name, provider=PROVIDER):
    """The consumer's verdict: (exit status, what it printed)."""
    program = tmp_path / "consumer.py"
    program.write_text(CONSUMER)
    r = subprocess.run([sys.executable, str(program), key, provider, nonce.decode(),
                        name.decode()], input=proof, capture_output=True, timeout=10)
    return r.returncode, r.stdout.decode().strip() or r.stderr.decode()


def prove(f, world, hex_hash):
    """PROVEAUTH on a session where alice authenticated with her key: fived's answer."""
    c = pubkey_login(f, world)
    c.sendall(b"PROVEAUTH " + hex_hash + b"\r\n")
    reply = recv_line(c)
    c.close()
    return reply


def proof_of(reply):
    assert reply.startswith(b"+ PROOF v4.public.") and reply.endswith(b"\r\n"), reply
    return reply[len(b"+ PROOF "):-2]


def test_three_parties(fived, world, tmp_path):
    """C challenges U; U asks P with a hash; C checks P's signature, and P never saw C."""
    f = start(fived, world)
    nonce, name = secrets.token_hex(16).encode(), b"shop.example"
    hex_hash = challenge(nonce, name)
    proof = proof_of(prove(f, world, hex_hash))
    key, provider = sign_key(f)
    with connect(f.port) as s:
        s.sendall(b"GETSIGNKEY\r\n")
        assert recv_line(s) == ("+ SIGNKEY %s %s\r\n" % (key, provider)).encode()
    assert provider == PROVIDER
    assert consume(tmp_path, key, proof, nonce, name) == (0, "alice")
    f.stop()
    issued = f.events("proof_issued")
    assert [(e["identity"], e["hash"]) for e in issued] == [("alice", hex_hash.decode())]
    audit = f.audit.read_text()
    assert name.decode() not in audit and nonce.decode() not in audit


def test_a_proof_holds_for_its_challenge_and_provider_only(fived, world, tmp_path):
    f = start(fived, world)
    other = start(fived, world, name="other")
    nonce, name = secrets.token_hex(16).encode(), b"shop.example"
    proof = proof_of(prove(f, world, challenge(nonce, name)))
    key, _ = sign_key(f)
    other_key, _ = sign_key(other)
    assert other_key != key
    tampered = proof[:30] + (b"A" if proof[30:31] != b"A" else b"B") + proof[31:]
    for args, verdict in (((key, proof, nonce, b"bank.example"), "another challenge"),
                          ((key, proof, secrets.token_hex(16).encode(), name),
                           "another challenge"),
                          ((other_key, proof, nonce, name), "another key"),
                          ((key, tampered, nonce, name), "bad signature")):
        assert consume(tmp_path, *args) == (1, verdict), args


def test_an_expired_proof(fived, world, tmp_path):
    f = start(fived, world, "proof_ttl = 1")
    nonce, name = secrets.token_hex(16).encode(), b"shop.example"
    proof = proof_of(prove(f, world, challenge(nonce, name)))
    key, _ = sign_key(f)
    time.sleep(2.2)
    assert consume(tmp_path, key, proof, nonce, name) == (1, "expired")


def test_refusals_keep_the_session(fived, world):
    """Only an identity the session authenticated itself is proved: not before AUTH, not a
    token's (another issuer's word, or withheld); each refusal is audited."""
    f = start(fived, world)
    hex_hash = challenge(secrets.token_hex(16).encode(), b"shop.example")
    with connect(f.port) as s:
        s.sendall(b"PROVEAUTH " + hex_hash + b"\r\nQUIT\r\n")
        assert recv_line(s) == b"- authentication required\r\n"
        assert recv_line(s) == b"+ bye\r\n"
    assert prove(f, world, b"0" * 63) == b"- invalid hash\r\n"
    c = pubkey_login(f, world)
    c.sendall(b"TOKEN db\r\n")
    token = recv_line(c)[len(b"+ TOKEN "):-2]
    c.close()
    with connect(f.port) as s:
        s.sendall(b"AUTH token\r\nTOKEN " + token + b"\r\nPROVEAUTH " + hex_hash + b"\r\n")
        assert recv_line(s) == b"+ SUCCESS token\r\n"
        assert recv_line(s) == b"+ Authentication as alice successful\r\n"
        assert recv_line(s) == b"- not permitted: a token does not prove an identity\r\n"
    f.stop()
    assert [e["reason"] for e in f.events("proof_refused")] == [
        "authentication required", "invalid hash",
        "not permitted: a token does not prove an identity"]
    assert f.events("proof_issued") == []


def test_usp(fived, world, tmp_path):
    """The same in the USP dialect: getsignkey at once, proveauth once authenticated."""
    f = start(fived, world)
    nonce, name = secrets.token_hex(16).encode(), b"shop.example"
    hex_hash = challenge(nonce, name).decode()
    key, provider = sign_key(f)
    c = UspClient(f.port, server_key=f.server_key())
    c.send(encode({"message": "getsignkey"}))
    c.expect("signkey", key=key, provider=provider)
    c.send(initialize("db", authentication=["pubkey"]))
    c.expect("authenticate", protocol="pubkey")
    sk, pk = load_key(world.keys["alice"])
    c.pubkey_exchange("alice", sk, pk)
    c.send(encode({"message": "proveauth", "hash": hex_hash}))
    proof = c.expect("proof")["proof"].encode()
    c.close()
    assert consume(tmp_path, key, proof, nonce, name) == (0, "alice")
    c = UspClient(f.port, server_key=f.server_key())
    c.send(encode({"message": "proveauth", "hash": hex_hash}))
    c.expect_error("authentication required")
    c.expect_closed()


def read_to_fin(s, sid):
    """A stream's bytes up to fived's FIN."""
    out = b""
    while True:
        chunk = s.read(sid)
        if not chunk:
            return out
        out += chunk


def multiplexed(sock, *requests):
    """MULTIPLEX on sock, then one stream per (command, first data): each stream's reply."""
    s = MuxSession(sock, timeout=10 * SLOW)
    s.enter()
    sids = [s.open(command, data=data) for command, data in requests]
    return s, [read_to_fin(s, sid) for sid in sids]


def test_multiplexed(fived, world, tmp_path):
    """The report, 3.1.4: "Multiplexing allows a user to connect to a session server,
    encrypt their session, authenticate and then access as many services as they need";
    3.1.9: "In fived this entity is the session server providing the PROVEAUTH service",
    and "GETSIGNKEY is a convenience service which offers the public key used to prove
    identities in PROVEAUTH".  Both are streams of a multiplexed session (13.1): the OPEN
    carries the request, the reply is the text dialect's line, then FIN; the refusals are
    the text dialect's, and a service stream beside them goes on."""
    f = start(fived, world, "\n[service:ballot]\nbackend = builtin:echo\nauth = required\n"
              "encryption = optional\nidentity = withhold\n")
    nonce, name = secrets.token_hex(16).encode(), b"shop.example"
    hex_hash = challenge(nonce, name)
    key, provider = sign_key(f)
    s = MuxSession(pubkey_login(f, world), timeout=10 * SLOW)
    s.enter()
    echo = s.open("db", data=b"ping")
    signkey = s.open("GETSIGNKEY")
    prove = s.open("proveauth", data=hex_hash + b"\r\n")
    assert read_to_fin(s, signkey) == ("+ SIGNKEY %s %s\r\n" % (key, provider)).encode()
    proof = proof_of(read_to_fin(s, prove))
    assert consume(tmp_path, key, proof, nonce, name) == (0, "alice")
    bad = s.open("PROVEAUTH", data=b"0" * 63)
    assert read_to_fin(s, bad) == b"- invalid hash\r\n"
    # The identity proved is the session's: an OPEN with a token of its own is refused.
    with_token = s.open("PROVEAUTH", token="v4.public.AAAA", data=hex_hash)
    assert s.wait_rst(with_token) == (REFUSED, "invalid request")
    assert s.read(echo) == b"ping"
    s.close()

    with connect(f.port) as c:
        _, [reply] = multiplexed(c, ("PROVEAUTH", hex_hash))
        assert reply == b"- authentication required\r\n"
    # Token-authenticated sessions, the token naming alice or withholding her: refused.
    for app in (b"db", b"ballot"):
        c = pubkey_login(f, world)
        c.sendall(b"TOKEN " + app + b"\r\n")
        token = recv_line(c)[len(b"+ TOKEN "):-2]
        c.close()
        with connect(f.port) as c:
            c.sendall(b"AUTH token\r\nTOKEN " + token + b"\r\n")
            assert recv_line(c) == b"+ SUCCESS token\r\n"
            assert recv_line(c).startswith(b"+ Authentication as ")
            _, [reply] = multiplexed(c, ("PROVEAUTH", hex_hash))
            assert reply == b"- not permitted: a token does not prove an identity\r\n"
    # Commands count with the session's: 32 in all.
    s, replies = multiplexed(pubkey_login(f, world), *[("GETSIGNKEY", b"")] * 30)
    assert set(replies) == {("+ SIGNKEY %s %s\r\n" % (key, provider)).encode()}
    over = s.open("GETSIGNKEY")
    assert s.wait_rst(over) == (LIMIT, "too many commands")
    s.close()
    f.stop()
    assert [(e["hash"], e["stream"]) for e in f.events("proof_issued")] == [
        (hex_hash.decode(), prove)]
    assert [(e["reason"], e["stream"]) for e in f.events("proof_refused")] == [
        ("invalid hash", bad), ("authentication required", 1)] + [
        ("not permitted: a token does not prove an identity", 1)] * 2
    audit = f.audit.read_text()
    assert name.decode() not in audit and nonce.decode() not in audit


def test_libfive_session_request(fived, world):
    """libfive's five_session_request on a multiplexed session sends its request in the
    OPEN and reads up to the FIN: a command stream as 13.1 describes it."""
    f = start(fived, world)
    key, provider = sign_key(f)
    hex_hash = challenge(secrets.token_hex(16).encode(), b"shop.example").decode()

    def request(command, message):
        return subprocess.run([os.path.join(HELPERS, "libfive_mux"), "127.0.0.1", str(f.port),
                               "request", command, message, "5000"], capture_output=True,
                              timeout=30 * SLOW, env=dict(os.environ, LIBFIVE_TRANSPORT="plain"),
                              ).stdout
    assert request("GETSIGNKEY", "") == ("+ SIGNKEY %s %s\r\n" % (key, provider)).encode()
    assert request("PROVEAUTH", hex_hash) == b"- authentication required\r\n"


def five(world, f, *args):
    argv = ["-p", str(f.port), "--plain", "--key", base64.b64encode(f.server_key()).decode(),
            "-l", "alice", "-i", str(world.keys["alice"])]
    return run_five(*argv, *args, env=world.client_env())


def test_five_prove_and_verify_proof(fived, world, tmp_path):
    f = start(fived, world)
    nonce, name = secrets.token_hex(16), "shop.example"
    r = five(world, f, "prove", "127.0.0.1", "--nonce", nonce, "--consumer", name)
    assert r.returncode == 0, r.stderr
    proof = r.stdout.strip()
    assert b"new signing key 127.0.0.1:%d/sign pinned" % f.port in r.stderr
    key, _ = sign_key(f)
    pins = (tmp_path / "known_hosts").read_text()
    assert "127.0.0.1:%d/sign %s\n" % (f.port, key) in pins
    # An independent consumer accepts what five printed; five verify-proof agrees.
    assert consume(tmp_path, key, proof, nonce.encode(), name.encode()) == (0, "alice")
    verify = ["verify-proof", "--key", key, "--nonce", nonce, "--consumer"]
    r = run_five(*verify, name, proof)
    assert (r.returncode, r.stdout) == (0, b"alice\n"), r.stderr
    (tmp_path / "provider.pub").write_text(" ".join(sign_key(f)) + "\n")
    r = run_five("verify-proof", "--key", str(tmp_path / "provider.pub"), "--nonce", nonce,
                 "--consumer", name, proof)
    assert (r.returncode, r.stdout) == (0, b"alice\n"), r.stderr
    r = run_five(*verify, "bank.example", proof)
    assert r.returncode == 5 and b"wrong consumer or wrong nonce" in r.stderr, r.stderr
    other_key, _ = sign_key(start(fived, world, name="other"))
    r = run_five("verify-proof", "--key", other_key, "--nonce", nonce, "--consumer", name, proof)
    assert r.returncode == 5 and b"another key" in r.stderr, r.stderr
    r = run_five(*verify, name)
    assert r.returncode == 2


def test_five_prove_keeps_to_the_pinned_signing_key(fived, world, tmp_path):
    """A signing key other than the one pinned is refused, as a server key would be."""
    f = start(fived, world)
    other_key, _ = sign_key(start(fived, world, name="other"))
    (tmp_path / "known_hosts").write_text("127.0.0.1:%d/sign %s\n" % (f.port, other_key))
    r = five(world, f, "prove", "127.0.0.1", "--nonce", secrets.token_hex(16), "--consumer",
             "shop.example")
    assert r.returncode == 5 and b"not the one pinned" in r.stderr, r.stderr
    assert r.stdout == b""
