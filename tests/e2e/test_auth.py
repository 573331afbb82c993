"""Authentication before the application, policy, and the identity handed to it."""

import base64
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import (FIVE, SANITIZED, SLOW, connect, connect_from, exchange, recv_all, recv_line,
                      run_five, wait_for)
from fivewire import (load_key, new_key, parse_challenge, parse_proxy_v2, signature_line,
                      signed_data, user_line)


# pam_wrapper loads libpam with RTLD_DEEPBIND, which AddressSanitizer's runtime refuses: the
# PAM conversation is tested in the plain build only.
needs_pam_wrapper = pytest.mark.skipif(SANITIZED, reason="pam_wrapper cannot run under ASan")


def base_config(world, extra_server="", services=""):
    keys = world.global_keys([
        'principals="alice" ' + world.public("alice"),
        'principals="bob,carol" ' + world.public("bob"),
        'principals="carol",command="/bin/false" ' + world.public("carol"),
    ])
    return ("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
            "authorized_keys = %s\nallow_plaintext_password = yes\n"
            "allow_plaintext_pubkey = yes\nrequest_timeout = 5\n%s\n"
            % (keys, extra_server)) + services


def start(fived, world, services, extra_server=""):
    return fived(base_config(world, extra_server, services), env=world.fived_env())


def five(world, f, *args, user=None, key=None, password=None, agent=None, input=b"x"):
    argv = ["-p", str(f.port)]
    if user is not None:
        argv += ["-l", user]
    if key is not None:
        argv += ["-i", str(world.keys[key])]
    return run_five(*argv, *args, input=input,
                    env=world.client_env(password=password, agent=agent))


ECHO_RESTRICTED = """
[service:open]
backend = builtin:echo
[service:secret]
backend = builtin:echo
auth = required
"""


# --- pubkey ---------------------------------------------------------------


def test_pubkey_with_a_key_file(fived, world):
    f = start(fived, world, ECHO_RESTRICTED)
    r = five(world, f, "127.0.0.1", "secret", user="alice", key="alice", input=b"signed in")
    assert (r.returncode, r.stdout) == (0, b"signed in"), r.stderr
    auth = f.events("authenticated")[0]
    assert auth["identity"] == "alice" and auth["method"] == "pubkey"
    assert auth["key"] == world.fingerprint("alice")
    assert f.events("granted")[0]["identity"] == "alice"


def test_pubkey_through_ssh_agent(fived, world, tmp_path, process):
    sock = str(tmp_path / "agent.sock")
    process(["ssh-agent", "-D", "-a", sock])
    wait_for(lambda: os.path.exists(sock), what="ssh-agent")
    subprocess.run(["ssh-add", "-q", str(world.keys["bob"]), str(world.keys["alice"])],
                   env=dict(os.environ, SSH_AUTH_SOCK=sock), check=True,
                   capture_output=True)
    f = start(fived, world, ECHO_RESTRICTED)
    # The agent holds bob's key first: fived refuses it for alice, five tries the next.
    r = five(world, f, "-a", "pubkey", "127.0.0.1", "secret", user="alice", agent=sock,
             input=b"via agent")
    assert (r.returncode, r.stdout) == (0, b"via agent"), r.stderr
    assert [e["reason"] for e in f.events("auth_failed")] == ["key not authorized"]


def test_unauthorized_keys_are_refused(fived, world):
    f = start(fived, world, ECHO_RESTRICTED)
    # bob's key is listed for bob and carol, not alice.
    r = five(world, f, "127.0.0.1", "secret", user="alice", key="bob")
    assert r.returncode == 5 and b"no key was accepted" in r.stderr
    # carol's line carries command=, which fived does not enforce: it authorizes nothing.
    r = five(world, f, "127.0.0.1", "secret", user="carol", key="carol")
    assert r.returncode == 5
    r = five(world, f, "127.0.0.1", "secret", user="carol", key="bob", input=b"ok")
    assert r.stdout == b"ok"


