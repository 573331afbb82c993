"""Redirects (docs/PROTOCOL.md section 2.13), with two fived instances: server A sends
clients of some services to server B; five and libfive follow, within their limits.

The USP paper, 7.5 "Redirects": "A message could be formatted that provides information to
the client for a third server so that the client will make a subsequent initialization
request to a different host. This could be done before or after authentication."  fived
gives it where a grant would be given: after whatever authentication and authorization the
service requires, so that a client that may not use a restricted service learns nothing of
it, not even where it lives."""

import base64
import os
import socket
import subprocess

from conftest import (FIVE, HELPERS, SLOW, exchange, free_port, pubkey_login, recv_all,
                      run_five, stop_listening, wait_for)
import muxwire as mw
from fivewire import load_key
from muxwire import MuxSession
from test_mux_client import agent  # noqa: F401  (the fixture)
from uspwire import UspClient, initialize, tokens_of

B_CONFIG = """
[service:echo2]
backend = builtin:echo
[service:vault2]
backend = builtin:echo
auth = required
"""


def a_config(world, a_port, b_port):
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    return ("[server]\nlisten = tcp:127.0.0.1:%d\naudit_log = @AUDIT@\n"
            "authorized_keys = %s\nallow_plaintext_pubkey = yes\n"
            "[service:echo]\nredirect = 127.0.0.1 %d echo2\n"
            "[service:vault]\nredirect = 127.0.0.1 %d vault2\nauth = required\n"
            "encryption = optional\nallow = user:alice\n"
            "[service:loop]\nredirect = 127.0.0.1 %d loop\n"
            % (a_port, keys, b_port, b_port, a_port))


def start_pair(fived, world):
    """B, then A redirecting to it; A's loop service redirects to A itself."""
    b = fived(B_CONFIG, name="b")
    return fived(a_config(world, free_port(), b.port), name="a", env=world.fived_env()), b


def test_redirect_given_only_where_a_grant_would_be(fived, world):
    """Both dialects carry the redirect; a restricted service's is told only to a caller
    it admits, and looks like no service at all to anyone else."""
    a, b = start_pair(fived, world)
    where = b"127.0.0.1 %d echo2" % b.port
    # Before authentication, for a service open to all; bytes sent early go nowhere.
    assert exchange(a.port, b"echo\r\nearly bytes\r\n") == b"- redirect " + where + b"\r\n"
    with UspClient(a.port) as c:
        c.send(initialize("echo"), b"early bytes")
        c.expect("redirect", application="echo", host="127.0.0.1", port=b.port,
                 target_application="echo2")
        c.expect_closed()
    # A restricted one: hidden before authentication, in LIST too.
    assert exchange(a.port, b"vault\r\n") == b"- unknown service\r\n"
    assert b"vault" not in exchange(a.port, b"LIST\r\nQUIT\r\n")
    with UspClient(a.port) as c:
        c.send(initialize("vault"))
        c.expect_error("unknown application")
    # After it, to the caller the service admits.
    c = pubkey_login(a, world)
    c.sendall(b"vault\r\n")
    assert recv_all(c) == b"- redirect 127.0.0.1 %d vault2\r\n" % b.port
    c.close()
    sk, pk = load_key(world.keys["alice"])
    with UspClient(a.port, server_key=a.server_key()) as c:
        c.send(initialize("vault", authentication=["pubkey"]))
        c.expect("authenticate", protocol="pubkey")
        token = tokens_of(c.pubkey_exchange("alice", sk, pk))["vault"]
        c.send(initialize(("vault", token)))
        c.expect("redirect", application="vault", port=b.port, target_application="vault2")
        c.expect_closed()
    # In framed mode a stream cannot carry it: RST "redirect", for vault too since alice may
    # use it.
    s = MuxSession(pubkey_login(a, world), timeout=10 * SLOW)
    s.enter()
    assert s.wait_answer(s.open("echo", data=b"early")) == ("RST", mw.REFUSED, "redirect")
    assert s.wait_answer(s.open("vault")) == ("RST", mw.REFUSED, "redirect")
    s.close()
    redirected = a.events("redirected")
    assert [r["to"] for r in redirected] == [where.decode()] * 2 + [
        "127.0.0.1 %d vault2" % b.port] * 2
    assert not b.events("accepted")


