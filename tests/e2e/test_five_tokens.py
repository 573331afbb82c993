"""Tokens from the five command and libfive (docs/PROTOCOL.md section 9): five token
obtains one after authenticating, five --token and FIVE_TOKEN use one instead of
authenticating."""

import base64
import datetime
import json
import os
import socket
import subprocess

import pytest

from conftest import (FIVE, HELPERS, SANITIZED, SLOW, connect, connect_from, free_port,
                      recv_all, run_five, wait_for, wait_port)

# pam_wrapper loads libpam with RTLD_DEEPBIND, which AddressSanitizer's runtime refuses.
needs_pam_wrapper = pytest.mark.skipif(SANITIZED, reason="pam_wrapper cannot run under ASan")


def start(fived, world, backend="builtin:echo", extra=""):
    """fived where alice's key is authorized, with an echo service that requires it."""
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    return fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
                 "authorized_keys = %s\nrequest_timeout = 5\nallow_plaintext_pubkey = yes\n%s\n"
                 "[service:echo]\nbackend = %s\nauth = required\nencryption = optional\n"
                 "[service:open]\nbackend = builtin:echo\n" % (keys, extra, backend),
                 env=world.fived_env())


def five(world, f, *args, key=None, env=None, input=b""):
    """five against f; in clear it is given f's key, as one pinned by a sealed session."""
    argv = ["-p", str(f.port)]
    if key is not None:
        argv += ["-l", "alice", "-i", str(world.keys[key])]
    if "--plain" in args and "--key" not in args:
        argv += ["--key", base64.b64encode(f.server_key()).decode()]
    return run_five(*argv, *args, input=input, env=env or world.client_env())


def issue(world, f, *args, key="alice", env=None):
    """five token, as alice with her key; returns the token it printed."""
    r = five(world, f, *args, "token", "127.0.0.1", "echo", key=key, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(b"\n") and r.stdout.count(b"\n") == 1, r.stdout
    return r.stdout.decode().strip()


def claims(token):
    """The message of a v4.public token: the claims anyone may read."""
    body = token.split(".")[2]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return json.loads(raw[:-64])


def lifetime(token):
    c = claims(token)
    stamp = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
    return (stamp(c["exp"]) - stamp(c["iat"])).total_seconds()


def test_token_then_use(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "tcp:127.0.0.1:%d" % s.port)
    r = five(world, f, "token", "127.0.0.1", "echo", key="alice")
    assert r.returncode == 0, r.stderr
    # The first contact pins the server's key, and says so.
    assert r.stderr.startswith(b"five: new host 127.0.0.1:%d, key SHA256:" % f.port)
    token = r.stdout.decode().strip()
    c = claims(token)
    assert (c["app"], c["sub"], c["amr"]) == ("echo", "alice", "pubkey") and "addr" not in c
    r = five(world, f, "--token", token, "127.0.0.1", "echo", input=b"round trip")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"round trip", b"")
    wait_for(lambda: s.received == [b"round trip"], what="the echo backend")
    used = [e for e in f.events("authenticated") if e["method"] == "token"]
    assert [(e["identity"], e["jti"]) for e in used] == [("alice", c["jti"])]
    assert f.events("granted")[-1]["identity"] == "alice"


def test_token_over_plain_and_through_libfive(fived, world):
    f = start(fived, world)
    token = issue(world, f, "--plain")
    r = five(world, f, "--plain", "--token", token, "127.0.0.1", "echo", input=b"plain")
    assert (r.returncode, r.stdout) == (0, b"plain"), r.stderr
    env = dict(os.environ, LIBFIVE_TRANSPORT="plain", LIBFIVE_TOKEN=token)
    out = subprocess.run([os.path.join(HELPERS, "libfive_client"), "127.0.0.1", str(f.port),
                          "echo", "via libfive"], capture_output=True, timeout=10 * SLOW,
                         env=env).stdout
    assert out == b"via libfive"
    env["LIBFIVE_TOKEN"] = token[:-4] + "AAAA"
    out = subprocess.run([os.path.join(HELPERS, "libfive_client"), "127.0.0.1", str(f.port),
                          "echo", "x"], capture_output=True, timeout=10 * SLOW, env=env).stdout
    assert out == b"error refused: invalid token\n"