def test_per_user_authorized_keys_and_from(fived, world):
    (world.home / "alice/.ssh/authorized_keys").write_text(
        'from="10.0.0.0/8" ' + world.public("alice") + "\n")
    (world.home / "bob/.ssh/authorized_keys").write_text(
        'from="127.0.0.0/8,!127.0.0.9" ' + world.public("bob") + "\n")
    f = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
              "user_authorized_keys = %h/.ssh/authorized_keys\n" + ECHO_RESTRICTED,
              env=world.fived_env())
    r = five(world, f, "127.0.0.1", "secret", user="bob", key="bob", input=b"home file")
    assert r.stdout == b"home file", r.stderr
    r = five(world, f, "127.0.0.1", "secret", user="alice", key="alice")
    assert r.returncode == 5
    # A file others may write is refused, like sshd's StrictModes.
    (world.home / "bob/.ssh/authorized_keys").chmod(0o666)
    r = five(world, f, "127.0.0.1", "secret", user="bob", key="bob")
    assert r.returncode == 5


# The exchanges by hand run on plain TCP, so their services accept it.
def raw_pubkey(f, user, sk, pk, session=None, service=b"secret", after=b"", nonce=None,
               server_key=None):
    """The pubkey exchange written by hand, the signature made over session, nonce and
    server key when given instead of the challenge's and f's; returns (connection, session
    id)."""
    c = connect(f.port)
    c.sendall(b"AUTH pubkey\r\n" + user_line(user, pk))
    assert recv_line(c) == b"+ SUCCESS pubkey\r\n"
    challenge = recv_line(c)
    sid, challenge_nonce = parse_challenge(challenge)
    data = signed_data(session or sid, nonce or challenge_nonce, user, pk,
                       server_key=f.server_key() if server_key is None else server_key)
    c.sendall(signature_line(sk, data) + service + b"\r\n" + after)
    return c, sid


def test_signature_binds_session_and_nonce(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "[service:secret]\nbackend = tcp:127.0.0.1:%d\nauth = required\nencryption = optional\n"
              % s.port)
    sk, pk = load_key(world.keys["alice"])
    c, _ = raw_pubkey(f, "alice", sk, pk, after=b"data")
    assert recv_line(c) == b"+ Authentication as alice successful\r\n"
    assert recv_line(c) == b"+\r\n"
    c.close()
    # A signature made for another session id, or for another nonce, is refused, and
    # nothing is delivered.
    c, _ = raw_pubkey(f, "alice", sk, pk, session=b"0" * 32, after=b"stolen")
    assert recv_all(c) == b"- authentication failed\r\n- unknown service\r\n"
    c.close()
    c, _ = raw_pubkey(f, "alice", sk, pk, nonce=bytes(32), after=b"stolen")
    assert recv_all(c) == b"- authentication failed\r\n- unknown service\r\n"
    c.close()
    wait_for(lambda: s.received, what="the granted stream to end")
    assert s.connections == 1 and s.received == [b"data"]


def test_signature_names_the_server(fived, world, sentinel):
    """A signature for another server, or naming none, cannot be relayed to this one over
    a plain connection, where nothing else binds it to this server."""
    s = sentinel("echo")
    f = start(fived, world, "[service:secret]\nbackend = tcp:127.0.0.1:%d\nauth = required\n"
              "encryption = optional\n" % s.port)
    sk, pk = load_key(world.keys["alice"])
    for other in (bytes(32), b""):
        c, _ = raw_pubkey(f, "alice", sk, pk, server_key=other, after=b"relayed")
        assert recv_all(c) == b"- authentication failed\r\n- unknown service\r\n"
        c.close()
    assert s.connections == 0


def test_pubkey_in_clear_needs_permission(fived, world):
    """Unencrypted, pubkey is refused unless allow_plaintext_pubkey says otherwise, as
    password is: LIST does not offer it and AUTH pubkey finds no common method."""
    f = fived(base_config(world, services=ECHO_RESTRICTED).replace(
        "allow_plaintext_pubkey = yes\n", "").replace("allow_plaintext_password = yes\n", ""),
        env=world.fived_env())
    c = connect(f.port)
    c.sendall(b"LIST\r\nAUTH pubkey\r\n")
    listing = b""
    while not listing.endswith(b".\r\n"):
        listing += recv_line(c)
    assert b"\r\nAUTH\r\n" not in listing
    assert recv_line(c) == b"- no common authentication method; supported: token\r\n"
    c.close()
    # Unencrypted, five signs only when it knows the server's key, and says so.
    r = five(world, f, "--plain", "127.0.0.1", "secret", user="alice", key="alice")
    assert r.returncode == 2 and b"needs the server's key" in r.stderr, r.stderr
    key = base64.b64encode(f.server_key()).decode()
    r = five(world, f, "--plain", "--key", key, "127.0.0.1", "secret", user="alice",
             key="alice")
    assert r.returncode != 0 and b"no common authentication method" in r.stderr, r.stderr
    # Allowed, and with the key known, it works.
    g = start(fived, world, ECHO_RESTRICTED + "encryption = optional\n")
    key = base64.b64encode(g.server_key()).decode()
    r = five(world, g, "--plain", "--key", key, "127.0.0.1", "secret", user="alice",
             key="alice", input=b"in clear")
    assert (r.returncode, r.stdout) == (0, b"in clear"), r.stderr


