"""The USP dialect (docs/PROTOCOL.md section 8) and tokens (section 9), spoken
byte by byte with uspwire: the flows of 8.4, malformed messages, framing, the
menu, invalidate, and every way a token is refused.  In every error case the
backends (sentinels) receive nothing."""

import base64
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import (FIVED, SANITIZED, SLOW, connect_from, issue_token, recv_all, wait_for)
from fivewire import key_blob, load_key, new_key, parse_proxy_v2, ssh_string
from sealwire import SealedClient
from uspwire import (UspClient, claims, decode_server, encode, footer_kid, from_rfc3339,
                     initialize, invalidate, kid, menu, mint_public, parse_token, password,
                     pubkey, response, rfc3339, signature, tampered, token_message,
                     tokens_of, verify_public)

needs_pam_wrapper = pytest.mark.skipif(SANITIZED, reason="pam_wrapper cannot run under ASan")

T = 10 * SLOW

SERVICES = """
[service:open]
backend = tcp:127.0.0.1:{s}
[service:plainsecret]
backend = tcp:127.0.0.1:{s}
encryption = required
[service:db]
backend = tcp:127.0.0.1:{p}
auth = required
encryption = optional
proxy_protocol = v2
[service:other]
backend = tcp:127.0.0.1:{s}
auth = required
encryption = optional
[service:staff]
backend = tcp:127.0.0.1:{s}
auth = required
encryption = optional
allow = user:bob
[service:vault]
backend = tcp:127.0.0.1:{s}
auth = required
[service:ballot]
backend = tcp:127.0.0.1:{p}
auth = required
encryption = optional
identity = withhold
proxy_protocol = v2
[service:who]
backend = exec:/usr/bin/env
auth = required
encryption = optional
[vhost:alpha.example]
services = db open
[vhost:beta.example]
services = open
"""


def wire(message, sid, csid=None, **members):
    """The exact line fived writes: message, its members in order, then the session ids."""
    msg = {"message": message, **members, "server_session_id": sid}
    if csid is not None:
        msg["client_session_id"] = csid
    return encode(msg)


class Site:
    """A fived with the services above, an echo sentinel (s) and a silent one that
    records PROXY headers (p), and alice's and bob's keys."""

    def __init__(self, fived, world, sentinel, server="", name="fived", request_timeout=5):
        self.fived, self.world = fived, world
        self.s = sentinel("echo")
        self.p = sentinel("silent")
        keys = world.global_keys(['principals="alice" ' + world.public("alice"),
                                  'principals="bob" ' + world.public("bob")])
        self.server = server
        self.config = ("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
                       "authorized_keys = %s\nrequest_timeout = %d\n"
                       "allow_plaintext_pubkey = yes\n%s\n"
                       % (keys, request_timeout, server)
                       + SERVICES.format(s=self.s.port, p=self.p.port))
        self.f = fived(self.config, env=world.fived_env(), name=name)
        self.keys = {u: load_key(world.keys[u]) for u in ("alice", "bob")}

    def another(self, name, server=None):
        """Another fived with the same configuration (and so the same key) if name is the same."""
        return self.fived(self.config if server is None else self.config.replace(
            self.server, server), env=self.world.fived_env(), name=name)

    def client(self, source="127.0.0.1", f=None):
        f = f or self.f
        return UspClient(f.port, source, timeout=T, server_key=f.server_key())

    def untouched(self):
        return self.s.connections == 0 and self.p.connections == 0

    def login(self, *apps, user="alice", source="127.0.0.1", f=None, **kw):
        """Flow 2 with pubkey: (client, token message); the client is AUTHENTICATED."""
        c = self.client(source, f)
        c.send(initialize(*apps, authentication=["pubkey"], **kw))
        c.expect("authenticate", protocol="pubkey")
        sk, pk = self.keys[user]
        return c, c.pubkey_exchange(user, sk, pk)

    def token(self, app="db", user="alice", f=None):
        c, msg = self.login(app, user=user, f=f)
        c.close()
        return tokens_of(msg)[app]


@pytest.fixture
def site(fived, world, sentinel):
    return Site(fived, world, sentinel)


def print_token_key(f):
    out = subprocess.run([FIVED, "--print-token-key", "-c", str(f.conf)], capture_output=True,
                         text=True, check=True).stdout.split()
    return base64.b64decode(out[0], validate=True), out[1]


def server_key(f):
    out = subprocess.run([FIVED, "--print-key", "-c", str(f.conf)], capture_output=True,
                         text=True, check=True).stdout
    return base64.b64decode(out.split()[0], validate=True)


def refused(site, app, token, source="127.0.0.1", f=None):
    """A stream with token on a fresh connection, with pipelined bytes: invalid token."""
    c = site.client(source, f)
    c.send(initialize((app, token)), b"must not arrive")
    c.expect_error("invalid token", application=app)
    c.close()


def connects(site, app, token, data=b"ping", source="127.0.0.1", f=None):
    """Flow 3: one initialize with the token, connect; returns the client, data sent."""
    c = site.client(source, f)
    c.send(initialize((app, token)), data)
    c.expect("connect", application=app)
    assert len(c.messages) == 1
    return c


# --- flow 1 -------------------------------------------------------------------------------


def test_flow1_direct_with_pipelined_bytes(site):
    c = site.client()
    c.send(initialize("open"), b"hello, ", b"world")
    c.shutdown()
    out = c.rest()
    sid = site.f.events("accepted")[-1]["session"]
    assert out == wire("connect", sid, application="open") + b"hello, world"
    wait_for(lambda: site.s.received == [b"hello, world"])
    assert site.f.events("granted")[-1]["service"] == "open"


def test_flow1_messages_after_connect_are_the_applications(site):
    """Once connect is decided, what follows is the application's, even if it looks like USP."""
    c = site.client(source="127.0.0.3")
    later = encode(menu()) + encode(initialize("db", authentication=["pubkey"])) + b"\x00\xff"
    c.send(initialize("Open"), later)
    c.expect("connect")
    c.shutdown()
    assert c.rest() == later
    wait_for(lambda: site.s.received == [later])
    assert site.p.connections == 0 and site.f.events("menu") == []


