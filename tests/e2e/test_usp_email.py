"""The USP email's forms (docs/PROTOCOL.md section 8.7): the request without "message",
the numbered application menu whose index 0 is authentication or, once authenticated, token
invalidation, requested_services by index, and application_session's token.  Each test
quotes the passage of the email (the USP message to the tcpm list) it checks."""

import pytest

from conftest import SLOW
from fivewire import load_key
from uspwire import (UspClient, encode, service_request, session_request)

T = 10 * SLOW
CSID = "laptop-1"

CONFIG = """[server]
listen = tcp:127.0.0.1:0
audit_log = @AUDIT@
authorized_keys = {keys}
request_timeout = 5
allow_plaintext_pubkey = yes
[service:open]
backend = tcp:127.0.0.1:{s}
[service:db]
backend = tcp:127.0.0.1:{s}
auth = required
encryption = optional
[service:vault]
backend = tcp:127.0.0.1:{s}
auth = required
"""


class Site:
    def __init__(self, fived, world, sentinel):
        self.s = sentinel("echo")
        keys = world.global_keys(['principals="alice" ' + world.public("alice")])
        self.f = fived(CONFIG.format(keys=keys, s=self.s.port), env=world.fived_env())
        self.key = load_key(world.keys["alice"])

    def client(self):
        return UspClient(self.f.port, timeout=T, server_key=self.f.server_key())

    def authenticate(self, c, requested=None):
        """Index 0 with pubkey, and requested, from the menu just received: the answer."""
        c.send(service_request(CSID, {0: {"auth_method": "pubkey"}, **(requested or {})}))
        c.expect("authenticate", protocol="pubkey")
        return c.pubkey_exchange("alice", *self.key, answer=None)


@pytest.fixture
def site(fived, world, sentinel):
    return Site(fived, world, sentinel)


def names(menu):
    """index -> application name, index 0 left out."""
    return {int(k): v["name"] for k, v in menu.items() if k != "0"}


def index_of(menu, name):
    return {v: k for k, v in names(menu).items()}[name]


def test_menu_authentication_tokens_and_begin(site):
    """Email, Server Overview: "2. Operating system sends USP application menu to remote host,
    offering authentication if available 3. If the remote host requests authentication,
    complete authentication and send the new application menu 4. If the remote host requests
    an application, send an application token that grants the remote host permission to
    connection to specified application 5. When remote host requests new TCP stream and sends
    USP request with application token, operating system creates a new TCP stream"; 4.a.i:
    "Index 0 is reserved as authentication initiation if not authenticated yet [...] Index 0
    is reserved as token invalidation if already authenticated"; 4.a.iii: "If request is
    made for authentication, initiate authentication process - Ending by providing
    "authorization_token"."""
    c = site.client()
    c.send(session_request(CSID))
    first = c.recv()
    assert list(first) == ["application_menu", "server_session_id", "client_session_id"]
    menu = first["application_menu"]
    assert [m["auth_method"] for m in menu["0"]] == ["pubkey", "token"]
    # "secure applications remain unknown AND unavailable until after authentication"
    assert names(menu) == {1: "open"}
    assert menu["1"]["requires"] == []

    answer = site.authenticate(c, {index_of(menu, "open"): {}})
    authz = answer["authorization_token"]
    after = answer["application_menu"]
    assert after["0"] == {"name": "token invalidation", "expected_request_body": [""]}
    assert names(after) == {1: "open", 2: "db", 3: "vault"}
    assert after["3"]["requires"] == ["encryption"]
    assert list(answer["1"]) == ["token"]
    assert site.s.connections == 0

    # The same menu again, with the authorization token; then applications by index.
    c.send(session_request(CSID, authz))
    assert c.recv()["application_menu"] == after
    c.send(service_request(CSID, {2: {}, 3: {}, 9: {}}, authz))
    got = c.recv()
    assert got["3"] == {"error": {"message": "encryption required"}}
    assert got["9"] == {"error": {"message": "unknown application"}}
    token = got["2"]["token"]
    c.close()

    # A new connection: the token begins db, and bytes sent with the request reach it.
    c = site.client()
    c.send(session_request("laptop-2", None, token, "begin"), b"hello")
    c.expect("connect", application="db")
    assert c.read_exact(5) == b"hello"
    c.close()
    f = site.f
    f.stop()
    assert [e["service"] for e in f.events("granted")] == ["db"]