@pytest.mark.parametrize("transport", [(), ("--tls",)], ids=["sealed", "tls"])
def test_five_token_ends_its_sessions_cleanly(fived, world, transport):
    """five token asks without authenticating, is told to, and asks again with alice's
    key: both sessions end with FINAL (TLS: close_notify), neither as a truncated stream."""
    f = start(fived, world)
    token = issue(world, f, *transport)
    r = five(world, f, *transport, "--token", token, "127.0.0.1", "echo", input=b"used")
    assert (r.returncode, r.stdout) == (0, b"used")
    wait_for(lambda: len(f.events("closed")) == 3, what="three closed records")
    reasons = [e["reason"] for e in f.events("closed")]
    assert reasons == ["closed after reply", "closed after reply", "done"], reasons


def test_five_token_environment(fived, world):
    f = start(fived, world)
    token = issue(world, f)
    env = dict(world.client_env(), FIVE_TOKEN=token)
    r = five(world, f, "127.0.0.1", "echo", env=env, input=b"from the environment")
    assert (r.returncode, r.stdout) == (0, b"from the environment"), r.stderr
    # --token says more than the environment.
    env["FIVE_TOKEN"] = "v4.public.not-this-one"
    r = five(world, f, "--token", token, "127.0.0.1", "echo", env=env, input=b"option")
    assert (r.returncode, r.stdout) == (0, b"option"), r.stderr
    # Authentication asked for on the command line leaves the environment's token aside.
    r = five(world, f, "127.0.0.1", "echo", key="alice", env=env, input=b"by key")
    assert (r.returncode, r.stdout) == (0, b"by key"), r.stderr
    assert f.events("authenticated")[-1]["method"] == "pubkey"
    # An empty variable is no token: the service stays invisible.
    env["FIVE_TOKEN"] = ""
    r = five(world, f, "127.0.0.1", "echo", env=env, input=b"x")
    assert r.returncode == 5 and r.stderr == b"five: 127.0.0.1 echo: refused: unknown service\n"
    # The variable serves service requests only: five list ignores it.
    env["FIVE_TOKEN"] = token
    r = five(world, f, "list", "127.0.0.1", env=env)
    assert (r.returncode, r.stdout) == (0, b"open\n"), r.stderr


def test_five_token_in_a_forwarder(fived, world, process, tmp_path):
    f = start(fived, world)
    token = issue(world, f)
    port = free_port()
    process([FIVE, "-p", str(f.port), "--token", token, "-L", str(port), "127.0.0.1", "echo"],
            env=world.client_env())
    wait_port(port)
    for data in (b"first", b"second"):
        with connect(port) as c:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == data


def test_bad_tokens(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "tcp:127.0.0.1:%d" % s.port)
    token = issue(world, f)
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    for bad in (tampered, "v4.public.AAAA"):
        r = five(world, f, "--token", bad, "127.0.0.1", "echo", input=b"must not arrive")
        assert (r.returncode, r.stdout) == (5, b""), r.stderr
        assert r.stderr == b"five: 127.0.0.1 echo: refused: invalid token\n"
    assert [e["reason"] for e in f.events("token_refused")] == ["bad signature",
                                                                "malformed token"]
    # What cannot be a token never leaves: it could end the request line.
    for bad in (token + "\r\nopen", "two words", "", "x" * 600):
        r = five(world, f, "--token", bad, "127.0.0.1", "echo", input=b"x")
        assert r.returncode == 2 and r.stderr.startswith(b"five: 127.0.0.1 echo: usage: "), \
            r.stderr
    r = five(world, f, "--token", token, "127.0.0.1", "echo", key="alice")
    assert r.returncode == 2 and b"--token replaces authentication" in r.stderr
    assert len(f.events("token_refused")) == 2
    assert s.connections == 0 and s.received == []