def test_pubkey_with_libfive_steps(fived, world):
    """five_authenticate signs in the clear once it is given the server's key."""
    f = start(fived, world, ECHO_RESTRICTED + "encryption = optional\n")
    helper = os.path.join(os.environ.get("FIVE_BUILD", "build"), "helpers", "libfive_steps")
    env = dict(world.client_env(), LIBFIVE_KEY_FILE=str(world.keys["alice"]),
               LIBFIVE_USER="alice")
    argv = [helper, "127.0.0.1", str(f.port), "secret", "stepped in"]
    r = subprocess.run(argv, capture_output=True, timeout=10 * SLOW, env=env)
    assert r.stdout.startswith(b"error five_authenticate usage: pubkey authentication without "
                               b"encryption needs the server's key"), r.stdout
    env["LIBFIVE_SERVER_KEY"] = base64.b64encode(f.server_key()).decode()
    r = subprocess.run(argv, capture_output=True, timeout=10 * SLOW, env=env)
    assert r.stdout == b"stepped in", r.stdout
    assert f.events("granted")[-1]["identity"] == "alice"


def test_replayed_signature_is_refused(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "[service:secret]\nbackend = tcp:127.0.0.1:%d\nauth = required\n"
              % s.port)
    sk, pk = load_key(world.keys["alice"])
    # Capture a whole good exchange, then replay its signature on a new connection.
    first = connect(f.port)
    first.sendall(b"AUTH pubkey\r\n" + user_line("alice", pk))
    recv_line(first)
    sid, nonce = parse_challenge(recv_line(first))
    captured = signature_line(sk, signed_data(sid, nonce, "alice", pk,
                                              server_key=f.server_key()))
    first.close()
    second = connect(f.port)
    second.sendall(b"AUTH pubkey\r\n" + user_line("alice", pk))
    recv_line(second)
    recv_line(second)
    second.sendall(captured + b"secret\r\nreplayed")
    assert recv_all(second) == b"- authentication failed\r\n- unknown service\r\n"
    assert s.connections == 0


def test_unknown_key_and_malformed_lines(fived, world):
    f = start(fived, world, ECHO_RESTRICTED)
    sk, pk = new_key()
    c = connect(f.port)
    c.sendall(b"AUTH pubkey\r\n" + user_line("alice", pk))
    assert recv_line(c) == b"+ SUCCESS pubkey\r\n"
    assert recv_line(c) == b"- authentication failed\r\n"
    c.sendall(b"AUTH pubkey\r\nUSER alice ssh-ed25519 AAAA\r\n")
    assert recv_line(c) == b"+ SUCCESS pubkey\r\n"
    assert recv_line(c) == b"- authentication failed\r\n"
    c.sendall(b"AUTH pubkey\r\nSIGNATURE AAAA\r\n")
    assert recv_line(c) == b"+ SUCCESS pubkey\r\n"
    assert recv_all(c) == b"- too many authentication failures\r\n"
    assert [e["reason"] for e in f.events("auth_failed")] == [
        "key not authorized", "malformed public key", "malformed signature"]


# --- password --------------------------------------------------------------


@needs_pam_wrapper
def test_password_through_pam(fived, world):
    f = start(fived, world, "[service:who]\nbackend = exec:/usr/bin/env\nauth = required\n")
    r = five(world, f, "-a", "password", "127.0.0.1", "who", user="alice",
             password="wonderland", input=b"")
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in r.stdout.decode().splitlines())
    assert env["FIVE_IDENTITY"] == env["TCPREMOTEINFO"] == "alice"
    assert env["FIVE_AUTH_METHOD"] == "password"
    r = five(world, f, "-a", "password", "127.0.0.1", "who", user="alice", password="wrong")
    assert r.returncode == 5 and b"refused: authentication failed" in r.stderr


