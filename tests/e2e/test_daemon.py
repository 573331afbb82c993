"""The daemon: configuration checks, reload, drain, audit log, built-in configuration."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import FIVE, FIVED, SLOW, connect, exchange, recv_all, recv_line, wait_for
from uspwire import encode, initialize, menu

ECHO = "[service:echo]\nbackend = builtin:echo\n"


def test_check_mode(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("[server]\nlisten = tcp:127.0.0.1:0\n" + ECHO)
    r = subprocess.run([FIVED, "-t", "-c", str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and "configuration OK" in r.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nlisten = tcp:127.0.0.1:0\nlistne = x\n[service:a]\n"
                   "backend = tcp:127.0.0.1:99999\n")
    r = subprocess.run([FIVED, "-t", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stderr.splitlines() == [
        '%s:3: unknown key "listne" in [server]' % bad,
        "%s:5: backend: port must be a number from 0 to 65535" % bad,
    ]
    r = subprocess.run([FIVED, "-t", "-c", str(tmp_path / "missing.conf")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "No such file or directory" in r.stderr
    r = subprocess.run([FIVED, "-t"], capture_output=True, text=True)
    assert r.returncode == 0 and "(built-in): configuration OK" in r.stdout


def test_print_builtin_is_the_builtin(tmp_path):
    text = subprocess.run([FIVED, "--print-builtin"], capture_output=True, text=True).stdout
    assert "listen = tcp:127.0.0.1:1" in text and "backend = builtin:echo" in text
    conf = tmp_path / "builtin.conf"
    conf.write_text(text)
    assert subprocess.run([FIVED, "-t", "-c", str(conf)]).returncode == 0


def test_audit_log_records(fived, sentinel):
    f = fived(ECHO)
    assert exchange(f.port, b"echo\r\nabc") == b"+\r\nabc"
    assert exchange(f.port, b"nope\r\n", shut=False) == b"- unknown service\r\n"
    closed = wait_for(lambda: len(f.events("closed")) == 2 and f.events("closed"))
    events = f.events()
    first = [e for e in events if e["session"] == events[0]["session"]]
    assert [e["event"] for e in first] == ["accepted", "granted", "closed"]
    assert list(first[0])[:2] == ["time", "event"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first[0]["time"])
    assert first[0]["src"] == "127.0.0.1" and isinstance(first[0]["src_port"], int)
    assert first[1]["service"] == "echo"
    assert first[2]["bytes_in"] == 3 and first[2]["bytes_out"] == 3
    assert first[2]["reason"] == "done" and first[2]["duration_ms"] >= 0
    refused = f.events("refused")
    assert refused[0]["reason"] == "unknown service" and refused[0]["service"] == "nope"
    assert closed[1]["reason"] == "unknown service"


def test_reload_adds_services_and_keeps_streams(fived):
    f = fived(ECHO)
    with connect(f.port) as held:
        held.sendall(b"echo\r\nbefore ")
        assert recv_line(held) == b"+\r\n"
        f.reload(ECHO + "[service:echo2]\nbackend = builtin:echo\n")
        assert exchange(f.port, b"echo2\r\nnew") == b"+\r\nnew"
        held.sendall(b"after")
        held.shutdown(socket.SHUT_WR)
        assert recv_all(held) == b"before after"
    assert "reloaded" in f.log()


def test_bad_reload_keeps_the_running_configuration(fived):
    f = fived(ECHO)
    f.reload(ECHO + "[service:broken]\nbackend = nowhere\n")
    assert "reload rejected" in f.log()
    assert re.search(r"fived.conf:\d+: backend: expected tcp:HOST:PORT", f.log())
    assert exchange(f.port, b"echo\r\nstill") == b"+\r\nstill"
    assert f.proc.poll() is None


def test_reload_moves_listeners(fived, tmp_path):
    f = fived(ECHO)
    sock = tmp_path / "added.sock"
    f.reload("[server]\nlisten = tcp:127.0.0.1:0 unix:%s\naudit_log = @AUDIT@\n%s" % (sock, ECHO))
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(sock))
        c.sendall(b"echo\r\nvia unix")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"+\r\nvia unix"
    # The TCP listener was kept, not reopened.
    assert exchange(f.port, b"echo\r\nx") == b"+\r\nx"
    f.reload("[server]\nlisten = unix:%s\naudit_log = @AUDIT@\n%s" % (sock, ECHO))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", f.port), timeout=1)


def test_reload_that_cannot_bind_is_rejected(fived):
    f = fived(ECHO)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    f.reload("[server]\nlisten = tcp:127.0.0.1:0 tcp:127.0.0.1:%d\naudit_log = @AUDIT@\n%s"
             % (port, ECHO))
    assert "reload rejected" in f.log()
    assert exchange(f.port, b"echo\r\nok") == b"+\r\nok"
    blocker.close()


def test_sigterm_drains_established_streams(fived):
    f = fived(ECHO, server="drain_timeout = 20")
    held = connect(f.port)
    held.sendall(b"echo\r\n")
    assert recv_line(held) == b"+\r\n"
    pending = connect(f.port)
    pending.sendall(b"ech")
    time.sleep(0.1)
    f.proc.send_signal(signal.SIGTERM)
    assert recv_all(pending) == b"- server shutting down\r\n"
    wait_for(lambda: "stopping" in f.log(), what="drain")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", f.port), timeout=1)
    held.sendall(b"still here")
    assert held.recv(100) == b"still here"
    assert f.proc.poll() is None
    held.shutdown(socket.SHUT_WR)
    assert recv_all(held) == b""
    held.close()
    assert f.proc.wait(5 * SLOW) == 0


def test_sigterm_tells_a_connection_that_sent_nothing(fived):
    """Drain refuses every session yet to make its request, including one whose first
    byte has not come (so fived does not know its dialect yet)."""
    f = fived(ECHO, server="drain_timeout = 20")
    silent = connect(f.port)
    time.sleep(0.1)
    f.proc.send_signal(signal.SIGTERM)
    assert recv_all(silent) == b"- server shutting down\r\n"
    assert f.proc.wait(5 * SLOW) == 0


def test_sigterm_refuses_a_session_in_the_middle_of_auth(fived):
    """A session still authenticating has been granted nothing: drain refuses it too, so
    that it cannot authenticate and start a stream once fived is stopping."""
    f = fived(ECHO, server="drain_timeout = 20\nallow_plaintext_password = yes")
    c = connect(f.port)
    c.sendall(b"AUTH password\r\n")
    assert recv_line(c).startswith(b"+ SUCCESS")
    f.proc.send_signal(signal.SIGTERM)
    assert recv_all(c) == b"- server shutting down\r\n"
    assert f.proc.wait(5 * SLOW) == 0


def test_drain_timeout_closes_what_is_left(fived):
    f = fived(ECHO, server="drain_timeout = 1")
    held = connect(f.port)
    held.sendall(b"echo\r\n")
    assert recv_line(held) == b"+\r\n"
    start = time.monotonic()
    f.proc.send_signal(signal.SIGTERM)
    assert recv_all(held) == b""
    assert f.proc.wait(5 * SLOW) == 0
    assert 0.8 < time.monotonic() - start < 4 * SLOW
    assert f.events("closed")[-1]["reason"] == "shutdown"


def unprivileged_port_start():
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as fh:
        return int(fh.read())


def need_port_1_refused():
    """Skips the calling test unless a connection to 127.0.0.1 port 1 is refused."""
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", 1))
        except ConnectionRefusedError:
            return
        except OSError as e:
            pytest.skip("a connection to 127.0.0.1 port 1 is not refused: %s" % e)
    pytest.skip("something else listens on 127.0.0.1 port 1")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run fived as nobody")
def test_builtin_configuration_falls_back_when_port_1_is_denied(tmp_path):
    if unprivileged_port_start() <= 1:
        pytest.skip("unprivileged users may bind port 1 here")
    # five without -p tries port 1, then the fallback: port 1 must refuse.
    need_port_1_refused()
    err = open(tmp_path / "err", "wb")
    home = tmp_path / "home"
    home.mkdir(mode=0o777)
    os.chmod(home, 0o777)
    proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             FIVED], stdout=subprocess.DEVNULL, stderr=err,
                            env=dict(os.environ, HOME=str(home)))
    try:
        wait_for(lambda: "listening on tcp:127.0.0.1:5501" in (tmp_path / "err").read_text(),
                 what="fallback listener")
        log = (tmp_path / "err").read_text()
        assert "cannot listen on tcp:127.0.0.1:1" in log and "using tcp:127.0.0.1:5501" in log
        r = subprocess.run([FIVE, "127.0.0.1", "echo"], input=b"fallback works",
                           capture_output=True, timeout=10)
        assert r.returncode == 0 and r.stdout == b"fallback works"
    finally:
        proc.terminate()
        proc.wait(5)
        err.close()


def test_request_after_reload_is_judged_by_the_configuration_in_force(fived):
    """A connection accepted before a reload that asks for a service after it: the service
    withdrawn, or no longer granted to the client, is refused, in the text dialect and in
    USP, as on a new connection; what it may still use it gets (fived(8), SIGHUP)."""
    both = ECHO + "[service:echo2]\nbackend = builtin:echo\n"
    f = fived(both)
    text, text_kept, usp = connect(f.port), connect(f.port), connect(f.port)
    # Each connection is the worker's, under the first configuration, before the reload.
    for c in (text, text_kept):
        c.sendall(b"LIST echo2\r\n")
        assert recv_line(c) == b"+ echo2\r\n"
    usp.sendall(encode(menu()))
    assert json.loads(recv_line(usp))["message"] == "menu"
    f.reload(ECHO + "[service:echo2]\nbackend = builtin:echo\nauth = required\n")
    text.sendall(b"echo2\r\nnot for you")
    assert recv_all(text) == b"- unknown service\r\n"
    text_kept.sendall(b"echo\r\nstill mine")
    text_kept.shutdown(socket.SHUT_WR)
    assert recv_all(text_kept) == b"+\r\nstill mine"
    usp.sendall(encode(initialize("echo2")))
    answer = json.loads(recv_line(usp))
    with connect(f.port) as fresh:
        fresh.sendall(encode(initialize("echo2")))
        assert answer["error"] == json.loads(recv_line(fresh))["error"] == "unknown application"
    for c in (text, text_kept, usp):
        c.close()
    assert not [e for e in f.events("granted") if e["service"] == "echo2"]