def test_flow1_bytes_stay_in_order_after_connect(site):
    c = site.client()
    first = os.urandom(30000)
    c.send(initialize("open"), first)
    c.expect("connect", application="open")
    second = os.urandom(50000)
    c.send(second)
    c.shutdown()
    assert c.rest() == first + second
    wait_for(lambda: site.s.received == [first + second])


# --- flow 2 -------------------------------------------------------------------------------


def test_flow2_pubkey_then_token_then_connect(site):
    sk, pk = site.keys["alice"]
    c = site.client()
    c.send(initialize("db", authentication=["password", "kerberos-5", "pubkey", "token"]))
    # password is not usable on a plain connection here: pubkey is the first usable one.
    c.expect("authenticate", protocol="pubkey")
    sid = site.f.events("accepted")[-1]["session"]
    assert c.reader.lines == [wire("authenticate", sid, protocol="pubkey")]
    c.send(pubkey("alice", pk))
    ch = c.expect("challenge", session=sid)
    c.send(signature(sk, ch, "alice", pk, server_key=c.server_key))
    msg = c.expect("token", identity="alice")
    token = tokens_of(msg)["db"]
    assert c.reader.lines[-1] == wire("token", sid, identity="alice",
                                      streams=[{"application": "db", "token": token}])
    # The token: section 9.1's form, signed by this node's token key.
    public, printed_kid = print_token_key(site.f)
    assert footer_kid(token) == printed_kid == kid(public) and len(printed_kid) == 12
    cl = verify_public(token, public)
    assert list(cl) == ["app", "sub", "amr", "iat", "exp", "jti"]
    assert (cl["app"], cl["sub"], cl["amr"]) == ("db", "alice", "pubkey")
    assert from_rfc3339(cl["exp"]) - from_rfc3339(cl["iat"]) == 3600
    assert abs(from_rfc3339(cl["iat"]) - time.time()) < 60
    assert re.fullmatch(r"[0-9a-f]{32}", cl["jti"])
    assert site.untouched()
    # AUTHENTICATED: initialize again with the token.
    c.send(initialize(("db", token)), b"query")
    c.expect("connect")
    assert c.reader.lines[-1] == wire("connect", sid, application="db")
    c.shutdown()
    assert c.rest() == b""
    wait_for(lambda: len(site.p.received) == 1)
    src, _, tlvs, rest = parse_proxy_v2(site.p.received[0])
    assert src == ("127.0.0.1", c.sock.getsockname()[1]) and rest == b"query"
    assert tlvs[0xE0] == b"alice" and tlvs[0xE1] == b"token" and tlvs[0xE2] == b"db"
    assert tlvs[0x05] == sid.encode()
    issued = site.f.events("token_issued")
    assert [(e["service"], e["jti"], e["addr"], e["exp"]) for e in issued] == [
        ("db", cl["jti"], "", from_rfc3339(cl["exp"]))]
    auth = [(e["identity"], e["method"], e.get("amr"), e.get("jti"))
            for e in site.f.events("authenticated")]
    assert auth == [("alice", "pubkey", None, None), ("alice", "token", "pubkey", cl["jti"])]


def test_flow2_identity_reaches_a_program(site):
    c, msg = site.login("who")
    c.send(initialize(("who", tokens_of(msg)["who"])))
    c.expect("connect", application="who")
    c.shutdown()
    env = dict(line.split("=", 1) for line in c.rest().decode().splitlines())
    assert env["FIVE_IDENTITY"] == env["TCPREMOTEINFO"] == "alice"
    assert env["FIVE_AUTH_METHOD"] == "token" and env["FIVE_SERVICE"] == "who"
    assert env["FIVE_SESSION_ID"] == c.session_id


def test_a_program_behind_a_withheld_identity_learns_none(fived, world, sentinel):
    """identity = withhold holds for a program reached through USP as through text."""
    site = Site(fived, world, sentinel, server="[service:hidden]\nbackend = exec:/usr/bin/env\n"
                "auth = required\nencryption = optional\nidentity = withhold\n")
    c, msg = site.login("hidden")
    c.send(initialize(("hidden", tokens_of(msg)["hidden"])))
    c.expect("connect", application="hidden")
    c.shutdown()
    env = dict(line.split("=", 1) for line in c.rest().decode().splitlines())
    assert env["FIVE_SERVICE"] == "hidden" and env["FIVE_AUTH_METHOD"] == "token"
    assert not {"FIVE_IDENTITY", "TCPREMOTEINFO", "TCPREMOTEIP"} & set(env), env


@needs_pam_wrapper
def test_flow2_password_through_pam(fived, world, sentinel):
    site = Site(fived, world, sentinel, server="allow_plaintext_password = yes")
    c = site.client()
    c.send(initialize("who", authentication=["password", "pubkey"], client_session_id="pw-1"))
    c.expect("authenticate", protocol="password")
    c.send(password("bob"))
    assert c.reader.buf == b""
    c.expect("prompt", kind="echo-off", text="Password: ")
    assert c.reader.lines[-1] == wire("prompt", c.session_id, "pw-1", kind="echo-off",
                                      text="Password: ")
    c.send(response(b"builder"))
    token = tokens_of(c.expect("token", identity="bob"))["who"]
    assert claims(token)["amr"] == "password"
    c.send(initialize(("who", token)))
    c.expect("connect", application="who")
    c.shutdown()
    env = dict(line.split("=", 1) for line in c.rest().decode().splitlines())
    assert env["FIVE_IDENTITY"] == "bob" and env["FIVE_AUTH_METHOD"] == "token"
    # A wrong password: error, close, nothing delivered.
    c = site.client()
    c.send(initialize("db", authentication=["password"]))
    c.expect("authenticate", protocol="password")
    c.send(password("bob"))
    c.expect("prompt", kind="echo-off")
    c.send(response(b"wrong"), encode(initialize("db")), b"stolen")
    c.expect_error("authentication failed", application="db")
    assert site.untouched()
    assert [(e["method"], e["user"]) for e in site.f.events("auth_failed")] == [
        ("password", "bob")]