def test_five_follows_with_its_own_rules(fived, world, tmp_path):
    """five asks B as it would a server it was told of by the user: B's key is pinned (or
    checked against the pin), A's token is not sent to B, a loop ends after
    FIVE_REDIRECTS_MAX (3), and --no-redirect prints the redirect instead."""
    a, b = start_pair(fived, world)
    env = dict(os.environ, HOME=str(tmp_path))
    r = run_five("-p", str(a.port), "127.0.0.1", "echo", input=b"hello\n", env=env)
    assert r.returncode == 0 and r.stdout == b"hello\n", r.stderr
    assert b"redirected to 127.0.0.1 port %d, service echo2" % b.port in r.stderr
    assert r.stderr.count(b"new host 127.0.0.1:") == 2
    wait_for(lambda: b.events("granted"), what="B's grant in its audit log")

    r = run_five("--no-redirect", "-p", str(a.port), "127.0.0.1", "echo", input=b"x", env=env)
    assert r.returncode != 0 and r.stdout == b""
    assert b"redirect: 127.0.0.1 %d echo2" % b.port in r.stderr

    r = run_five("-p", str(a.port), "127.0.0.1", "loop", input=b"x", env=env)
    assert r.returncode != 0
    assert r.stderr.count(b"redirected to") == 3
    assert b"redirect: 127.0.0.1 %d loop" % a.port in r.stderr
    assert len([e for e in a.events("redirected") if e["service"] == "loop"]) == 4

    # A token for A's service stays with A: B sees a request without it.
    token = run_five("-p", str(a.port), "-i", str(world.keys["alice"]), "-l", "alice",
                     "token", "127.0.0.1", "vault", env=env)
    assert token.returncode == 0, token.stderr
    r = run_five("--token", token.stdout.strip().decode(), "-p", str(a.port), "127.0.0.1",
                 "vault", input=b"x", env=env)
    assert r.returncode != 0
    assert b"redirected to 127.0.0.1 port %d, service vault2" % b.port in r.stderr
    assert b"unknown service" in r.stderr
    assert not b.events("token_refused")


def test_a_detachable_session_follows_too(fived, world, tmp_path):
    """In framed mode fived resets a redirected stream with "redirect" alone (2.13): five
    --detachable learns where the service lives on a connection of its own, which sends
    it nothing, and opens its session there; --no-redirect names the target; a loop ends
    after FIVE_REDIRECTS_MAX (3)."""
    a, b = start_pair(fived, world)
    env = dict(os.environ, HOME=str(tmp_path))
    r = run_five("--detachable", "-p", str(a.port), "127.0.0.1", "echo", input=b"hello\n",
                 env=env)
    assert r.returncode == 0 and r.stdout == b"hello\n", r.stderr
    assert r.stderr.count(b"redirected to 127.0.0.1 port %d, service echo2" % b.port) == 1
    assert b.events("detachable") and b.events("stream_granted")
    assert not a.events("stream_granted") and not a.events("granted")

    r = run_five("--detachable", "--no-redirect", "-p", str(a.port), "127.0.0.1", "echo",
                 input=b"x", env=env)
    assert r.returncode == 5 and r.stdout == b"", r.stderr
    assert b"redirect: 127.0.0.1 %d echo2" % b.port in r.stderr

    r = run_five("--detachable", "-p", str(a.port), "127.0.0.1", "loop", input=b"x", env=env)
    assert r.returncode == 5, r.stderr
    assert r.stderr.count(b"redirected to") == 3
    assert b"redirect: 127.0.0.1 %d loop" % a.port in r.stderr


def test_through_the_agent_five_asks_on_a_connection_of_its_own(fived, world, agent):
    """Through five agent the stream's reset says "redirect" alone: five, having read
    nothing more than its early data, asks on a session of its own, which follows the
    redirect, or with --no-redirect names where it goes."""
    a, b = start_pair(fived, world)
    port = str(a.port)
    assert run_five("--no-agent", "-p", port, "127.0.0.1", "echo", input=b"pin").returncode == 0
    agent()
    r = run_five("-p", port, "127.0.0.1", "echo", input=b"hello\n")
    assert r.returncode == 0 and r.stdout == b"hello\n", r.stderr
    assert b"redirected to 127.0.0.1 port %d, service echo2" % b.port in r.stderr
    r = run_five("--no-redirect", "-p", port, "127.0.0.1", "echo", input=b"x")
    assert r.returncode == 5 and r.stdout == b"", r.stderr
    assert b"redirect: 127.0.0.1 %d echo2" % b.port in r.stderr
    assert a.events("stream_refused"), "the agent's stream was not asked"