@needs_pam_wrapper
def test_pam_conversation_by_hand(fived, world):
    import base64
    f = start(fived, world, ECHO_RESTRICTED)
    c = connect(f.port)
    c.sendall(b"AUTH password\r\nUSER bob\r\n")
    assert recv_line(c) == b"+ SUCCESS password\r\n"
    assert recv_line(c) == b"+ PROMPT-ECHO-OFF Password: \r\n"
    c.sendall(b"RESPONSE " + base64.b64encode(b"builder") + b"\r\nLIST\r\n")
    assert recv_line(c) == b"+ Authentication as bob successful\r\n"
    assert recv_line(c) == b"+ LIST\r\n"
    listing = []
    while not listing or listing[-1] != b".\r\n":
        listing.append(recv_line(c))
    assert [n for n in listing if n == n.lower()][-3:] == [b"open\r\n", b"secret\r\n", b".\r\n"]
    c.close()


def test_plaintext_password_needs_explicit_permission(fived, world):
    f = fived(base_config(world).replace("allow_plaintext_password = yes", "")
              + ECHO_RESTRICTED, env=world.fived_env())
    assert exchange(f.port, b"AUTH password\r\nQUIT\r\n") == \
        b"- no common authentication method; supported: pubkey,token\r\n+ bye\r\n"
    wait_for(lambda: f.events("refused"), what="the refusal's record")
    assert f.events("refused")[0]["reason"] == "no common authentication method"
    r = five(world, f, "--plain", "-a", "password", "127.0.0.1", "secret", user="alice",
             password="wonderland")
    assert r.returncode == 5 and b"no password over plain TCPMUX" in r.stderr
    r = five(world, f, "--plain", "--password-in-clear", "-a", "password", "127.0.0.1",
             "secret", user="alice", password="wonderland")
    assert r.returncode == 5 and b"no common authentication method" in r.stderr


@needs_pam_wrapper
def test_password_over_a_sealed_session(fived, world):
    """Encrypted, a password needs no permission."""
    f = fived(base_config(world).replace("allow_plaintext_password = yes", "")
              + ECHO_RESTRICTED, env=world.fived_env())
    r = five(world, f, "-a", "password", "127.0.0.1", "secret", user="alice",
             password="wonderland", input=b"sealed secret")
    assert (r.returncode, r.stdout) == (0, b"sealed secret")


def test_a_password_on_a_session_the_handshake_authenticated(fived, world, tmp_path):
    """4.1: AUTH on a session that has an identity already (here the sealed handshake's,
    an authorized key) is answered `- already authenticated`, and the connection stays
    open: five sends its USER line only after `+ SUCCESS`, so that no line of the
    exchange is read as a request, and the audit log says what happened: the refusal,
    and nothing that did not happen."""
    clients = tmp_path / "authorized_clients"
    clients.write_text("")
    config = base_config(world, "authorized_clients = %s\n" % clients) + ECHO_RESTRICTED
    f = fived(config, env=world.fived_env())
    env = world.client_env(password="wonderland")
    r = run_five("-p", str(f.port), "id", "127.0.0.1", env=env)
    clients.write_text("%s machine\n" % r.stdout.decode().strip())
    f.reload(config)
    r = five(world, f, "-a", "password", "127.0.0.1", "secret", user="alice",
             password="wonderland")
    assert (r.returncode, r.stderr) == (
        5, b"five: 127.0.0.1 secret: refused: already authenticated\n"), r.stderr
    last = f.events("accepted")[-1]["session"]
    mine = lambda: [e["event"] for e in f.events() if e["session"] == last]  # noqa: E731
    wait_for(lambda: "closed" in mine(), what="the session's end")
    assert mine() == ["accepted", "authenticated", "refused", "closed"]
    refusal = [e for e in f.events("refused") if e["session"] == last]
    assert (refusal[0]["reason"], refusal[0]["service"]) == ("already authenticated", "")


# --- policy ------------------------------------------------------------------


POLICY = """
[service:open]
backend = builtin:echo
[service:staffonly]
backend = builtin:echo
auth = required
allow = group:staff
deny = user:bob
[service:bykey]
backend = builtin:echo
auth = required
allow = key:%s
[service:anyone]
backend = builtin:echo
auth = required
"""


