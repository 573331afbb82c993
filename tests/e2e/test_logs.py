"""Where fived's diagnostics go (log = stderr | syslog | journal), the audit log
in the journal (audit_log = journal), and the audit log reopened on SIGHUP, as
logrotate needs.

syslog and the journal are caught in a mount namespace of the test's own: its
/dev/log and /run/systemd/journal/socket are the test's sockets, so nothing of
the machine's logging is touched.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import FIVED, SLOW, exchange, wait_for

ECHO = "[service:echo]\nbackend = builtin:echo\n"

# Run in the namespace: binds the socket, runs fived until it has served one
# session, stops it, and prints every datagram received as a JSON list.
CATCHER = r'''
import json, os, re, signal, socket, subprocess, sys, time
sock_path, conf, fived = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
os.chmod(sock_path, 0o666)
s.settimeout(0.1)
got = []
def collect(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            got.append(s.recv(65536).decode(errors="replace"))
        except socket.timeout:
            pass
p = subprocess.Popen([fived, "-c", conf], stderr=subprocess.PIPE)
deadline = time.monotonic() + 10
while not any("started with" in m for m in got) and time.monotonic() < deadline:
    collect(0.1)
# The port the kernel chose, as fived logged it.
ports = re.findall(r"listening on tcp:127\.0\.0\.1:(\d+)", "\n".join(got))
if ports:
    c = socket.create_connection(("127.0.0.1", int(ports[0])))
    c.sendall(b"nosuch\r\n")
    c.recv(100)
    c.close()
    collect(0.5)
p.send_signal(signal.SIGTERM)
err = p.communicate(timeout=10)[1].decode(errors="replace")
collect(0.3)
print(json.dumps({"messages": got, "stderr": err, "status": p.returncode, "pid": p.pid}))
'''


def in_namespace(sock_path, command):
    """command run by sh in a mount namespace with a fresh tmpfs holding sock_path's directory."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1): a mount namespace for the log sockets")
    # A tmpfs over /dev (syslog) or /run (the journal), in this namespace only: fived
    # opens nothing else there, and makes its chroot in /run afresh.
    top = "/" + sock_path.split("/")[1]
    return subprocess.run(["unshare", "-m", "sh", "-c",
                           "mount --make-rprivate / && mount -t tmpfs -o mode=755 tmpfs %s && "
                           "mkdir -p %s && %s" % (top, os.path.dirname(sock_path), command)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30 * SLOW)


def catch(tmp_path, target, sock_path, audit="none"):
    """fived with log = target in a namespace where sock_path is the test's socket."""
    conf = tmp_path / "fived.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = %s\nkey_file = %s\n"
                    "exec_user = daemon\nlog = %s\n\n%s"
                    % (audit, tmp_path / "fived.key", target, ECHO))
    (tmp_path / "catcher.py").write_text(CATCHER)
    r = in_namespace(sock_path, "exec %s %s %s %s %s" % (sys.executable, tmp_path / "catcher.py",
                                                         sock_path, conf, FIVED))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def journal_fields(message):
    return dict(line.split("=", 1) for line in message.splitlines() if "=" in line)


def test_journal(tmp_path):
    out = catch(tmp_path, "journal", "/run/systemd/journal/socket")
    assert out["status"] == 0 and out["stderr"] == "", out
    entries = [journal_fields(m) for m in out["messages"]]
    monitor = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "fived-monitor" or
               e.get("SYSLOG_PID") == str(out["pid"])]
    worker = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "fived" and
              e.get("SYSLOG_PID") != str(out["pid"])]
    # The worker's lines came through the monitor, as the worker's, at their level.
    assert any(e["MESSAGE"].startswith("fived 0.1.0 started with") and e["PRIORITY"] == "6"
               for e in worker), entries
    assert any(e["MESSAGE"] == "stopped" for e in worker), entries
    assert monitor, entries
    assert all(e["SYSLOG_FACILITY"] == "3" for e in entries)


AUDIT_MESSAGE_ID = "d9a49acd3c894f9c8648b9bb7314b181"