def test_with_key_the_next_server_must_be_pinned(fived, world, tmp_path):
    """five --key asks for no trust on first use: a redirect to a server not pinned yet is
    refused, not pinned; once pinned, it is followed."""
    a, b = start_pair(fived, world)
    env = dict(os.environ, HOME=str(tmp_path))
    a_key = base64.b64encode(a.server_key()).decode()
    r = run_five("--key", a_key, "-p", str(a.port), "127.0.0.1", "echo", input=b"x", env=env)
    assert r.returncode != 0 and r.stdout == b""
    assert b"no key pinned for 127.0.0.1:%d" % b.port in r.stderr, r.stderr
    assert b"new host" not in r.stderr and not b.events("granted")
    pin = run_five("-p", str(b.port), "127.0.0.1", "echo2", input=b"x", env=env)
    assert pin.returncode == 0, pin.stderr
    r = run_five("--key", a_key, "-p", str(a.port), "127.0.0.1", "echo", input=b"hi", env=env)
    assert (r.returncode, r.stdout) == (0, b"hi"), r.stderr


def read_until(conn, marker):
    got = b""
    while marker not in got:
        chunk = conn.recv(4096)
        assert chunk, got
        got += chunk
    return got


def against_a_first_server(answer):
    """Runs five --plain ... echo against a server of the test's, which answer(conn, five)
    plays once five's request line has come; five's (returncode, stdout, stderr)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(10 * SLOW)
    five = subprocess.Popen([FIVE, "--plain", "-p", str(lsock.getsockname()[1]), "127.0.0.1",
                             "echo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        conn, _ = lsock.accept()
        conn.settimeout(10 * SLOW)
        assert read_until(conn, b"\r\n") == b"echo\r\n"
        answer(conn, five)
        conn.close()
        out, err = five.communicate(timeout=10 * SLOW)
    finally:
        stop_listening(lsock)
        five.kill()
    return five.returncode, out, err


def test_input_read_before_the_redirect_goes_to_the_next_server(fived):
    """Bytes five reads after its request but before the reply are not lost to a redirect:
    fived forwarded none of them, so five sends them to the next server.  The first server
    here answers only once they have reached it, as a slow fived would."""
    b = fived(B_CONFIG, name="b")

    def answer(conn, five):
        five.stdin.write(b"late bytes")
        five.stdin.flush()
        assert read_until(conn, b"late bytes") == b"late bytes"
        conn.sendall(b"- redirect 127.0.0.1 %d echo2\r\n" % b.port)

    code, out, err = against_a_first_server(answer)
    assert (code, out) == (0, b"late bytes"), err
    assert b"redirected to 127.0.0.1 port %d, service echo2" % b.port in err


def test_a_nul_in_a_reply_is_a_protocol_error(fived):
    """A reply line is text: a NUL in it is refused, not read as the end of the line (a
    redirect to "echo2<NUL>x" is not one to "echo2")."""
    b = fived(B_CONFIG, name="b")
    code, _, err = against_a_first_server(
        lambda conn, five: conn.sendall(b"- redirect 127.0.0.1 %d echo2\x00x\r\n" % b.port))
    assert code == 6 and b"a NUL byte in a reply line" in err, err
    assert not b.events("granted")


def test_libfive_pins_the_new_server(fived, world, tmp_path):
    """libfive: a key given for A is not B's; B must be pinned in known_hosts, and
    no_redirect reports where fived sent the client."""
    a, b = start_pair(fived, world)
    a_key = base64.b64encode(a.server_key()).decode()

    def run(**extra):
        env = dict(os.environ, LIBFIVE_TRANSPORT=a_key, **extra)
        return subprocess.run([os.path.join(HELPERS, "libfive_client"), "127.0.0.1",
                               str(a.port), "echo", "hi"], capture_output=True,
                              timeout=10 * SLOW, env=env)

    r = run()
    assert r.stdout.startswith(b"error trust:"), r.stdout
    assert b"notice: redirected to 127.0.0.1 port %d, service echo2" % b.port in r.stderr
    pin = run_five("-p", str(b.port), "127.0.0.1", "echo2", input=b"x")
    assert pin.returncode == 0, pin.stderr
    assert run().stdout == b"hi"
    r = run(LIBFIVE_NO_REDIRECT="1")
    assert r.stdout == b"error redirect: 127.0.0.1 %d echo2\n" % b.port