# --- flow 3 -------------------------------------------------------------------------------


def test_flow3_token_on_a_fresh_connection(site):
    token = site.token("db")
    c = site.client()
    c.send(initialize(("db", token)), b"two messages")
    sid = c.recv()["server_session_id"]
    assert c.reader.lines == [wire("connect", sid, application="db")]
    c.shutdown()
    assert c.rest() == b""
    wait_for(lambda: len(site.p.received) == 1)
    _, _, tlvs, rest = parse_proxy_v2(site.p.received[0])
    assert rest == b"two messages" and tlvs[0xE0] == b"alice" and tlvs[0xE1] == b"token"
    # The same token again, from yet another connection: a token is not used up.
    c = connects(site, "db", token)
    c.close()
    # Application names are case-insensitive.
    c = site.client()
    c.send(initialize(("DB", token)))
    c.expect("connect")
    c.close()
    wait_for(lambda: len(site.p.received) == 3)


def test_flow3_tokens_cross_dialects(site, world):
    # A token from the text dialect's TOKEN, used in USP.
    token = issue_token(site.f, world).decode()
    c = connects(site, "db", token, b"from text")
    c.shutdown()
    c.rest()
    # A token from USP, used in the text dialect: SERVICE TOKEN.
    usp_token = site.token("other")
    t = connect_from(site.f.port, "127.0.0.1")
    t.sendall(b"other " + usp_token.encode() + b"\r\nto usp")
    t.shutdown(socket.SHUT_WR)
    assert recv_all(t) == b"+\r\nto usp"
    t.close()
    # And with AUTH token.
    t = connect_from(site.f.port, "127.0.0.1")
    t.sendall(b"AUTH token\r\nTOKEN " + usp_token.encode() + b"\r\nother\r\nagain")
    t.shutdown(socket.SHUT_WR)
    assert recv_all(t) == (b"+ SUCCESS token\r\n+ Authentication as alice successful\r\n"
                           b"+\r\nagain")
    t.close()
    wait_for(lambda: len(site.p.received) == 1 and len(site.s.received) == 2)
    assert sorted(site.s.received) == [b"again", b"to usp"]


def test_token_authentication_protocol(site):
    token = site.token("db")
    c = site.client()
    c.send(initialize("db", "other", "open", authentication=["token"]))
    c.expect("authenticate", protocol="token")
    c.send(token_message(token))
    msg = c.expect("token", identity="alice")
    # The token authenticates for its own application only; a token issues no other token,
    # and lends itself to no other application.
    assert msg["streams"] == [{"application": "db", "token": token},
                              {"application": "other", "error": "unknown application"},
                              {"application": "open", "error": "no token needed"}]
    c.send(initialize("open", "db"))
    assert c.expect("token")["streams"] == [{"application": "db", "token": token}]
    c.expect("connect", application="open")
    c.close()
    c = site.client()
    c.send(initialize("db", authentication=["token"]))
    c.expect("authenticate", protocol="token")
    c.send(token_message(token))
    c.expect("token")
    c.send(initialize("db"), b"by token")
    c.expect("connect", application="db")
    c.shutdown()
    c.rest()
    wait_for(lambda: len(site.p.received) == 1)
    assert parse_proxy_v2(site.p.received[0])[2][0xE1] == b"token"
    wait_for(lambda: len(site.s.received) == 1)
    assert site.s.received == [b""]


def test_token_authentication_with_a_withheld_identity(site):
    token = site.token("ballot")
    assert "sub" not in claims(token)
    c = site.client()
    c.send(initialize("ballot", authentication=["token"]))
    c.expect("authenticate", protocol="token")
    c.send(token_message(token))
    msg = c.expect("token")
    assert "identity" not in msg and tokens_of(msg) == {"ballot": token}
    c.send(initialize("ballot"), b"secret vote")
    c.expect("connect", application="ballot")
    c.shutdown()
    c.rest()
    wait_for(lambda: len(site.p.received) == 1)
    src, _, tlvs, rest = parse_proxy_v2(site.p.received[0])
    assert src is None and 0xE0 not in tlvs and rest == b"secret vote"


# --- flows 4 to 6 -------------------------------------------------------------------------


def test_flow4_no_shared_protocol(site):
    for offered in (["password"], ["external", "kerberos"], ["password", "external"]):
        c = site.client()
        c.send(initialize("db", authentication=offered), b"pipelined")
        sid = c.recv()["server_session_id"]
        assert c.reader.lines == [wire("error", sid, error="no common authentication protocol",
                                       application="db", supported=["pubkey", "token"])]
        c.expect_closed()
    assert site.untouched()


def test_flow2_when_a_later_stream_needs_authentication(site):
    """Flow 2 begins when some stream needs authentication, not only the first."""
    c = site.client()
    c.send(initialize("open", "db", authentication=["pubkey"]))
    c.expect("authenticate", protocol="pubkey")
    sk, pk = site.keys["alice"]
    t = tokens_of(c.pubkey_exchange("alice", sk, pk))
    assert claims(t["open"])["app"] == "open" and claims(t["db"])["app"] == "db"
    c.send(initialize("open", ("db", t["db"])), b"first")
    assert c.expect("token")["streams"] == [{"application": "db", "token": t["db"]}]
    c.expect("connect", application="open")
    c.shutdown()
    assert c.rest() == b"first"
    # Offered none that can be used: flow 4, though the first stream is open to all.
    c = site.client()
    c.send(initialize("open", "db", authentication=["password"]), b"x")
    c.expect_error("no common authentication protocol", supported=["pubkey", "token"])
    # Offered none at all: the first stream is carried, the other is told what it needs.
    c = site.client()
    c.send(initialize("open", "db"), b"second")
    assert c.expect("token")["streams"] == [
        {"application": "db", "error": "authentication required"}]
    c.expect("connect", application="open")
    c.shutdown()
    assert c.rest() == b"second"
    assert site.p.connections == 0