def test_bound_token_is_refused_elsewhere(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "tcp:127.0.0.1:%d" % s.port)
    token = issue(world, f, "--bind", "127.0.0.2")
    assert claims(token)["addr"] == "127.0.0.2"
    r = five(world, f, "--token", token, "127.0.0.1", "echo", input=b"from 127.0.0.1")
    assert r.returncode == 5 and r.stderr == b"five: 127.0.0.1 echo: refused: invalid token\n"
    assert s.connections == 0
    # From the address it is bound to, the same token is good.
    c = connect_from(f.port, "127.0.0.2")
    c.sendall(b"echo " + token.encode() + b"\r\nfrom 127.0.0.2")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b"+\r\nfrom 127.0.0.2"
    c.close()
    assert [e["reason"] for e in f.events("token_refused")] == ["bound to another address"]


def test_token_lifetime_and_refusals(fived, world):
    f = start(fived, world, extra="token_max_ttl = 7200")
    assert lifetime(issue(world, f)) == 3600
    assert lifetime(issue(world, f, "--ttl", "120")) == 120
    assert lifetime(issue(world, f, "--ttl", "30m", "--bind", "127.0.0.0/8")) == 1800
    for args, message in ((("--ttl", "7201"), b"refused: invalid lifetime"),
                          (("--bind", "10.0.0.1/7"), b"refused: invalid address")):
        r = five(world, f, *args, "token", "127.0.0.1", "echo", key="alice")
        assert (r.returncode, r.stdout) == (5, b""), r.stderr
        assert r.stderr == b"five: 127.0.0.1 echo: " + message + b"\n"
    r = five(world, f, "token", "127.0.0.1", "nosuch", key="alice")
    assert r.returncode == 5 and r.stderr.endswith(b"refused: unknown service\n")
    # Nothing is sent for what the command line already shows is wrong.
    for args in (("--ttl", "0"), ("--ttl", "1.5"), ("--ttl", "500ms"),
                 ("--bind", "127.0.0.1\r\nQUIT")):
        r = five(world, f, *args, "token", "127.0.0.1", "echo", key="alice")
        assert r.returncode == 2, (args, r.stderr)
    r = five(world, f, "--bind", "127.0.0.2", "127.0.0.1", "echo", key="alice")
    assert r.returncode == 2 and r.stderr == b"five: --bind and --ttl go with five token\n"
    r = five(world, f, "--token", "v4.public.x", "token", "127.0.0.1", "echo")
    assert r.returncode == 2 and b"--token goes with a service request" in r.stderr
    # A key fived does not accept for alice.
    r = five(world, f, "token", "127.0.0.1", "echo", key="bob")
    assert r.returncode == 5 and r.stderr.endswith(b"refused: no key was accepted\n")


@needs_pam_wrapper
def test_token_after_a_password(fived, world):
    f = start(fived, world)
    env = world.client_env(password="wonderland")
    r = five(world, f, "-a", "password", "-l", "alice", "token", "127.0.0.1", "echo", env=env)
    assert r.returncode == 0, r.stderr
    token = r.stdout.decode().strip()
    assert (claims(token)["sub"], claims(token)["amr"]) == ("alice", "password")
    r = five(world, f, "--token", token, "127.0.0.1", "echo", input=b"after a password")
    assert (r.returncode, r.stdout) == (0, b"after a password"), r.stderr


# --- five --usp ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", [[], ["--plain"], ["--tls"]], ids=["sealed", "plain", "tls"])
def test_usp_pubkey_then_the_token(fived, world, sentinel, transport):
    s = sentinel("echo")
    f = start(fived, world, "tcp:127.0.0.1:%d" % s.port)
    r = five(world, f, *transport, "--usp", "127.0.0.1", "echo", key="alice", input=b"over USP")
    assert (r.returncode, r.stdout) == (0, b"over USP"), r.stderr
    wait_for(lambda: s.received == [b"over USP"], what="the echo backend")
    # Flow 2: pubkey, the token fived issued for the stream, initialize again with it.
    issued = f.events("token_issued")
    assert [e["service"] for e in issued] == ["echo"]
    assert [(e["identity"], e["method"]) for e in f.events("authenticated")] == \
        [("alice", "pubkey"), ("alice", "token")]
    assert f.events("authenticated")[1]["jti"] == issued[0]["jti"]
    assert f.events("granted")[-1]["identity"] == "alice"