def test_unauthenticated_requests(site):
    """Email 4.a.iii: "If "authorization_token" is NULL: - Respond to secure application
    requests with error - Complete session establishment for valid public application
    requests"; 4: "If "authorization_token" is invalid: Terminate the session with an
    error"."""
    c = site.client()
    c.send(session_request(CSID))
    menu = c.recv()["application_menu"]
    # An index the menu did not offer looks like a restricted application.
    c.send(service_request(CSID, {index_of(menu, "open"): {}, 2: {}}))
    got = c.recv()
    # fived issues tokens to identities only: a public application is asked for by name.
    assert got["1"] == {"error": {"message": "no token needed"}}
    assert got["2"] == {"error": {"message": "authentication required"}}
    c.send(session_request(CSID, "0" * 64), b"never")
    c.expect_error("invalid authorization token")
    c.close()
    # Authenticating twice is refused; so is an authorization token from another connection.
    c = site.client()
    c.send(session_request(CSID))
    c.recv()
    authz = site.authenticate(c)["authorization_token"]
    c.send(service_request(CSID, {0: {"auth_method": "pubkey"}}, authz))
    c.expect_error("already authenticated")
    c = site.client()
    c.send(service_request(CSID, {1: {}}, authz))
    c.expect_error("invalid authorization token")
    assert site.s.connections == 0


def test_invalidation(site):
    """Email 4.a.ii: ""requested_services" - [...] If index 0 is being used to invalidate
    tokens: An array of tokens", with the example "0": [ "token1", "token2" ]; 3:
    ""application_session"."action" - "begin" - "end""."""
    c = site.client()
    c.send(session_request(CSID))
    c.recv()
    answer = site.authenticate(c)
    authz = answer["authorization_token"]
    c.send(service_request(CSID, {2: {}, 1: {}}, authz))
    got = c.recv()
    db, opened = got["2"]["token"], got["1"]["token"]
    c.send(service_request(CSID, {0: [db]}, authz))
    assert c.recv()["0"] == {"invalidated": 1}
    c.close()
    c = site.client()
    c.send(session_request(CSID, None, db, "begin"), b"never")
    c.expect_error("invalid token")
    # "end" gives a token up, as invalidation does.
    c = site.client()
    c.send(session_request(CSID, None, opened, "end"))
    c.expect("invalidated", count=1)
    c.send(session_request(CSID, None, opened, "begin"))
    c.expect_error("invalid token")
    assert site.s.connections == 0
    f = site.f
    f.stop()
    assert len(f.events("token_revoked")) == 2


MALFORMED = [
    ({"client_session_id": CSID, "authorization_token": None}, 'missing member "message"'),
    ({"client_session_id": CSID, "application_session": None}, "authorization_token"),
    ({"authorization_token": None, "application_session": None}, "client_session_id"),
    ({**session_request(CSID), "requested_services": {}}, "unknown member"),
    ({**session_request(CSID), "authorization_token": 5}, "expected a string or null"),
    (session_request(CSID, None, "v4.public.AAAA", "restart"), "action"),
    (session_request(CSID, None, None, "begin"), "token"),
    (service_request(CSID, {}), "at least one index"),
    (service_request(CSID, {"01": {}}), "not an index"),
    (service_request(CSID, {"1000000": {}}), "not an index"),
    (service_request(CSID, {1: {"user": "alice"}}), "expected {}"),
    (service_request(CSID, {i: {} for i in range(1, 10)}), "at most 8"),
    (service_request(CSID, {0: "pubkey"}), "object or an array"),
    (service_request(CSID, {0: {"auth_method": "pubkey", "user": "x"}}), "unknown member"),
    (service_request(CSID, {0: {"auth_method": "Pub Key"}}), "protocol name"),
    (service_request(CSID, {0: []}), "entries"),
    (service_request(CSID, {0: ["not a token"]}), "invalid token"),
]


def test_malformed(site):
    """Strict as the rest of the dialect (8.1): a form broken anywhere is refused, closed,
    and nothing reaches an application."""
    for msg, what in MALFORMED:
        c = site.client()
        c.send(msg, b"never")
        got = c.recv()
        assert got["message"] == "error" and got["error"].startswith("malformed message: ")
        assert what in got["error"], (msg, got)
        c.expect_closed()
        c.close()
    assert site.s.connections == 0