def test_flow4_only_unknown_protocols_offered(site):
    c = site.client()
    c.send(initialize("db", authentication=["kerberos"]), b"x")
    c.expect_error("no common authentication protocol", application="db",
                   supported=["pubkey", "token"])
    assert site.untouched()


def test_flow5_authentication_failures(site):
    sk, pk = site.keys["alice"]
    _, stranger = new_key()

    def attempt(source, steps):
        c = site.client(source)
        c.send(initialize("db", authentication=["pubkey"]))
        c.expect("authenticate", protocol="pubkey")
        started = time.monotonic()
        steps(c)
        c.expect_error("authentication failed", application="db")
        return time.monotonic() - started

    def bad_signature(c):
        c.send(pubkey("alice", pk))
        ch = c.expect("challenge")
        ch["session"] = "0" * 32
        c.send(signature(sk, ch, "alice", pk, server_key=c.server_key), encode(initialize("db")), b"stolen")

    def unknown_key(c):
        c.send(pubkey("alice", stranger), b"stolen")     # no challenge: refused at once

    def wrong_kind(c):
        c.send(password("alice"), b"stolen")

    def initialize_again(c):
        c.send(pubkey("alice", pk))
        c.expect("challenge")
        c.send(initialize("db"), b"stolen")

    delays = [attempt("127.0.0.%d" % (i + 2), step) for i, step in
              enumerate((bad_signature, unknown_key, wrong_kind, initialize_again))]
    # The failure reply waits as the text dialect's does: 250 ms after a first failure.
    assert all(d >= 0.2 for d in delays), delays
    assert [e["reason"] for e in site.f.events("auth_failed")] == [
        "bad signature", "key not authorized", "USER without a key", "message out of turn"]
    assert site.untouched()


def test_flow6_refusals(site):
    cases = [
        (initialize("db"), "unknown application", "db"),              # no protocol offered
        (initialize("db", authentication=[]), "unknown application", "db"),
        (initialize("nosuch"), "unknown application", "nosuch"),
        (initialize("plainsecret"), "encryption required", "plainsecret"),
        (initialize(("db", "v4.public.AAAA")), "invalid token", "db"),
    ]
    for msg, error, app in cases:
        c = site.client()
        c.send(msg, b"pipelined bytes")
        sid = c.recv()["server_session_id"]
        assert c.reader.lines == [wire("error", sid, error=error, application=app)], msg
        c.expect_closed()
    # Authenticated: not permitted, encryption required, unknown.
    c, tokens = site.login("db", "staff", "vault", "nosuch")
    assert tokens["streams"] == [
        {"application": "db", "token": tokens_of(tokens)["db"]},
        {"application": "staff", "error": "not permitted"},
        {"application": "vault", "error": "encryption required"},
        {"application": "nosuch", "error": "unknown application"}]
    c.close()
    for app, error in (("staff", "not permitted"), ("vault", "encryption required"),
                       ("nosuch", "unknown application")):
        c, _ = site.login("db")
        c.send(initialize(app), b"pipelined bytes")
        c.expect_error(error, application=app)
    # A stream that needs authentication and does not exist looks like one that exists.
    c = site.client()
    c.send(initialize("nosuch", authentication=["pubkey"]))
    c.expect("authenticate", protocol="pubkey")
    c.close()
    assert site.untouched()
    assert [e["reason"] for e in site.f.events("refused")] == [
        "unknown service", "unknown service", "unknown service", "encryption required",
        "invalid token", "not permitted", "encryption required", "unknown application"]


# --- flow 7 -------------------------------------------------------------------------------


STREAM_TOKEN = "v4.public.AAAA"
MALFORMED = [
    (b'{"message":"menu"', "not JSON"),
    (b'{hello}', "not JSON"),
    (b'{"message":"menu"} {}', "not JSON"),
    (b'{}', "message"),
    (b'{"message":5}', "message"),
    (b'{"message":"hello"}', "unknown message"),
    (b'{"message":"MENU"}', "unknown message"),
    (b'{"message":"menu","extra":1}', "unknown member"),
    (b'{"message":"initialize","streams":[{"application":"open","x":""}]}', "unknown member"),
    (b'{"message":"menu","message":"menu"}', "duplicate"),
    (b'{"message":"initialize","streams":[{"application":"open","application":"db"}]}',
     "duplicate"),
    (b'{"message":"initialize","streams":"open"}', "streams"),
    (b'{"message":"initialize","streams":[]}', "streams"),
    (b'{"message":"initialize","streams":[' + b",".join([b'{"application":"open"}'] * 9)
     + b']}', "streams"),
    (b'{"message":"initialize","streams":[{"application":5}]}', "application"),
    (b'{"message":"initialize","streams":[{"application":"-open"}]}', "application"),
    (b'{"message":"initialize","streams":[{"application":"' + b"a" * 65 + b'"}]}',
     "application"),
    (b'{"message":"initialize","streams":["open"]}', "streams"),
    (b'{"message":"initialize","streams":[{"application":"open","token":"x"}]}', "token"),
    (b'{"message":"initialize","streams":[{"application":"open"}],"authentication":"pubkey"}',
     "authentication"),
    (b'{"message":"initialize","streams":[{"application":"open"}],"authentication":["PubKey"]}',
     "authentication"),
    (b'{"message":"initialize","streams":[{"application":"open"}],"authentication":[1]}',
     "authentication"),
    (b'{"message":"initialize","streams":[{"application":"open"}],"authentication":['
     + b",".join([b'"pubkey"'] * 9) + b"]}", "authentication"),
    (b'{"message":"initialize","streams":[{"application":"open"}],"client_session_id":"a b"}',
     "client_session_id"),
    (b'{"message":"menu","client_session_id":"' + b"a" * 65 + b'"}', "client_session_id"),
    (b'{"message":"menu","client_session_id":""}', "client_session_id"),
    (b'{"message":"menu","vhost":null}', "vhost"),
    (b'{"message":"menu","vhost":true}', "vhost"),
    (b'{"message":"invalidate","tokens":[]}', "tokens"),
    (b'{"message":"invalidate","tokens":[' + b",".join([b'"%s"' % STREAM_TOKEN.encode()] * 17)
     + b"]}", "tokens"),
    (b'{"message":"invalidate"}', "tokens"),
    (b'{"message":"menu","vhost":[[[[[[["x"]]]]]]]}', "nest"),
    (b'{"message":"menu","vhost":[[[[[["x"]]]]]]}', "vhost"),  # 7 levels: only the type is wrong
    (b'{"message":"menu","vhost":"\xff"}', "utf-8"),
    (b'{"message":"menu"}\x00', "nul"),
    (b'{"message":"me\x00nu"}', "nul"),
    (b'{"message":"menu","vhost":"a\\u0000b"}', "nul"),
    # Messages of an authentication exchange, outside one.
    (encode({"message": "signature", "signature": base64.b64encode(
        ssh_string(b"ssh-ed25519") + ssh_string(bytes(64))).decode()})[:-1], ""),
    (encode({"message": "pubkey", "user": "alice", "key": base64.b64encode(
        key_blob(bytes(32))).decode()})[:-1], ""),
    (b'{"message":"token","token":"v4.public.AAAA"}', ""),
    (b'{"message":"password","user":"alice"}', ""),
    (b'{"message":"response","response":"eA=="}', ""),
]


