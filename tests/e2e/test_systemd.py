"""fived under systemd: the notification protocol (READY, RELOADING, STOPPING,
the watchdog), socket activation, and the units in contrib/systemd.

systemd need not be the init: a test reads notifications from a datagram
socket of its own, systemd-socket-activate hands over sockets, and
systemd-analyze verify checks the units.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, FIVE, FIVED, SLOW, connect, free_port, recv_all, wait_for

UNITS = os.path.join(os.path.dirname(__file__), "../../contrib/systemd")
ECHO = "[service:echo]\nbackend = builtin:echo\n"


def built_with_systemd():
    out = subprocess.run(["ldd", FIVED], capture_output=True, text=True).stdout
    return "libsystemd" in out


needs_libsystemd = pytest.mark.skipif(
    not built_with_systemd(), reason="fived was built without libsystemd (libsystemd-dev)")


class Notifications:
    """The datagram socket systemd would listen on (NOTIFY_SOCKET)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received = []

    def env(self, **extra):
        return dict(os.environ, NOTIFY_SOCKET=self.path, **extra)

    def _drain(self):
        self.sock.settimeout(0.05)
        try:
            while True:
                self.received.append(self.sock.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass

    def wait(self, state, after=0):
        """Waits for a message holding state (e.g. READY=1) past index after; its index."""
        def seen():
            self._drain()
            for i in range(after, len(self.received)):
                if state in self.received[i].split("\n"):
                    return i + 1
            return None
        return wait_for(seen, what=state) - 1

    def count(self, state):
        self._drain()
        return sum(1 for m in self.received if state in m.split("\n"))


@pytest.fixture
def notes(tmp_path):
    n = Notifications(tmp_path / "notify")
    yield n
    n.sock.close()


# user = root runs fived in one process: the same protocol, without a monitor.
@needs_libsystemd
@pytest.mark.parametrize("server", ["", "user = root"], ids=["monitor", "single"])
def test_ready_reload_stop_in_order(fived, notes, server):
    f = fived(ECHO, server=server, env=notes.env())
    ready = notes.wait("READY=1")
    f.proc.send_signal(signal.SIGHUP)
    reloading = notes.wait("RELOADING=1", ready + 1)
    assert re.search(r"^MONOTONIC_USEC=\d+$", notes.received[reloading], re.M)
    ready_again = notes.wait("READY=1", reloading + 1)
    f.proc.send_signal(signal.SIGTERM)
    stopping = notes.wait("STOPPING=1", ready_again + 1)
    assert ready < reloading < ready_again < stopping
    assert f.proc.wait(5 * SLOW) == 0


@needs_libsystemd
def test_rejected_reload_still_ends_with_ready(fived, notes):
    f = fived(ECHO, env=notes.env())
    ready = notes.wait("READY=1")
    f.conf.write_text("[server]\nnonsense = 1\n")
    f.proc.send_signal(signal.SIGHUP)
    reloading = notes.wait("RELOADING=1", ready + 1)
    notes.wait("READY=1", reloading + 1)
    wait_for(lambda: "reload rejected" in f.log(), what="the rejection")
    assert notes.count("READY=1") == 2


@needs_libsystemd
def test_worker_and_programs_cannot_notify(fived, notes):
    """Only the monitor speaks to systemd: its children are not given the socket."""
    f = fived(ECHO, env=notes.env())
    notes.wait("READY=1")
    with open("/proc/%d/environ" % f.worker_pid(), "rb") as env:
        assert b"NOTIFY_SOCKET" not in env.read()


@needs_libsystemd
def test_watchdog_fed_only_while_the_worker_answers(fived, notes):
    f = fived(ECHO, env=notes.env(WATCHDOG_USEC="400000"))
    notes.wait("READY=1")
    wait_for(lambda: notes.count("WATCHDOG=1") >= 3, what="watchdog pings")
    assert "every 200 ms" in f.log()
    worker = f.worker_pid()
    os.kill(worker, signal.SIGSTOP)
    try:
        # Read on as systemd would: a full socket would block the monitor.
        wait_for(lambda: notes.count("WATCHDOG=1") >= 0 and
                 "does not answer; the systemd watchdog is not fed" in f.log(),
                 timeout=6, what="the watchdog to starve")
        starved = notes.count("WATCHDOG=1")
        time.sleep(0.6)
        assert notes.count("WATCHDOG=1") == starved
    finally:
        os.kill(worker, signal.SIGCONT)
    wait_for(lambda: notes.count("WATCHDOG=1") > starved, what="the watchdog fed again")


@needs_libsystemd
def test_watchdog_single_process(fived, notes):
    fived(ECHO, server="user = root", env=notes.env(WATCHDOG_USEC="400000"))
    wait_for(lambda: notes.count("WATCHDOG=1") >= 3, what="watchdog pings")


# --- socket activation ---------------------------------------------------------------

needs_activate = pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                                    reason="systemd-socket-activate missing (package systemd)")