def test_usp_open_service_without_authentication(fived, world):
    f = start(fived, world)
    r = five(world, f, "--usp", "127.0.0.1", "open", input=b"no one asked")
    assert (r.returncode, r.stdout) == (0, b"no one asked"), r.stderr
    assert f.events("authenticated") == [] and len(f.events("granted")) == 1
    # Without authentication, a service that requires it is not there.
    r = five(world, f, "--usp", "127.0.0.1", "echo", input=b"x")
    assert (r.returncode, r.stdout) == (5, b"")
    assert r.stderr == b"five: 127.0.0.1 echo: refused: unknown application\n"


def test_usp_with_a_token(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "tcp:127.0.0.1:%d" % s.port)
    token = issue(world, f)
    r = five(world, f, "--usp", "--token", token, "127.0.0.1", "echo", input=b"flow 3")
    assert (r.returncode, r.stdout) == (0, b"flow 3"), r.stderr
    env = dict(world.client_env(), FIVE_TOKEN=token)
    r = five(world, f, "--usp", "--plain", "127.0.0.1", "echo", env=env, input=b"from env")
    assert (r.returncode, r.stdout) == (0, b"from env"), r.stderr
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    r = five(world, f, "--usp", "--token", tampered, "127.0.0.1", "echo", input=b"never")
    assert (r.returncode, r.stdout) == (5, b"")
    assert r.stderr == b"five: 127.0.0.1 echo: refused: invalid token\n"
    wait_for(lambda: len(s.received) == 2, what="the echo backend")
    assert sorted(s.received) == [b"flow 3", b"from env"]
    assert len(f.events("token_issued")) == 1  # five token's, and no other


def test_usp_refusals(fived, world, sentinel):
    s = sentinel("echo")
    f = start(fived, world, "tcp:127.0.0.1:%d" % s.port)
    # bob's key is not alice's: one attempt, refused.
    r = five(world, f, "--usp", "-l", "alice", "-i", str(world.keys["bob"]), "127.0.0.1", "echo",
             input=b"x")
    assert r.returncode == 5 and r.stderr == \
        b"five: 127.0.0.1 echo: refused: authentication failed\n"
    # No key at all: nothing to offer, nothing sent.
    r = five(world, f, "--usp", "-a", "pubkey", "127.0.0.1", "echo", input=b"x")
    assert r.returncode == 5 and r.stderr.endswith(b"refused: no Ed25519 key to offer\n")
    # On a plain connection fived takes no password: it lists what it would take.
    r = five(world, f, "--usp", "--plain", "--password-in-clear", "-a", "password", "-l",
             "alice", "127.0.0.1", "echo", input=b"x")
    assert r.returncode == 5 and r.stderr == (b"five: 127.0.0.1 echo: refused: no common "
                                              b"authentication protocol; supported: pubkey,token\n")
    # Unless allowed, five offers no password in the clear at all.
    r = five(world, f, "--usp", "--plain", "-a", "password", "-l", "alice", "127.0.0.1", "echo",
             input=b"x")
    assert r.returncode == 5 and b"no password over plain TCPMUX" in r.stderr
    r = five(world, f, "--usp", "list", "127.0.0.1")
    assert r.returncode == 2 and b"--usp goes with a service request" in r.stderr
    assert s.connections == 0


@needs_pam_wrapper
def test_usp_password(fived, world):
    f = start(fived, world)
    env = world.client_env(password="wonderland")
    r = five(world, f, "--usp", "-a", "password", "-l", "alice", "127.0.0.1", "echo", env=env,
             input=b"after a prompt")
    assert (r.returncode, r.stdout) == (0, b"after a prompt"), r.stderr
    assert [e["method"] for e in f.events("authenticated")] == ["password", "token"]
    env = world.client_env(password="wrong")
    r = five(world, f, "--usp", "-a", "password", "-l", "alice", "127.0.0.1", "echo", env=env)
    assert r.returncode == 5 and r.stderr.endswith(b"refused: authentication failed\n")