@pytest.mark.parametrize("line,what", MALFORMED, ids=range(len(MALFORMED)))
def test_flow7_malformed(site, line, what):
    c = site.client()
    c.send(line + b"\n", encode(initialize("open")), b"pipelined")
    msg = c.recv()
    assert msg["message"] == "error" and msg["error"].startswith("malformed message: "), msg
    assert what.lower() in msg["error"].lower(), msg
    assert list(msg) == ["message", "error", "server_session_id"]
    c.expect_closed()
    assert site.untouched()
    assert site.f.events("refused")[-1]["reason"] == "malformed message"


def test_flow7_malformed_echoes_the_client_session_id(site):
    """8.3: once the client has sent a client_session_id, every server message echoes it;
    a message refused for another member has still sent it."""
    c = site.client()
    c.send({"message": "initialize", "streams": [{"application": "open"}],
            "client_session_id": "c7", "bogus": 1})
    msg = c.expect("error")
    assert msg["error"] == 'malformed message: unknown member "bogus"', msg
    assert msg["client_session_id"] == "c7"
    c.expect_closed()
    assert site.untouched()


def test_flow7_malformed_in_other_states(site):
    sk, pk = site.keys["alice"]
    # AUTHENTICATED is START again: a signature is out of place.
    c, _ = site.login("db")
    c.send(signature(sk, {"session": "0" * 32, "nonce": base64.b64encode(bytes(32)).decode()},
                     "alice", pk))
    msg = c.expect("error")
    assert msg["error"].startswith("malformed message: ")
    c.expect_closed()
    # During the exchange: malformed JSON, a bad key blob, a bad name.
    for bad in (b'{"message":"pubkey"\n', encode({"message": "pubkey", "user": "alice",
                                                  "key": "AAAA"}),
                encode({"message": "pubkey", "user": "-x", "key": pubkey("a", pk)["key"]}),
                encode({"message": "signature", "signature": "not base64"})):
        c = site.client()
        c.send(initialize("db", authentication=["pubkey"]))
        c.expect("authenticate")
        c.send(bad, encode(initialize("db")), b"x")
        msg = c.expect("error")
        assert msg["error"].startswith("malformed message: "), msg
        c.expect_closed()
    # A message that is not an object, after a first that was one.
    c = site.client()
    c.send(encode(menu()), b'["menu"]\n', b'"menu"\n')
    c.expect("menu")
    msg = c.expect("error")
    assert msg["error"].startswith("malformed message: ")
    c.expect_closed()
    assert site.untouched()


def test_flow7_size_limit(site):
    # Exactly 65536 bytes with the LF: a message; one more byte: too long.
    head, tail = b'{"message":"menu"', b"}\n"
    fits = head + b" " * (65536 - len(head) - len(tail)) + tail
    assert len(fits) == 65536
    c = site.client()
    c.send(fits)
    c.expect("menu")
    c.send(fits[:-2] + b" " + fits[-2:])
    msg = c.expect("error")
    assert msg["error"].startswith("malformed message: "), msg
    c.expect_closed()
    # A long run without any LF is refused without waiting for one.
    c = site.client()
    c.send(b'{"message":"initialize","streams":[{"application":"open"}]' + b" " * 70000)
    msg = c.expect("error")
    assert msg["error"].startswith("malformed message: ")
    c.expect_closed()
    assert site.untouched()


def test_message_count_limit(site):
    c = site.client()
    c.send(encode(menu()) * 33 + encode(initialize("open")) + b"x")
    for _ in range(32):
        c.expect("menu")
    c.expect_error("too many messages")
    assert site.untouched()


def test_timeouts(fived, world, sentinel):
    site = Site(fived, world, sentinel, server="auth_timeout = 2", request_timeout=3)
    sk, pk = site.keys["alice"]
    c = site.client()
    c.send(menu())
    c.expect("menu")
    started = time.monotonic()
    c.expect_error("request timeout")
    assert 2.5 < time.monotonic() - started < 5 * SLOW
    c = site.client()
    c.send(initialize("db", authentication=["pubkey"]))
    c.expect("authenticate")
    c.expect_error("authentication timeout", application="db")
    # The request timeout counts again from the end of an authentication.
    c = site.client()
    c.send(initialize("db", authentication=["pubkey"]))
    c.expect("authenticate")
    time.sleep(1.0)
    token = tokens_of(c.pubkey_exchange("alice", sk, pk))["db"]
    time.sleep(2.4)
    c.send(initialize(("db", token)))
    c.expect("connect", application="db")
    c.close()
    wait_for(lambda: len(site.p.received) == 1)
    assert [e["reason"] for e in site.f.events("refused")] == [
        "request timeout", "authentication timeout"]