def test_restricted_services_are_invisible_before_auth(fived, world):
    f = start(fived, world, POLICY % world.fingerprint("alice"))
    assert exchange(f.port, b"HELP\r\n", shut=False) == b"open\r\n"
    out = exchange(f.port, b"LIST\r\nLIST staffonly\r\nQUIT\r\n").decode()
    names = out.split("\r\n")[1:out.split("\r\n").index(".")]
    assert [name for name in names if name == name.lower()] == ["open"], out
    assert out.endswith("\r\n.\r\n- unknown service\r\n+ bye\r\n"), out
    assert exchange(f.port, b"staffonly\r\ndata", shut=False) == b"- unknown service\r\n"
    assert exchange(f.port, b"nosuch\r\ndata", shut=False) == b"- unknown service\r\n"


def test_allow_deny_groups_and_keys(fived, world):
    f = start(fived, world, POLICY % world.fingerprint("alice"))
    ok = five(world, f, "127.0.0.1", "staffonly", user="alice", key="alice", input=b"a")
    assert ok.stdout == b"a", ok.stderr
    # bob is in staff but denied: deny wins.
    r = five(world, f, "127.0.0.1", "staffonly", user="bob", key="bob")
    assert r.returncode == 5 and r.stderr.endswith(b"refused: not permitted\n")
    # carol (authenticated with bob's key, listed for her) is in no allowed group.
    r = five(world, f, "127.0.0.1", "staffonly", user="carol", key="bob")
    assert r.returncode == 5 and b"not permitted" in r.stderr
    assert five(world, f, "127.0.0.1", "bykey", user="alice", key="alice").returncode == 0
    assert five(world, f, "127.0.0.1", "anyone", user="carol", key="bob").returncode == 0
    if not SANITIZED:
        # A password login has no key: key: entries never match it.
        r = five(world, f, "-a", "password", "127.0.0.1", "bykey", user="alice",
                 password="wonderland")
        assert b"not permitted" in r.stderr
    r = five(world, f, "list", "127.0.0.1", user="alice", key="alice", input=b"")
    assert r.stdout == b"open\nstaffonly\nbykey\nanyone\n"
    r = five(world, f, "list", "127.0.0.1", user="bob", key="bob", input=b"")
    assert r.stdout == b"open\nanyone\n"


# --- nothing reaches a backend ------------------------------------------------


def test_sentinel_sees_nothing_from_unauthenticated_attempts(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "[service:guarded]\nbackend = tcp:127.0.0.1:%d\nauth = required\nencryption = optional\n"
              "allow = user:alice\n" % s.port)
    sk, pk = load_key(world.keys["alice"])
    bob_sk, bob_pk = load_key(world.keys["bob"])
    attempts = [
        b"guarded\r\nbytes before any auth",
        b"guarded\r\nAUTH pubkey\r\n" + user_line("alice", pk),
        b"AUTH pubkey\r\nguarded\r\npipelined during auth",
        b"AUTH pubkey\r\n" + user_line("alice", pk) + b"SIGNATURE " + b"A" * 200 + b"\r\n"
        b"guarded\r\nx",
        b"AUTH pubkey\r\n" + user_line("alice", pk)[:40],
        b"AUTH pubkey\r\n" + b"USER " + b"a" * 600 + b"\r\nguarded\r\n",
        b"AUTH password\r\nUSER alice\r\nguarded\r\nRESPONSE eA==\r\nguarded\r\nx",
        b"AUTH pubkey,password,x,y,z,w,v,u,t\r\nguarded\r\n",
    ]
    for data in attempts:
        with connect(f.port) as c:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            reply = recv_all(c)
        assert b"+\r\n" not in reply, (data[:50], reply)
    # Authenticated, but not allowed.
    c, _ = raw_pubkey(f, "bob", bob_sk, bob_pk, service=b"guarded", after=b"bob's bytes")
    assert recv_all(c) == b"+ Authentication as bob successful\r\n- not permitted\r\n"
    c.close()
    assert s.connections == 0 and s.bytes == 0
    # The control: alice's own exchange does reach it.
    c, _ = raw_pubkey(f, "alice", sk, pk, service=b"guarded", after=b"12345")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c).endswith(b"+\r\n12345")
    assert s.connections == 1


# --- failure counters ---------------------------------------------------------


