"""Tokens in the text dialect (docs/PROTOCOL.md section 9): TOKEN issues one after AUTH,
SERVICE TOKEN and AUTH token use one; every refusal delivers nothing."""

import base64
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import (FIVED, SLOW, connect, connect_from, issue_token, pubkey_login, recv_all,
                      recv_line, wait_for)


def config(world, services, extra=""):
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    return ("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\nauthorized_keys = %s\n"
            "request_timeout = 5\nallow_plaintext_pubkey = yes\n%s\n" % (keys, extra)) + services


def services(sentinel_port):
    return ("[service:db]\nbackend = tcp:127.0.0.1:%d\nauth = required\nencryption = optional\n"
            "[service:other]\nbackend = builtin:echo\nauth = required\nencryption = optional\n"
            "[service:ballot]\nbackend = tcp:127.0.0.1:%d\nauth = required\n"
            "encryption = optional\nidentity = withhold\n" % (sentinel_port, sentinel_port))


def use(port, token, service=b"db", data=b"payload", source="127.0.0.1"):
    c = connect_from(port, source)
    c.sendall(service + b" " + token + b"\r\n" + data)
    c.shutdown(socket.SHUT_WR)
    out = recv_all(c)
    c.close()
    return out


def claims(token):
    """The message of a v4.public token: the claims anyone may read."""
    body = token.split(b".")[2]
    raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
    return json.loads(raw[:-64])


def test_issue_then_use(fived, world, sentinel):
    s = sentinel("echo")
    f = fived(config(world, services(s.port)), env=world.fived_env())
    token = issue_token(f, world)
    assert len(token) < 512 - len(b"db \r\n")
    c = claims(token)
    assert (c["app"], c["sub"], c["amr"]) == ("db", "alice", "pubkey") and "addr" not in c
    assert use(f.port, token) == b"+\r\npayload"
    wait_for(lambda: s.received == [b"payload"])
    taken = [e for e in f.events("authenticated") if e["method"] == "token"]
    assert [(e["identity"], e["amr"], e["jti"]) for e in taken] == [("alice", "pubkey", c["jti"])]
    assert f.events("granted")[-1]["identity"] == "alice"


def test_refused_tokens_deliver_nothing(fived, world, sentinel, tmp_path):
    s = sentinel("echo")
    f = fived(config(world, services(s.port)), env=world.fived_env())
    token = issue_token(f, world)
    tampered = token[:20] + (b"A" if token[20:21] != b"A" else b"B") + token[21:]
    short = issue_token(f, world, b"TOKEN db - 1")
    time.sleep(2.2)
    other = fived(config(world, services(s.port)), env=world.fived_env(), name="other")
    foreign = issue_token(other, world)
    for bad, service in ((tampered, b"db"), (short, b"db"), (token, b"other"),
                         (foreign, b"db"), (b"v4.public.AAAA", b"db")):
        assert use(f.port, bad, service) == b"- invalid token\r\n", (bad, service)
    reasons = [e["reason"] for e in f.events("token_refused")]
    assert reasons == ["bad signature", "expired", "for another service", "unknown key",
                       "malformed token"]
    assert s.connections == 0 and s.received == []


def test_bound_to_an_address(fived, world, sentinel):
    s = sentinel("echo")
    f = fived(config(world, services(s.port)), env=world.fived_env())
    token = issue_token(f, world, b"TOKEN db 127.0.0.2")
    assert claims(token)["addr"] == "127.0.0.2"
    assert use(f.port, token) == b"- invalid token\r\n"
    assert use(f.port, token, source="127.0.0.2") == b"+\r\npayload"
    prefix = issue_token(f, world, b"TOKEN db 127.0.0.0/8 60")
    assert use(f.port, prefix, source="127.0.0.3") == b"+\r\npayload"
    wait_for(lambda: len(s.received) == 2)


def test_token_command_refusals(fived, world, sentinel):
    s = sentinel("echo")
    f = fived(config(world, services(s.port), "token_max_ttl = 600"), env=world.fived_env())
    c = connect(f.port)
    c.sendall(b"TOKEN db\r\n")
    assert recv_line(c) == b"- authentication required\r\n"
    c.close()
    c = pubkey_login(f, world)
    for request, reply in ((b"TOKEN nosuch", b"- unknown service"),
                           (b"TOKEN db 10.0.0.1/7", b"- invalid address"),
                           (b"TOKEN db - 601", b"- invalid lifetime"),
                           (b"TOKEN db - 0", b"- invalid lifetime")):
        c.sendall(request + b"\r\n")
        assert recv_line(c) == reply + b"\r\n", request
    c.close()


def test_auth_token(fived, world, sentinel):
    s = sentinel("echo")
    f = fived(config(world, services(s.port)), env=world.fived_env())
    token = issue_token(f, world)
    c = connect(f.port)
    c.sendall(b"AUTH token\r\nTOKEN " + token + b"\r\nLIST\r\nother\r\n")
    assert recv_line(c) == b"+ SUCCESS token\r\n"
    assert recv_line(c) == b"+ Authentication as alice successful\r\n"
    listing = b""
    while not listing.endswith(b".\r\n"):
        listing += recv_line(c)
    assert b"db\r\n" in listing and b"other" not in listing and b"ballot" not in listing
    # The token's identity reaches its own service only.
    assert recv_all(c) == b"- unknown service\r\n"
    c.close()
    c = connect(f.port)
    c.sendall(b"AUTH token\r\nTOKEN " + token + b"\r\nTOKEN db\r\n")
    assert recv_line(c) == b"+ SUCCESS token\r\n"
    assert recv_line(c) == b"+ Authentication as alice successful\r\n"
    assert recv_line(c) == b"- not permitted: a token does not issue tokens\r\n"
    c.close()


def test_withheld_identity_is_not_in_the_token(fived, world, sentinel):
    s = sentinel("echo")
    f = fived(config(world, services(s.port)), env=world.fived_env())
    token = issue_token(f, world, b"TOKEN ballot")
    assert "sub" not in claims(token)
    assert use(f.port, token, b"ballot") == b"+\r\npayload"
    wait_for(lambda: s.received == [b"payload"])


def test_local_tokens_are_opaque(fived, world, sentinel):
    s = sentinel("echo")
    f = fived(config(world, services(s.port), "token_format = local"), env=world.fived_env())
    token = issue_token(f, world)
    assert token.startswith(b"v4.local.") and b"alice" not in base64.urlsafe_b64decode(
        token.split(b".")[2] + b"=" * (-len(token.split(b".")[2]) % 4))
    assert use(f.port, token) == b"+\r\npayload"


def test_trusted_keys_of_another_node(fived, world, sentinel, tmp_path):
    s = sentinel("echo")
    issuer = fived(config(world, services(s.port)), env=world.fived_env())
    out = subprocess.run([FIVED, "--print-token-key", "-c", str(issuer.conf)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == 2 and len(base64.b64decode(out[0])) == 32
    trusted = tmp_path / "trusted"
    trusted.write_text("# the issuing node\n%s issuer\n" % out[0])
    verifier = fived(config(world, services(s.port), "token_trusted_keys = %s" % trusted),
                     env=world.fived_env(), name="verifier")
    token = issue_token(issuer, world)
    assert use(verifier.port, token) == b"+\r\npayload"
    assert [e["identity"] for e in verifier.events("authenticated")] == ["alice"]