# --- framing ------------------------------------------------------------------------------


def test_framing_byte_by_byte(site):
    c = site.client()
    data = encode(initialize("open", client_session_id="slow-1")) + b"drip"
    c.sent_id = "slow-1"
    c.send_slowly(data, 1)
    c.expect("connect", application="open")
    c.shutdown()
    assert c.rest() == b"drip"
    # Authentication, byte by byte.
    sk, pk = site.keys["alice"]
    c = site.client()
    c.send_slowly(encode(initialize("db", authentication=["pubkey"])), 3)
    c.expect("authenticate", protocol="pubkey")
    c.send_slowly(encode(pubkey("alice", pk)), 1)
    ch = c.expect("challenge")
    c.send_slowly(encode(signature(sk, ch, "alice", pk, server_key=c.server_key)), 7)
    assert "db" in tokens_of(c.expect("token"))
    c.close()
    wait_for(lambda: len(site.s.received) == 1)
    assert site.s.received == [b"drip"]


def test_framing_several_messages_in_one_write(site):
    c = site.client()
    c.send(encode(menu()) + encode(menu(), crlf=True) + encode(initialize("open"), crlf=True)
           + b"after")
    first = c.expect("menu")
    assert c.expect("menu") == first
    c.expect("connect", application="open")
    c.shutdown()
    assert c.rest() == b"after"
    # A message split across writes, the next one in the same write as its end.
    c = site.client()
    data = encode(menu()) + encode(initialize("open")) + b"tail"
    c.send(data[:10])
    time.sleep(0.05)
    c.send(data[10:30])
    time.sleep(0.05)
    c.send(data[30:])
    c.expect("menu")
    c.expect("connect", application="open")
    c.shutdown()
    assert c.rest() == b"tail"


# --- menu and session ids -----------------------------------------------------------------


def test_menu(site):
    c = site.client()
    c.send(menu())
    sid = c.recv()["server_session_id"]
    assert c.reader.lines == [wire("menu", sid, applications=[
        {"application": "open", "requires": []},
        {"application": "plainsecret", "requires": ["encryption"]}])]
    # Authenticated: the applications alice may use, in configuration order; not bob's staff.
    c, _ = site.login("db")
    c.send(menu())
    assert c.expect("menu")["applications"] == [
        {"application": a, "requires": r} for a, r in (
            ("open", []), ("plainsecret", ["encryption"]), ("db", []), ("other", []),
            ("vault", ["encryption"]), ("ballot", []), ("who", []))]
    c.close()
    c, _ = site.login("db", user="bob")
    c.send(menu())
    assert "staff" in [a["application"] for a in c.expect("menu")["applications"]]
    # A vhost shows its own services.
    c = site.client()
    c.send(menu(vhost="Alpha.Example"))
    assert c.expect("menu")["applications"] == [{"application": "open", "requires": []}]
    assert len(site.f.events("menu")) == 4
    assert site.untouched()


def test_client_session_id_is_echoed_and_logged(site):
    sk, pk = site.keys["alice"]
    c = site.client()
    c.send(menu(client_session_id="trace:1.a_b-C"))
    c.expect("menu")
    assert c.reader.lines[-1].endswith(b',"client_session_id":"trace:1.a_b-C"}\n')
    c.send(initialize("db", authentication=["pubkey"]))   # no id: the last one is still echoed
    c.expect("authenticate")
    c.send(pubkey("alice", pk))
    ch = c.expect("challenge")
    c.send(signature(sk, ch, "alice", pk, server_key=c.server_key))
    token = tokens_of(c.expect("token"))["db"]
    c.send(initialize(("db", token), client_session_id="trace:2"))
    c.expect("connect")
    assert all(b'"client_session_id":"trace:' in line for line in c.reader.lines)
    assert len(c.reader.lines) == 5
    c.close()
    usp = site.f.events("usp")
    assert [(e["client_session_id"], e["session"]) for e in usp] == [
        ("trace:1.a_b-C", c.session_id), ("trace:2", c.session_id)]
    # Errors carry it too.
    c = site.client()
    c.send(initialize("nosuch", client_session_id="e"))
    c.expect_error("unknown application")
    assert c.reader.lines[-1].endswith(b',"client_session_id":"e"}\n')


def test_vhost(site):
    c, msg = site.login("db", vhost="alpha.example")
    token = tokens_of(msg)["db"]
    assert claims(token)["vhost"] == "alpha.example"
    # The vhost cannot change on the connection.
    c.send(menu(vhost="beta.example"))
    msg = c.expect("error")
    assert msg["error"].startswith("malformed message: ")
    c.expect_closed()
    c = site.client()
    c.send(menu(vhost="gamma.example"))
    c.expect_error("unknown host")
    # The token is for that vhost only.
    refused(site, "db", token)
    c = site.client()
    c.send(initialize(("db", token), vhost="alpha.example"))
    c.expect("connect", application="db")
    c.close()
    assert [e["reason"] for e in site.f.events("token_refused")] == ["for another vhost"]


# --- invalidate ---------------------------------------------------------------------------