def failed_attempt(f, source, user):
    """One failed pubkey attempt; returns how long the failure reply took."""
    _, pk = new_key()
    c = connect_from(f.port, source)
    start_time = time.monotonic()
    c.sendall(b"AUTH pubkey\r\n" + user_line(user, pk))
    recv_line(c)
    assert recv_line(c) == b"- authentication failed\r\n"
    c.close()
    return time.monotonic() - start_time


def test_failures_slow_the_source_not_the_user(fived, world):
    f = start(fived, world, ECHO_RESTRICTED)
    delays = [failed_attempt(f, "127.0.0.1", "alice") for _ in range(4)]
    assert delays[0] >= 0.2 and delays[-1] > delays[0] * 3, delays
    # From another address, alice's right key is answered at once...
    sk, pk = load_key(world.keys["alice"])
    c = connect_from(f.port, "127.0.0.2")
    start_time = time.monotonic()
    c.sendall(b"AUTH pubkey\r\n" + user_line("alice", pk))
    recv_line(c)
    sid, nonce = parse_challenge(recv_line(c))
    c.sendall(signature_line(sk, signed_data(sid, nonce, "alice", pk,
                                             server_key=f.server_key())))
    assert recv_line(c) == b"+ Authentication as alice successful\r\n"
    assert time.monotonic() - start_time < 0.2 * SLOW
    c.close()
    # ...while a wrong attempt for alice from there waits as a first failure does: her
    # identity's counter was cleared by that success (else 4 failures: 8 times as long).
    delay = failed_attempt(f, "127.0.0.2", "alice")
    assert 0.2 <= delay < 1.0 * SLOW, delay


def test_max_auth_tries(fived, world):
    f = start(fived, world, ECHO_RESTRICTED, extra_server="max_auth_tries = 2")
    _, pk = new_key()
    c = connect(f.port)
    c.sendall(b"AUTH pubkey\r\n" + user_line("alice", pk))
    assert recv_line(c) == b"+ SUCCESS pubkey\r\n"
    assert recv_line(c) == b"- authentication failed\r\n"
    c.sendall(b"AUTH pubkey\r\n" + user_line("alice", pk))
    assert recv_all(c) == b"+ SUCCESS pubkey\r\n- too many authentication failures\r\n"


# --- identity handed to the application ---------------------------------------


def test_identity_in_proxy_v2(fived, world, sentinel):
    s = sentinel("silent")
    f = start(fived, world,
              "[service:app]\nbackend = tcp:127.0.0.1:%d\nauth = required\nencryption = optional\nproxy_protocol = v2\n"
              "[service:ballot]\nbackend = tcp:127.0.0.1:%d\nauth = required\nencryption = optional\n"
              "proxy_protocol = v2\nidentity = withhold\n" % (s.port, s.port))
    sk, pk = load_key(world.keys["alice"])
    c, _ = raw_pubkey(f, "alice", sk, pk, service=b"app", after=b"vote")
    c.shutdown(socket.SHUT_WR)
    recv_all(c)
    port = c.getsockname()[1]
    c.close()
    wait_for(lambda: len(s.received) == 1)
    src, dst, tlvs, rest = parse_proxy_v2(s.received[0])
    assert src == ("127.0.0.1", port) and rest == b"vote"
    assert tlvs[0xE0] == b"alice" and tlvs[0xE1] == b"pubkey"
    # The ballot box learns neither who nor from where; the audit log does.
    c, _ = raw_pubkey(f, "alice", sk, pk, service=b"ballot", after=b"secret vote")
    c.shutdown(socket.SHUT_WR)
    recv_all(c)
    c.close()
    wait_for(lambda: len(s.received) == 2)
    src, dst, tlvs, rest = parse_proxy_v2(s.received[1])
    assert src is None and 0xE0 not in tlvs and rest == b"secret vote"
    assert tlvs[0xE1] == b"pubkey"
    assert f.events("granted")[-1]["identity"] == "alice"