def test_audit_log_to_the_journal(tmp_path):
    """Each record an entry of its own, sent by the worker on the socket the monitor
    connected: its fields as FIVED_*, the record whole, a fixed MESSAGE_ID."""
    out = catch(tmp_path, "journal", "/run/systemd/journal/socket", audit="journal")
    assert out["status"] == 0 and out["stderr"] == "", out
    entries = [journal_fields(m) for m in out["messages"]]
    audit = [e for e in entries if e.get("MESSAGE_ID") == AUDIT_MESSAGE_ID]
    assert [e["FIVED_EVENT"] for e in audit] == ["accepted", "refused", "closed"], entries
    session = audit[0]["FIVED_SESSION"]
    assert re.fullmatch(r"[0-9a-f]{32}", session)
    for e in audit:
        record = json.loads(e["FIVED_RECORD"])
        assert e["FIVED_SESSION"] == record["session"] == session
        assert e["FIVED_SRC"] == "127.0.0.1" and e["FIVED_SRC_PORT"] == str(record["src_port"])
        assert e["FIVED_TIME"] == record["time"] and e["SYSLOG_IDENTIFIER"] == "fived"
        # Sent by the worker itself, not passed on by the monitor.
        assert "SYSLOG_PID" not in e
    accepted, refused, closed = audit
    assert accepted["PRIORITY"] == "6" and closed["PRIORITY"] == "6"
    assert refused["PRIORITY"] == "5"
    assert refused["FIVED_SERVICE"] == "nosuch" and refused["FIVED_REASON"] == "unknown service"
    assert refused["MESSAGE"] == "refused session %s from 127.0.0.1 service nosuch" % session
    assert accepted["MESSAGE"] == "accepted session %s from 127.0.0.1" % session


def test_audit_log_to_an_absent_journal(tmp_path):
    """Without the journal's socket fived does not start: it could record nothing."""
    conf = tmp_path / "fived.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = journal\nkey_file = %s\n"
                    "exec_user = daemon\n\n%s" % (tmp_path / "fived.key", ECHO))
    r = in_namespace("/run/systemd/journal/socket", "exec %s -c %s" % (FIVED, conf))
    assert r.returncode != 0
    assert ("cannot open the audit log journal: No such file or directory" in r.stderr), r.stderr


def test_syslog(tmp_path):
    out = catch(tmp_path, "syslog", "/dev/log")
    assert out["status"] == 0 and out["stderr"] == "", out
    # "<PRI>TIMESTAMP NAME[PID]: message", daemon facility (3 << 3).
    started = [m for m in out["messages"] if "started with" in m]
    assert len(started) == 1 and started[0].startswith("<30>"), out["messages"]
    assert re.search(r" fived\[(\d+)\]: fived 0\.1\.0 started", started[0])
    assert int(re.search(r"fived\[(\d+)\]", started[0]).group(1)) != out["pid"]


def test_stderr_is_the_default(fived):
    f = fived(ECHO)
    assert re.search(r"fived\[\d+\] info: fived 0\.1\.0 started", f.log())


def test_log_changes_only_with_a_restart(fived):
    f = fived(ECHO)
    f.reload(f.conf.read_text().replace("[server]\n", "[server]\nlog = syslog\n", 1))
    assert "log changes only with a restart" in f.log()


def test_bad_log_value(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\nlog = file\n")
    r = subprocess.run([FIVED, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "%s:3: log: expected stderr, syslog or journal" % conf in r.stderr, r.stderr


def test_audit_log_reopened_after_a_rename(fived):
    """logrotate's way: move the file, send SIGHUP; fived writes to a new file."""
    f = fived(ECHO)
    assert exchange(f.port, b"echo\r\nbefore\n") == b"+\r\nbefore\n"
    wait_for(lambda: "closed" in f.audit.read_text(), what="the first session's record")
    rotated = f.audit.with_suffix(".audit.1")
    os.rename(f.audit, rotated)
    f.reload(f.conf.read_text())
    assert exchange(f.port, b"echo\r\nafter\n") == b"+\r\nafter\n"
    wait_for(lambda: f.audit.exists() and "closed" in f.audit.read_text(),
             what="the new file")
    old = [json.loads(line) for line in rotated.read_text().splitlines()]
    new = [json.loads(line) for line in f.audit.read_text().splitlines()]
    assert {e["event"] for e in new} == {"accepted", "granted", "closed"}
    assert not {e["session"] for e in old} & {e["session"] for e in new}
    assert oct(os.stat(f.audit).st_mode & 0o777) == oct(0o640)


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate missing")
def test_logrotate_example(fived, tmp_path):
    """contrib/logrotate/fived as written, but for the file and the reload command."""
    f = fived(ECHO)
    exchange(f.port, b"echo\r\nbefore\n")
    wait_for(lambda: "closed" in f.audit.read_text(), what="the first record")
    with open(os.path.join(os.path.dirname(__file__), "../../contrib/logrotate/fived")) as src:
        text = src.read()
    assert "/var/log/fived/audit.log {" in text and "systemctl reload fived.service" in text
    text = text.replace("/var/log/fived/audit.log", str(f.audit)).replace(
        "systemctl reload fived.service", "kill -HUP %d" % f.proc.pid)
    (tmp_path / "logrotate.conf").write_text(text)
    r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"),
                        str(tmp_path / "logrotate.conf")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "reloaded" in f.log(), what="the reload")
    exchange(f.port, b"echo\r\nafter\n")
    wait_for(lambda: f.audit.exists() and "closed" in f.audit.read_text(), what="the new file")
    rotated = f.audit.with_name(f.audit.name + ".1")
    assert rotated.read_text().count('"closed"') == 1
    assert f.audit.read_text().count('"closed"') == 1