def test_invalidate_and_its_persistence(site, tmp_path):
    c, msg = site.login("db", "other", "ballot")
    t = tokens_of(msg)
    c.close()
    kept = site.token("db")
    foreign = site.token("db", f=site.another("elsewhere"))
    short = issue_token(site.f, site.world, b"TOKEN db - 2").decode()
    c = site.client()       # no authentication: holding a token is the right to give it up
    c.send(invalidate(t["db"], t["other"], t["db"], foreign, "v4.public.AAAA", short,
                      client_session_id="inv"))
    sid = c.recv()["server_session_id"]
    assert c.reader.lines == [wire("invalidated", sid, "inv", count=3)]
    c.send(invalidate(t["db"]))
    c.expect("invalidated", count=0)
    c.send(initialize(("db", t["db"])), b"revoked")
    c.expect_error("invalid token", application="db")
    refused(site, "other", t["other"])
    listed = [t["db"], t["other"], short]
    assert [(e["service"], e["jti"]) for e in site.f.events("token_revoked")] == [
        (claims(x)["app"], claims(x)["jti"]) for x in listed]
    # The file's lines are in no particular order.
    revoked = sorted((tmp_path / "fived-revoked").read_text().splitlines())
    assert revoked == sorted("%s %d" % (claims(x)["jti"], from_rfc3339(claims(x)["exp"]))
                             for x in listed)
    # Across a restart with the same key file: still revoked, the others still good; the
    # file is rewritten without what has expired.
    wait_for(lambda: time.time() > from_rfc3339(claims(short)["exp"]) + 0.1, 4,
             "the short token to expire")
    site.f.stop()
    site.f = site.another("fived")
    refused(site, "db", t["db"])
    connects(site, "db", kept).close()
    connects(site, "ballot", t["ballot"]).close()
    reasons = [e["reason"] for e in site.f.events("token_refused")]
    assert reasons == ["revoked", "revoked", "revoked"]
    assert sorted((tmp_path / "fived-revoked").read_text().splitlines()) == sorted(
        "%s %d" % (claims(x)["jti"], from_rfc3339(claims(x)["exp"])) for x in listed[:2])
    wait_for(lambda: len(site.p.received) == 2)
    assert site.s.connections == 0


# --- token refusals -----------------------------------------------------------------------


def test_token_refusals(site, world):
    token = site.token("db")
    short = issue_token(site.f, world, b"TOKEN db - 1").decode()
    elsewhere = site.token("db", f=site.another("other"))
    bound = issue_token(site.f, world, b"TOKEN db 127.0.0.2").decode()
    revoked = site.token("db")
    c = site.client()
    c.send(invalidate(revoked))
    c.expect("invalidated", count=1)
    c.close()
    assert claims(bound)["addr"] == "127.0.0.2"
    assert site.untouched()
    time.sleep(2.2)
    cases = [(tampered(token), "db", "bad signature"),
             (short, "db", "expired"),
             (elsewhere, "db", "unknown key"),
             (bound, "db", "bound to another address"),
             (revoked, "db", "revoked"),
             (token, "other", "for another service"),
             (token.replace("v4.public.", "v4.local."), "db", None),
             ("v4.public.AAAA", "db", "malformed token")]
    for bad, app, _ in cases:
        refused(site, app, bad)
    assert site.untouched()
    got = [(e["service"], e["reason"]) for e in site.f.events("token_refused")]
    assert len(got) == len(cases) and got[6][1]    # a public token read as local: not opened
    assert [g for i, g in enumerate(got) if i != 6] == [(app, why) for _, app, why in cases
                                                           if why]
    # The bound token works from its own address; the good one still works.
    connects(site, "db", bound, source="127.0.0.2").close()
    connects(site, "db", token).close()
    wait_for(lambda: len(site.p.received) == 2)
    assert parse_proxy_v2(site.p.received[0])[0][0] in ("127.0.0.2", "127.0.0.1")


def test_token_policy_is_checked_again(site, world):
    token = site.token("db")
    db = "[service:db]\nbackend = tcp:127.0.0.1:%d\n" % site.p.port
    site.f.reload(site.config.replace(db, db + "deny = user:alice\n"))
    refused(site, "db", token)
    # key: entries never match a token's caller, though alice's key would.
    site.f.reload(site.config.replace(db, db + "allow = key:%s\n" % world.fingerprint("alice")))
    refused(site, "db", token)
    site.f.reload(site.config)
    connects(site, "db", token).close()
    assert [e["reason"] for e in site.f.events("token_refused")] == ["not permitted now"] * 2
    wait_for(lambda: len(site.p.received) == 1)


def test_minted_tokens_of_a_trusted_key(fived, world, sentinel, tmp_path):
    """Tokens this client makes itself with a key fived trusts: section 9.1's format and
    9.3's checks, independently of fived's own issuing."""
    sk, pk = new_key()
    trusted = tmp_path / "trusted"
    trusted.write_text("%s minter@test\n" % base64.b64encode(pk).decode())
    site = Site(fived, world, sentinel, server="token_trusted_keys = %s" % trusted)
    now = int(time.time())

    def claims_(**over):
        c = {"app": "db", "sub": "zed", "amr": "pubkey", "iat": rfc3339(now - 5),
             "exp": rfc3339(now + 600), "jti": os.urandom(16).hex()}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    good = mint_public(sk, pk, claims_()).decode()
    c = connects(site, "db", good, b"minted")
    c.shutdown()
    c.rest()
    wait_for(lambda: len(site.p.received) == 1)
    assert parse_proxy_v2(site.p.received[0])[2][0xE0] == b"zed"
    # Any order of claims, an address prefix.
    shuffled = dict(reversed(list(claims_(addr="127.0.0.0/8").items())))
    connects(site, "db", mint_public(sk, pk, shuffled).decode()).close()
    bad = [
        mint_public(sk, pk, claims_(), implicit=b"another-assertion"),
        mint_public(sk, pk, claims_(), footer=b'{"kid": "%s"}' % kid(pk).encode()),
        mint_public(sk, pk, claims_(), footer=b""),
        mint_public(sk, pk, claims_(iat=rfc3339(now + 300))),
        mint_public(sk, pk, claims_(exp=rfc3339(now - 1))),
        mint_public(sk, pk, claims_(vhost="alpha.example")),
        mint_public(sk, pk, claims_(addr="10.0.0.0/8")),
        mint_public(sk, pk, claims_(app="other")),
        mint_public(sk, pk, claims_(jti="XYZ")),
        mint_public(sk, pk, claims_(iat="yesterday")),
        mint_public(sk, pk, claims_(amr=None)),
        mint_public(sk, pk, dict(claims_(), extra="x")),
    ]
    for token in bad:
        refused(site, "db", token.decode())
    reasons = [e["reason"] for e in site.f.events("token_refused")]
    assert reasons == ["bad signature", "malformed token", "malformed token", "not yet valid",
                       "expired", "for another vhost", "bound to another address",
                       "for another service"] + ["malformed claims"] * 4
    assert site.p.connections == 2 and site.s.connections == 0