def test_registered_application_receives_streams_with_identity(fived, world, process,
                                                                   tmp_path):
    control = tmp_path / "control.sock"
    f = start(fived, world,
              "[service:app]\nbackend = register\nregister_users = alice\nauth = required\n"
              "[service:anon]\nbackend = register\nregister_users = alice\nauth = required\n"
              "identity = withhold\n", extra_server="control_socket = %s" % control)
    helper = os.path.join(os.environ.get("FIVE_BUILD", "build"), "helpers", "register_echo")
    out = tmp_path / "app.out"
    # The application runs as alice (uid 2001); it binds no port at all.
    with open(out, "wb") as fh:
        process(["setpriv", "--reuid=2001", "--regid=2001", "--clear-groups", helper,
                 str(control), "app"], stdout=fh)
        wait_for(lambda: b"registered" in out.read_bytes(), what="registration")
    r = five(world, f, "127.0.0.1", "app", user="alice", key="alice", input=b"hello app")
    assert r.returncode == 0, r.stderr
    header, echoed = r.stdout.split(b"\n", 1)
    assert echoed == b"hello app"
    fields = dict(kv.split("=", 1) for kv in header.decode().split(" "))
    assert fields["identity"] == "alice" and fields["method"] == "pubkey"
    assert fields["withheld"] == "0" and fields["remote"].startswith("127.0.0.1:")
    assert fields["session"] == f.events("granted")[-1]["session"]
    assert (fields["encrypted"], fields["stream"]) == ("1", "0")
    # Someone not in register_users may not register.
    r = subprocess.run(["setpriv", "--reuid=2002", "--regid=2002", "--clear-groups", helper,
                        str(control), "anon", "1"], capture_output=True, timeout=10)
    assert r.stdout == b"error refused: not permitted\n"
    # No application registered: the service is unavailable.
    r = five(world, f, "127.0.0.1", "anon", user="alice", key="alice")
    assert r.returncode == 5 and b"service unavailable" in r.stderr
    # A withheld identity: the application learns only that someone authenticated.
    with open(tmp_path / "anon.out", "wb") as fh:
        process(["setpriv", "--reuid=2001", "--regid=2001", "--clear-groups", helper,
                 str(control), "anon"], stdout=fh)
        wait_for(lambda: b"registered" in (tmp_path / "anon.out").read_bytes())
    r = five(world, f, "127.0.0.1", "anon", user="alice", key="alice", input=b"")
    fields = dict(kv.split("=", 1) for kv in r.stdout.decode().strip().split(" "))
    assert fields["identity"] == "-" and fields["withheld"] == "1"
    assert fields["remote"] == ":0"


# --- privilege separation ------------------------------------------------------


def test_privilege_separation(fived, world):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    f = start(fived, world, ECHO_RESTRICTED)
    assert "privilege separation: worker runs as nobody" in f.log()
    children = subprocess.run(["ps", "-o", "user=,pid=", "--ppid", str(f.proc.pid)],
                              capture_output=True, text=True).stdout.split()
    assert children[0] == "nobody"
    owner = subprocess.run(["ps", "-o", "user=", "-p", str(f.proc.pid)],
                           capture_output=True, text=True).stdout.strip()
    assert owner == "root"


def test_no_separation_when_not_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    conf = tmp_path / "c.conf"
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o777)
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = none\nkey_file = %s\n"
                    % (home / "nobody.key"))
    os.chmod(conf, 0o644)
    r = subprocess.run(["timeout", "-s", "TERM", "1", "setpriv", "--reuid=nobody",
                        "--regid=nogroup", "--clear-groups", os.path.join(
                            os.environ.get("FIVE_BUILD", "build"), "fived"), "-c", str(conf)],
                       capture_output=True, text=True, env=dict(os.environ, HOME=str(tmp_path)))
    assert r.stderr.count("running without privilege separation (not started as root)") == 1


def test_much_pipelined_during_auth_is_held_then_delivered(fived, world, sentinel):
    """More than fived holds before a grant: it pauses reading, and resumes after."""
    s = sentinel("count")
    f = start(fived, world, "[service:secret]\nbackend = tcp:127.0.0.1:%d\nauth = required\nencryption = optional\n"
              % s.port)
    sk, pk = load_key(world.keys["alice"])
    payload = os.urandom(300000)
    c = connect(f.port)
    c.sendall(b"AUTH pubkey\r\n" + user_line("alice", pk))
    recv_line(c)
    sid, nonce = parse_challenge(recv_line(c))
    c.sendall(signature_line(sk, signed_data(sid, nonce, "alice", pk,
                                             server_key=f.server_key()))
              + b"secret\r\n" + payload)
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == (b"+ Authentication as alice successful\r\n+\r\ngot %d\n"
                           % len(payload))
    c.close()
