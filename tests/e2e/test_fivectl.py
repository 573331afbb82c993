"""fivectl against a running fived (docs/fivectl.8): the session list with live
plain and sealed sessions, a multiplexed session's streams, kill, stats, governor, reload, revoke, who may use
the admin socket, and what the socket does with requests that are no requests."""

import json
import os
import socket
import subprocess

import muxwire as mw
from conftest import BUILD, FIVE, SLOW, connect, need_ipv6_loopback, wait_for
from test_five_tokens import claims, five, issue, start

FIVECTL = os.path.join(BUILD, "fivectl")

ECHO = "[service:echo]\nbackend = builtin:echo\n"


def admin_server(tmp_path, extra=""):
    return "admin_socket = %s\n%s" % (tmp_path / "admin.sock", extra)


def fivectl(f, *args, user=None, input=None):
    """fivectl against f's admin socket, as root or as user (runuser)."""
    argv = [FIVECTL, "-s", str(f.dir / "admin.sock"), *args]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, input=input, timeout=10 * SLOW)


def ok(f, *args, **kw):
    r = fivectl(f, *args, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout


def listing(f):
    return json.loads(ok(f, "--json", "sessions"))


def plain_session(f):
    """A plain TCPMUX session to echo, relaying: returns its socket after one round trip."""
    s = connect(f.port)
    s.sendall(b"echo\r\nhello\n")
    got = b""
    while not got.endswith(b"hello\n"):
        got += s.recv(100)
    assert got.startswith(b"+")
    return s


def sealed_session(f, process_input):
    """five's sealed session to echo, its standard input held open."""
    p = subprocess.Popen([FIVE, "-p", str(f.port), "127.0.0.1", "echo"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write(process_input)
    p.stdin.flush()
    assert p.stdout.read(len(process_input)) == process_input
    return p


def sessions_by_transport(f):
    return {s["transport"]: s for s in listing(f)["sessions"]}


def test_an_ipv6_source_is_in_brackets(fived, tmp_path):
    """The table shows an IPv6 source as [ADDRESS]:PORT: without the brackets its last
    group would read as the port."""
    need_ipv6_loopback()
    f = fived("[server]\nlisten = tcp:[::1]:0\naudit_log = @AUDIT@\n" + admin_server(tmp_path)
              + "\n" + ECHO)
    port = int(f.addresses[0].rsplit(":", 1)[1])
    with socket.create_connection(("::1", port), timeout=5) as c:
        c.sendall(b"echo\r\nx")
        assert c.recv(10).startswith(b"+")
        table = wait_for(lambda: (lambda t: t if "[::1]:" in t else None)(ok(f, "sessions")),
                         what="the session listed")
        assert "[::1]:%d " % c.getsockname()[1] in table, table


def test_sessions_kill_stats_governor(fived, tmp_path):
    f = fived(ECHO, server=admin_server(tmp_path))
    plain = plain_session(f)
    sealed = sealed_session(f, b"sealed bytes\n")
    try:
        live = wait_for(lambda: (lambda m: m if set(m) == {"plain", "sealed"} else None)(
            sessions_by_transport(f)), what="both sessions listed")
        for s in live.values():
            assert (s["state"], s["service"], s["src"], s["method"], s["identity"], s["vhost"],
                    s["dialect"]) == ("relay", "echo", "127.0.0.1", "none", None, "", "text")
            assert s["src_port"] > 0 and s["age_ms"] >= 0 and len(s["id"]) == 32
        assert (live["plain"]["bytes_in"], live["plain"]["bytes_out"]) == (6, 6)
        assert (live["sealed"]["bytes_in"], live["sealed"]["bytes_out"]) == (13, 13)
        body = listing(f)
        assert body["total"] == body["shown"] == 2
        # The table names both, by the ids kill takes.
        table = ok(f, "sessions")
        assert live["plain"]["id"] in table and live["sealed"]["id"] in table

        stats = json.loads(ok(f, "--json", "stats"))
        assert stats["sessions"] == 2 and stats["audit_lost"] == 0
        assert stats["handshakes"]["handshakes"] >= 1
        assert stats["relay_budget"]["max"] > 0 and stats["relay_budget"]["used"] >= 0
        assert "handshakes.initiations " in ok(f, "stats")
        gov = json.loads(ok(f, "--json", "governor"))
        assert (gov["loaded"], gov["difficulty"], gov["cookies_demanded"]) == (False, 0, False)
        assert gov["handshakes"]["initiations"] >= 1

        # kill ends that session, and only that one.
        assert json.loads(ok(f, "--json", "kill", live["plain"]["id"])) == {
            "killed": live["plain"]["id"]}
        plain.settimeout(5 * SLOW)
        assert plain.recv(100) == b""
        closed = wait_for(lambda: [e for e in f.events("closed")
                                   if e["session"] == live["plain"]["id"]], what="its record")
        assert closed[0]["reason"] == "killed by fivectl"
        assert [s["transport"] for s in listing(f)["sessions"]] == ["sealed"]
        sealed.stdin.write(b"still\n")
        sealed.stdin.flush()
        assert sealed.stdout.read(6) == b"still\n"
        r = fivectl(f, "kill", live["plain"]["id"])
        assert (r.returncode, r.stderr) == (1, "fivectl: refused: no such session\n")
        ok(f, "kill", live["sealed"]["id"])
        assert sealed.wait(5 * SLOW) != 0
    finally:
        plain.close()
        if sealed.poll() is None:
            sealed.kill()
            sealed.wait()


def test_reload(fived, tmp_path):
    f = fived(ECHO, server=admin_server(tmp_path))
    plain = plain_session(f)
    f.write_config(ECHO + "[service:echo2]\nbackend = builtin:echo\n")
    assert json.loads(ok(f, "--json", "reload")) == {"reloaded": True, "sessions": 1}
    s = connect(f.port)
    s.sendall(b"echo2\r\n")
    assert s.recv(100).startswith(b"+")
    s.close()
    # A broken file is refused, and the running configuration kept.
    f.conf.write_text(f.conf.read_text() + "[service:bad]\nbackend = nowhere\n")
    r = fivectl(f, "reload")
    assert r.returncode == 1 and r.stderr.startswith("fivectl: refused: ")
    assert "reload rejected" in f.log()
    plain.sendall(b"on\n")
    assert plain.recv(100) == b"on\n"
    plain.close()


def test_revoke_a_token_and_an_id(fived, world, tmp_path):
    f = start(fived, world, extra=admin_server(tmp_path))
    first, second = issue(world, f), issue(world, f)
    r = five(world, f, "--token", first, "127.0.0.1", "echo", input=b"x")
    assert r.returncode == 0, r.stderr
    revoked = json.loads(ok(f, "--json", "revoke", "-", input=first + "\n"))
    assert revoked["revoked"] == claims(first)["jti"]
    jti = claims(second)["jti"]
    assert json.loads(ok(f, "--json", "revoke", jti))["revoked"] == jti
    for token in (first, second):
        r = five(world, f, "--token", token, "127.0.0.1", "echo", input=b"x")
        assert r.returncode != 0 and b"refused: invalid token" in r.stderr, r.stderr
    assert [e["reason"] for e in f.events("token_refused")] == ["revoked", "revoked"]
    assert [e["jti"] for e in f.events("token_revoked")] == [claims(first)["jti"], jti]
    r = fivectl(f, "revoke", "v4.public.nonsense")
    assert r.returncode == 1 and "not a token this server accepts" in r.stderr


def test_who_may_use_it(fived, tmp_path):
    f = fived(ECHO, server=admin_server(tmp_path))
    r = fivectl(f, "stats", user="nobody")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "fivectl: refused: not root, and no admin_group is set\n"
    assert "admin: uid %d refused" % 65534 in f.log()
    # nobody's group, nogroup, made the admin group: nobody may, daemon still may not.
    f.server = admin_server(tmp_path, "admin_group = nogroup\n")
    f.write_config(ECHO)
    ok(f, "reload")
    assert json.loads(ok(f, "--json", "stats", user="nobody"))["sessions"] == 0
    r = fivectl(f, "stats", user="daemon")
    assert r.returncode == 1 and r.stderr == "fivectl: refused: not root, nor in admin_group\n"


def admin_exchange(path, message):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5 * SLOW)
    s.connect(path)
    s.send(message)
    reply = s.recv(1 << 17)
    s.close()
    return reply


def test_requests_that_are_no_requests(fived, tmp_path):
    f = fived(ECHO, server=admin_server(tmp_path))
    path = str(tmp_path / "admin.sock")
    assert admin_exchange(path, b"S" * 20000) == b"- request too large\n"
    for garbage in (b"\x00\xff\xfe", b"sessions\n", b"KILL zz\n", b"STATS\n\n", b"{}\n",
                    b"REVOKE a b\n"):
        assert admin_exchange(path, garbage) == b"- malformed request\n", garbage
    # A connection that says nothing is closed after a while; fived goes on serving.
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    silent.settimeout(10 * SLOW)
    silent.connect(path)
    assert silent.recv(100) == b"- no request in time\n"
    silent.close()
    assert json.loads(ok(f, "--json", "stats"))["sessions"] == 0
    plain_session(f).close()
    r = fivectl(f, "frobnicate")
    assert r.returncode == 2 and r.stderr.startswith("usage: fivectl")


def test_streams_of_a_multiplexed_session(fived, tmp_path):
    """fivectl streams ID: each open stream of a multiplexed session, with its service and
    bytes; a stream that ended is gone from the list."""
    f = fived(ECHO + "[service:discard]\nbackend = builtin:discard\n",
              server=admin_server(tmp_path))
    plain = plain_session(f)
    s = mw.MuxSession.connect(f.port, timeout=10 * SLOW)
    try:
        assert s.enter() == b"+ MULTIPLEX\r\n"
        echo = s.open("echo", data=b"hello")
        assert s.read_exact(echo, 5) == b"hello"
        discard = s.open("discard", data=b"into the void")
        sessions = wait_for(lambda: (lambda m: m if len(m) == 1 and m[0]["streams"] == 2
                                     else None)(
            [x for x in listing(f)["sessions"] if x["state"] == "multiplex"]),
            what="the session's two streams")
        sid = sessions[0]["id"]
        body = wait_for(lambda: (lambda b: b if all(x["connected"] and x["bytes_in"] > 0
                                                    for x in b["streams"]) else None)(
            json.loads(ok(f, "--json", "streams", sid))), what="both streams' bytes")
        assert (body["session"], body["total"], body["shown"]) == (sid, 2, 2)
        by_id = {x["id"]: x for x in body["streams"]}
        assert set(by_id) == {echo, discard}
        assert (by_id[echo]["service"], by_id[echo]["bytes_in"],
                by_id[echo]["bytes_out"]) == ("echo", 5, 5)
        assert (by_id[discard]["service"], by_id[discard]["bytes_in"],
                by_id[discard]["bytes_out"]) == ("discard", 13, 0)
        assert all(x["age_ms"] >= 0 for x in body["streams"])
        # The table, by stream id.
        lines = ok(f, "streams", sid).splitlines()
        assert lines[0].split() == ["STREAM", "SERVICE", "STATE", "IN", "OUT", "AGE(s)"]
        assert [line.split()[:5] for line in lines[1:]] == [
            [str(echo), "echo", "open", "5", "5"], [str(discard), "discard", "open", "13", "0"]]

        # The echo stream ends both ways: only discard is left.
        s.fin(echo)
        s.read_all(echo)
        wait_for(lambda: [x["id"] for x in json.loads(ok(f, "--json", "streams", sid))["streams"]]
                 == [discard], what="the ended stream to go")

        plain_id = [x["id"] for x in listing(f)["sessions"] if x["state"] == "relay"][0]
        r = fivectl(f, "streams", plain_id)
        assert (r.returncode, r.stderr) == (1, "fivectl: refused: not a multiplexed session\n")
        r = fivectl(f, "streams", "0" * 32)
        assert (r.returncode, r.stderr) == (1, "fivectl: refused: no such session\n")
        r = fivectl(f, "streams", "nothex")
        assert r.returncode == 2
    finally:
        s.close()
        plain.close()