def activate(tmp_path, listen_port, socket_port):
    """fived under systemd-socket-activate, which execs it at the first connection."""
    conf = tmp_path / "fived.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:%d\naudit_log = -\nkey_file = %s\n"
                    "exec_user = daemon\n\n%s" % (listen_port, tmp_path / "fived.key", ECHO))
    log = open(tmp_path / "fived.stderr", "wb")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", "127.0.0.1:%d" % socket_port,
                             "--fdname=fived-tcp", FIVED, "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=log)
    wait_for(lambda: b"Listening on" in (tmp_path / "fived.stderr").read_bytes(),
             what="systemd-socket-activate")
    return proc, lambda: (tmp_path / "fived.stderr").read_text(errors="replace")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5 * SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@needs_libsystemd
@needs_activate
def test_socket_activation_serves_the_socket_handed_over(tmp_path):
    port = free_port()
    proc, log = activate(tmp_path, port, port)
    try:
        s = connect(port)
        s.sendall(b"echo\r\nhi\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"+\r\nhi\n"
        assert "socket activation: tcp:127.0.0.1:%d from systemd (fived-tcp)" % port in log()
        # fived served the socket it was given: it bound nothing of its own.
        assert "listening on tcp:127.0.0.1:%d" % port in log()
    finally:
        stop(proc)


@needs_libsystemd
@needs_activate
def test_socket_activation_refuses_a_socket_no_entry_names(tmp_path):
    port, other = free_port(), free_port()
    proc, log = activate(tmp_path, other, port)
    try:
        # The first connection makes systemd-socket-activate start fived.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert proc.wait(5 * SLOW) == 1
        assert ("systemd handed over tcp:127.0.0.1:%d (descriptor 3, fived-tcp), which no "
                "listen entry names" % port) in log()
    finally:
        stop(proc)


# --- the units ---------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze missing (package systemd)")
def test_units_verify(tmp_path):
    """Every directive known to this systemd, every program there: ExecStart points at
    the built fived in a copy, since verify checks that it exists."""
    names = sorted(n for n in os.listdir(UNITS) if n.startswith("fived.") and
                   n.endswith((".service", ".socket")))
    assert names == ["fived.service", "fived.socket"]
    for name in names:
        with open(os.path.join(UNITS, name)) as src:
            text = src.read().replace("/usr/sbin/fived", os.path.abspath(FIVED))
        (tmp_path / name).write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] +
                       [str(tmp_path / n) for n in names],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze missing (package systemd)")
def test_agent_user_units_verify(tmp_path):
    """five agent's units as a user's systemd reads them (%t is the runtime directory);
    ExecStart points at the built five."""
    names = ["five-agent.service", "five-agent.socket"]
    for name in names:
        with open(os.path.join(UNITS, name)) as src:
            text = src.read().replace("/usr/bin/five", os.path.abspath(FIVE))
        (tmp_path / name).write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "--user"] +
                       [str(tmp_path / n) for n in names],
                       capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "ExecStart=%s agent --foreground" % os.path.abspath(FIVE) in \
        (tmp_path / names[0]).read_text()
    assert "ListenStream=%t/five/agent.sock" in (tmp_path / names[1]).read_text()