# --- several streams ----------------------------------------------------------------------


def test_several_streams(site):
    # Unauthenticated: the first is granted, the others get what they need.
    c = site.client()
    c.send(initialize("open", "plainsecret", "db", "nosuch", ("other", "v4.public.AAAA")),
           b"first")
    sid = c.recv()["server_session_id"]
    c.expect("connect", application="open")
    assert c.reader.lines == [
        wire("token", sid, streams=[
            {"application": "plainsecret", "error": "encryption required"},
            {"application": "db", "error": "authentication required"},
            {"application": "nosuch", "error": "authentication required"},
            {"application": "other", "error": "invalid token"}]),
        wire("connect", sid, application="open")]
    c.shutdown()
    assert c.rest() == b"first"
    # Authenticated: tokens for the others, then connect for the first.
    c, msg = site.login("db", "other", "open")
    t = tokens_of(msg)
    c.send(initialize(("db", t["db"]), ("other", t["other"]), "open", "staff"), b"to db")
    m = c.expect("token", identity="alice")
    assert m["streams"][0] == {"application": "other", "token": t["other"]}
    assert m["streams"][2] == {"application": "staff", "error": "not permitted"}
    fresh = m["streams"][1]["token"]
    assert claims(fresh)["app"] == "open" and fresh != t["open"]
    c.expect("connect", application="db")
    c.shutdown()
    c.rest()
    # The tokens work on connections of their own.
    c = connects(site, "other", t["other"], b"second")
    c.shutdown()
    assert c.rest() == b"second"
    c = connects(site, "open", fresh, b"third")
    c.shutdown()
    assert c.rest() == b"third"
    wait_for(lambda: len(site.p.received) == 1)
    assert parse_proxy_v2(site.p.received[0])[3] == b"to db"


# --- inside a sealed session --------------------------------------------------------------


class SealedUsp:
    """USP messages over SealedClient's records."""

    def __init__(self, c):
        self.c = c
        self.sent_id = None

    def send(self, *items):
        self.c.send(b"".join(encode(i) if isinstance(i, dict) else i for i in items))

    def expect(self, message, **members):
        msg = decode_server(self.c.recv_line(), self.sent_id)
        assert msg["message"] == message, msg
        for k, v in members.items():
            assert msg.get(k) == v, (k, msg)
        return msg


def test_usp_in_a_sealed_session(site):
    key = server_key(site.f)
    early = encode(initialize("plainsecret")) + b"sealed hello"
    with SealedClient(site.f.port, key, early=early, timeout=T) as c:
        u = SealedUsp(c)
        u.expect("connect", application="plainsecret")
        assert c.recv_until(b"sealed hello") == b"sealed hello"
        c.close_write()
        assert c.recv_all() == b""
    # pubkey inside: the channel binding is signed; vault needs encryption, which this is.
    sk, pk = site.keys["alice"]
    with SealedClient(site.f.port, None, early=encode(menu()), timeout=T) as c:
        u = SealedUsp(c)
        apps = u.expect("menu")["applications"]
        assert {"application": "plainsecret", "requires": []} in apps
        u.send(initialize("vault", authentication=["pubkey"]))
        u.expect("authenticate", protocol="pubkey")
        u.send(pubkey("alice", pk))
        ch = u.expect("challenge")
        u.send(signature(sk, ch, "alice", pk, c.handshake_hash))
        token = tokens_of(u.expect("token", identity="alice"))["vault"]
        u.send(initialize(("vault", token)), b"in the vault")
        u.expect("connect", application="vault")
        assert c.recv_until(b"in the vault") == b"in the vault"
        c.close_write()
        assert c.recv_all() == b""
    # Encrypted, password needs no permission: the client's first choice is taken.
    with SealedClient(site.f.port, key, early=encode(initialize("db", authentication=[
            "password", "pubkey"])), timeout=T) as c:
        SealedUsp(c).expect("authenticate", protocol="password")
    # A signature without the channel binding fails inside a sealed session.
    with SealedClient(site.f.port, key, early=encode(initialize("db", authentication=[
            "pubkey"])), timeout=T) as c:
        u = SealedUsp(c)
        u.expect("authenticate", protocol="pubkey")
        u.send(pubkey("alice", pk))
        ch = u.expect("challenge")
        u.send(signature(sk, ch, "alice", pk), encode(initialize("db")), b"x")
        u.expect("error", error="authentication failed")
    # The vault token does not open the vault on a plain connection.
    c = site.client()
    c.send(initialize(("vault", token)), b"x")
    c.expect_error("encryption required", application="vault")
    wait_for(lambda: len(site.s.received) == 2)
    assert sorted(site.s.received) == [b"in the vault", b"sealed hello"]
    assert site.p.connections == 0


# --- v4.local -----------------------------------------------------------------------------


def test_local_tokens(fived, world, sentinel):
    site = Site(fived, world, sentinel, server="token_format = local")
    c, msg = site.login("db", "other")
    t = tokens_of(msg)
    c.close()
    header, body, footer = parse_token(t["db"])
    public, printed_kid = print_token_key(site.f)
    assert header == b"v4.local." and footer_kid(t["db"]) == printed_kid
    assert b"alice" not in body and b"db" not in body
    c = connects(site, "db", t["db"], b"opaque")
    c.shutdown()
    c.rest()
    wait_for(lambda: len(site.p.received) == 1)
    assert parse_proxy_v2(site.p.received[0])[2][0xE0] == b"alice"
    refused(site, "db", t["other"])
    refused(site, "db", tampered(t["db"]))
    c = site.client()
    c.send(invalidate(t["db"]))
    c.expect("invalidated", count=1)
    refused(site, "db", t["db"])
    assert [e["reason"] for e in site.f.events("token_refused")] == [
        "for another service", "bad signature", "revoked"]
