"""The client side of MULTIPLEX (docs/PROTOCOL.md section 11) against a real fived:
libfive's five_session_* calls and five -L --multiplex."""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest
from conftest import FIVE, HELPERS, SLOW, answer_then_reset, free_port, run_five, serve_each, \
    stop_listening, wait_for, wait_port
from test_delivery import blackhole

CONFIG = """
[service:echo]
backend = builtin:echo
[service:mute]
backend = tcp:127.0.0.1:%d
[service:web]
backend = tcp:127.0.0.1:%d
"""


class Mute:
    """A TCP backend that accepts and never answers, nor closes, until stopped."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        stop_listening(self.sock)
        for c in self.conns:
            c.close()


@pytest.fixture
def mute():
    m = Mute()
    yield m
    m.close()


@pytest.fixture
def web(tmp_path, process):
    """python3 -m http.server on a loopback port it chose; its port."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_bytes(b"hello through one session\n")
    log = tmp_path / "http.log"
    out = open(log, "wb")
    process(["/usr/bin/python3", "-u", "-m", "http.server", "--bind", "127.0.0.1",
             "--directory", str(tmp_path / "www"), "0"], stdout=out, stderr=out)
    found = wait_for(lambda: re.search(rb"port (\d+)", log.read_bytes()),
                     what="http.server to listen")
    return int(found.group(1))


def mux(*args, transport="tofu", timeout=30):
    env = dict(os.environ, LIBFIVE_TRANSPORT=transport)
    return subprocess.run([os.path.join(HELPERS, "libfive_mux"), *args], capture_output=True,
                          timeout=timeout * SLOW, env=env).stdout


def config(mute_port=1, web_port=1):
    return CONFIG % (mute_port, web_port)


def sessions_of(records):
    return {r["session"] for r in records}


@pytest.mark.parametrize("transport", ["tofu", "plain", "tls-tofu"])
def test_twenty_streams_one_session(fived, transport):
    """Twenty streams at once, each past its first window both ways, every byte checked;
    the audit log shows them all granted on one session."""
    f = fived(config())
    out = mux("127.0.0.1", str(f.port), "streams", "echo", "20", "300000",
              transport=transport)
    assert out == b"ok 20\n"
    granted = wait_for(lambda: len(f.events("stream_granted")) >= 20 and
                       f.events("stream_granted"), what="20 stream_granted records")
    assert len(granted) == 20
    assert len(sessions_of(granted)) == 1
    assert sorted(r["stream"] for r in granted) == list(range(1, 41, 2))
    # Each stream ended cleanly, both ways.
    ended = wait_for(lambda: len(f.events("stream_ended")) >= 20 and f.events("stream_ended"),
                     what="20 stream_ended records")
    assert sessions_of(ended) == sessions_of(granted)


def test_request_round_trip(fived):
    f = fived(config())
    assert mux("127.0.0.1", str(f.port), "request", "echo", "ping?", "5000") == b"ping?"


def test_refused_stream_says_why(fived):
    f = fived(config())
    assert mux("127.0.0.1", str(f.port), "open", "nosuch") == b"error refused: unknown service\n"


def test_request_timeout_cancels_the_stream(fived, mute):
    """A service that never answers: five_session_request gives up at its timeout and
    resets the stream, which fived reports ended."""
    f = fived(config(mute_port=mute.port))
    out = mux("127.0.0.1", str(f.port), "request", "mute", "anyone?", "500")
    assert out.startswith(b"error protocol: ") and b"timed out" in out
    granted = wait_for(lambda: f.events("stream_granted"), what="stream_granted")
    ended = wait_for(lambda: f.events("stream_ended"), what="stream_ended")
    assert ended[0]["stream"] == granted[0]["stream"] == 1
    assert ended[0]["session"] == granted[0]["session"]


def test_forwarder_shares_one_session(fived, process, web, tmp_path):
    """five -L --multiplex: two curl runs through one forwarder are two streams of one
    session."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    f = fived(config(web_port=web))
    port = free_port()
    errlog = open(tmp_path / "five.err", "wb")
    process([FIVE, "-p", str(f.port), "--multiplex", "-L", "127.0.0.1:%d" % port,
             "127.0.0.1", "web"], stderr=errlog)
    wait_port(port)
    for _ in range(2):
        r = subprocess.run(["curl", "-sS", "--max-time", str(10 * SLOW),
                            "http://127.0.0.1:%d/hello.txt" % port], capture_output=True)
        assert r.stdout == b"hello through one session\n", r.stderr
    granted = wait_for(lambda: len(f.events("stream_granted")) >= 3 and
                       f.events("stream_granted"), what="three streams")
    # The readiness probe was a stream too; every stream, one session.
    assert len(sessions_of(granted)) == 1
    assert len(f.events("granted")) == 0 or \
        sessions_of(f.events("granted")) <= sessions_of(granted)


def test_forwarder_falls_back_without_multiplex(fived, process, tmp_path):
    """A fived that does not multiplex: one session per connection, and five says so."""
    f = fived(config(), server="multiplex = no\n")
    port = free_port()
    errlog = tmp_path / "five.err"
    process([FIVE, "-p", str(f.port), "--multiplex", "-L", "127.0.0.1:%d" % port,
             "127.0.0.1", "echo"], stderr=open(errlog, "wb"))
    wait_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as c:
        c.sendall(b"one")
        c.shutdown(socket.SHUT_WR)
        assert c.recv(16) == b"one"
    wait_for(lambda: b"no multiplexed session (command not supported): one session per "
             b"connection" in errlog.read_bytes(), what="the fallback's note")


def test_multiplex_goes_with_forwarding():
    r = run_five("--multiplex", "127.0.0.1", "echo")
    assert r.returncode == 2 and b"--multiplex and --no-multiplex go with -L" in r.stderr


@pytest.fixture
def agent(tmp_path, monkeypatch):
    """five agent in a runtime directory of the test's; stopped (by its pid) at the end."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("FIVE_AGENT_SOCK", raising=False)
    pids = []

    def start(*args):
        r = run_five("agent", *args)
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode()
        m = re.match(r"FIVE_AGENT_SOCK=(\S+); export FIVE_AGENT_SOCK;\necho five agent pid (\d+);\n$",
                     out)
        assert m, out
        pids.append(int(m.group(2)))
        monkeypatch.setenv("FIVE_AGENT_SOCK", m.group(1))
        return m.group(1), int(m.group(2))

    yield start
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_agent_shares_one_session(fived, agent):
    f = fived(config())
    port = str(f.port)
    # The first contact pins the server's key: five does that itself, direct.
    assert run_five("-p", port, "127.0.0.1", "echo", input=b"pin").stdout == b"pin"
    path, _ = agent()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    for word in (b"one", b"two"):
        r = run_five("-p", port, "127.0.0.1", "echo", input=word)
        assert (r.returncode, r.stdout, r.stderr) == (0, word, b"")
    granted = wait_for(lambda: len(f.events("stream_granted")) >= 2 and
                       f.events("stream_granted"), what="two streams")
    assert len(granted) == 2 and len(sessions_of(granted)) == 1
    # A refusal through the agent is fived's, said as five says it.
    r = run_five("-p", port, "127.0.0.1", "nosuch")
    assert r.returncode == 5 and b"refused: unknown service" in r.stderr
    # --no-agent: a session of its own.
    before = len(f.events("granted"))
    assert run_five("--no-agent", "-p", port, "127.0.0.1", "echo", input=b"x").stdout == b"x"
    wait_for(lambda: len(f.events("granted")) == before + 1, what="a direct session")


def test_a_terminal_is_told_through_the_agent_too(fived, agent):
    """On a terminal, five through the agent says it is connected once fived granted the
    stream, as it does on a session of its own; a refusal is said instead."""
    from test_client import told_on_a_terminal
    f = fived(config())
    port = str(f.port)
    assert run_five("-p", port, "127.0.0.1", "echo", input=b"pin").stdout == b"pin"
    agent()
    told_on_a_terminal(port)
    wait_for(lambda: f.events("stream_granted"), what="the stream through the agent")


def one_connection(serve):
    """A listening socket on loopback whose first connection serve(conn) takes, on a
    thread of its own; the caller stops it (stop_listening)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def accept():
        conn, _ = lsock.accept()
        serve(conn)

    threading.Thread(target=accept, daemon=True).start()
    return lsock


def through_agent(fived, agent, service, lsock):
    """fived with service on lsock's backend, its key pinned, and an agent: (fived, port)."""
    f = fived(config() + "[service:%s]\nbackend = tcp:127.0.0.1:%d\n"
              % (service, lsock.getsockname()[1]))
    port = str(f.port)
    assert run_five("-p", port, "127.0.0.1", "echo", input=b"pin").stdout == b"pin"
    agent()
    return f, port


def test_agent_tells_a_reset_from_an_end(fived, agent):
    """A stream fived resets (its backend reset the connection) reaches five through the
    agent as a reset: five delivers what came before it, then fails saying so, instead of
    ending as a complete stream ends.  A Unix socket has no reset: the agent marks it."""

    def serve(conn):
        conn.recv(16)
        conn.sendall(b"partial")
        time.sleep(0.2 * SLOW)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    lsock = one_connection(serve)
    try:
        f, port = through_agent(fived, agent, "dies", lsock)
        r = run_five("-p", port, "127.0.0.1", "dies", input=b"go")
    finally:
        stop_listening(lsock)
    assert r.returncode != 0 and r.stdout == b"partial", r.stderr
    assert re.match(rb"five: 127.0.0.1 dies: connect: stream reset: \S", r.stderr), r.stderr
    assert len(sessions_of(f.events("stream_granted"))) == 1
    # A stream that ends is still an end, through the same agent's session.
    r = run_five("-p", port, "127.0.0.1", "echo", input=b"whole")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"whole", b"")


def reset_after(n):
    """A backend's serve: reads n bytes (0: none), then resets the connection."""

    def serve(conn):
        got = 0
        while got < n:
            data = conn.recv(65536)
            if not data:
                break
            got += len(data)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    return serve


def feed(p, limit):
    """Writes up to limit bytes to p's standard input, on a thread, until p stops reading."""

    def write():
        chunk = b"u" * 65536
        try:
            for _ in range(limit // len(chunk)):
                p.stdin.write(chunk)
            p.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_agent_tells_a_reset_during_an_upload(fived, agent):
    """A backend that resets the stream while five is still sending to it: five stops
    sending and says why the stream ended (the reset and fived's reason), as it does
    when the reset comes while it only reads; not the failed send that follows it."""
    lsock = serve_each(reset_after(256 * 1024))
    try:
        f, port = through_agent(fived, agent, "cuts", lsock)
        for _ in range(4):
            p = subprocess.Popen([FIVE, "-p", port, "127.0.0.1", "cuts"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            t = feed(p, 64 * 1024 * 1024)
            err = p.communicate(timeout=30 * SLOW)[1]
            t.join()
            assert p.returncode == 4, err
            assert re.match(rb"five: 127.0.0.1 cuts: connect: stream reset: \S", err), err
    finally:
        stop_listening(lsock)


def test_agent_answers_before_a_reset_that_came_with_the_grant(fived, agent):
    """A backend that takes the connection and resets it at once: fived's grant and its
    reset reach the agent together, and five hears the grant, then the reset; the reset
    does not take the grant's line with it (five would say the connection closed before
    a reply).  (A reset that beats fived's connect is a refusal: service unavailable.)"""
    lsock = serve_each(reset_after(0))
    try:
        f, port = through_agent(fived, agent, "drops", lsock)
        for _ in range(6):
            r = run_five("-p", port, "127.0.0.1", "drops", input=b"")
            assert re.match(rb"five: 127.0.0.1 drops: (connect: stream reset: \S|"
                            rb"refused: service unavailable\n)", r.stderr), r.stderr
            assert r.returncode == (4 if b"stream reset" in r.stderr else 5), r.stderr
    finally:
        stop_listening(lsock)


def test_agent_delivers_what_came_before_a_reset_and_keeps_its_window(fived, agent):
    """Through the agent, a stream fived resets right behind its bytes: five writes out
    every byte fived sent, then fails with the reset, as direct.  The bytes the agent held
    count as taken, for the session's window: after many such streams, the session still
    carries the others (it once stopped, every stream waiting for credit)."""
    down = os.urandom(100000)
    lsock = answer_then_reset(down)
    try:
        f, port = through_agent(fived, agent, "cut", lsock)
        for i in range(16):
            r = run_five("-p", port, "127.0.0.1", "cut", input=b"go", timeout=20)
            assert r.returncode == 4, r.stderr
            assert re.match(rb"five: 127.0.0.1 cut: connect: stream reset: \S", r.stderr), \
                r.stderr
            ended = wait_for(lambda: len(f.events("stream_ended")) > i and
                             f.events("stream_ended"), what="the stream's record")[i]
            assert r.stdout == down[:ended["bytes_out"]], (i, len(r.stdout), ended)
    finally:
        stop_listening(lsock)
    r = run_five("-p", port, "127.0.0.1", "echo", input=b"x" * 3000000, timeout=20)
    assert r.returncode == 0 and r.stdout == b"x" * 3000000, r.stderr


def test_a_terminated_agent_ends_its_sessions(fived, agent):
    """SIGTERM, a service manager's stop, stops the agent as five agent -k does: its
    session ends with fived, instead of waiting there, detached, for the agent's return."""
    f = fived(config())
    port = str(f.port)
    assert run_five("-p", port, "127.0.0.1", "echo", input=b"pin").stdout == b"pin"
    _, pid = agent()
    assert run_five("-p", port, "127.0.0.1", "echo", input=b"one").stdout == b"one"
    os.kill(pid, signal.SIGTERM)
    closed = wait_for(lambda: len(f.events("closed")) == 2 and f.events("closed"),
                      what="the agent's session to end")
    assert closed[1]["reason"] != "detached" and not f.events("detached"), closed


def test_the_agents_death_is_no_end_of_stream(fived, agent):
    """Every end the agent passes on is marked, an end in order too: when the agent dies
    mid-stream, five's stream ends without a mark, and five fails instead of taking what
    it had for the whole stream."""
    started = threading.Event()

    def serve(conn):
        conn.recv(16)
        conn.sendall(b"first part\n")
        started.wait(30 * SLOW)
        time.sleep(2 * SLOW)
        conn.close()

    lsock = one_connection(serve)
    try:
        f = fived(config() + "[service:long]\nbackend = tcp:127.0.0.1:%d\n"
                  % lsock.getsockname()[1])
        port = str(f.port)
        assert run_five("-p", port, "127.0.0.1", "echo", input=b"pin").stdout == b"pin"
        _, pid = agent()
        p = subprocess.Popen([FIVE, "-p", port, "127.0.0.1", "long"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(b"go")
        p.stdin.close()
        assert p.stdout.readline() == b"first part\n"
        os.kill(pid, signal.SIGKILL)
        started.set()
        p.wait(timeout=20 * SLOW)
        err = p.stderr.read()
    finally:
        stop_listening(lsock)
    assert p.returncode == 4, err
    assert err == b"five: 127.0.0.1 long: connect: the agent's stream ended without its end " \
                  b"(the agent died?)\n", err


def test_agent_resets_the_stream_of_a_five_killed_mid_upload(fived, agent):
    """five(1): a five killed mid-stream leaves its stream cut, and its service sees a
    reset, through the agent as when direct: five marks the end of its input, and an end
    without the mark resets the stream."""
    seen = []

    def serve(conn):
        n = 0
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    seen.append(("end", n))
                    return
                n += len(data)
        except ConnectionResetError:
            seen.append(("reset", n))

    lsock = one_connection(serve)
    try:
        f, port = through_agent(fived, agent, "sink", lsock)
        p = subprocess.Popen([FIVE, "-p", port, "127.0.0.1", "sink"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.stdin.write(b"x" * 200000)
        p.stdin.flush()
        wait_for(lambda: f.events("stream_granted"), what="the stream")
        time.sleep(0.3 * SLOW)
        p.kill()
        p.wait()
        wait_for(lambda: seen, what="the service's end")
    finally:
        stop_listening(lsock)
    assert seen[0][0] == "reset", seen
    ended = wait_for(lambda: [e for e in f.events("stream_ended") if e["service"] == "sink"],
                     what="the stream's record")
    assert ended[0]["reason"] != "done", ended


def test_agent_cancels_the_open_of_a_five_that_went_away(fived, agent):
    """A five killed while its stream waits for fived's answer (a backend slow to take
    the connection) has its OPEN cancelled at once: it does not hold one of the
    session's pending places until connect_timeout."""
    port, fillers = blackhole()
    f = fived(CONFIG % (1, 1) + "[service:slow]\nbackend = tcp:127.0.0.1:%d\n"
              "connect_timeout = 20\n" % port)
    assert run_five("-p", str(f.port), "127.0.0.1", "echo", input=b"pin").stdout == b"pin"
    agent()
    p = subprocess.Popen([FIVE, "-p", str(f.port), "127.0.0.1", "slow"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.5 * SLOW)  # its OPEN sent, its backend's connect waiting
    p.kill()
    p.wait()
    killed = time.monotonic()
    ended = wait_for(lambda: [e for e in f.events("stream_ended") if e["service"] == "slow"],
                     what="the stream's end")
    assert ended[0]["reason"] == "client reset the stream" and ended[0]["accepted"] is False
    assert time.monotonic() - killed < 5 * SLOW
    for c in fillers:
        c.close()


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """An XDG_RUNTIME_DIR of the test's, as a user's systemd would make it; the agent's path."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    path = runtime / "five" / "agent.sock"
    monkeypatch.setenv("FIVE_AGENT_SOCK", str(path))
    return path


def test_agent_in_the_foreground(fived, process, runtime):
    """five agent --foreground: no fork, nothing printed; SIGTERM removes its socket."""
    f = fived(config())
    port = str(f.port)
    run_five("-p", port, "127.0.0.1", "echo", input=b"pin")
    agent = process([FIVE, "agent", "--foreground"], stdout=subprocess.PIPE).proc
    wait_for(lambda: runtime.exists(), what="the agent's socket")
    assert oct(os.stat(runtime).st_mode & 0o777) == "0o600"
    r = run_five("agent", "--foreground")
    assert r.returncode != 0 and b"already running on %s" % bytes(runtime) in r.stderr
    assert run_five("-p", port, "127.0.0.1", "echo", input=b"one").stdout == b"one"
    wait_for(lambda: len(f.events("stream_granted")) == 1, what="a stream through the agent")
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(5 * SLOW) == 0 and agent.stdout.read() == b""
    assert not runtime.exists()


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate missing (package systemd)")
def test_agent_socket_activation(fived, process, runtime):
    """As five-agent.socket starts it: the agent serves the socket it is handed and,
    stopped, leaves it where it is, for the next start."""
    f = fived(config())
    port = str(f.port)
    run_five("-p", port, "127.0.0.1", "echo", input=b"pin")
    runtime.parent.mkdir(mode=0o700)
    err = runtime.parent.parent / "activate.stderr"
    with open(err, "wb") as log:
        # It passes on only the environment it is told to, as a user's systemd passes
        # on its own: the agent serves only requests for its files.
        activator = process(["systemd-socket-activate", "-l", str(runtime),
                             "-E", "FIVE_KNOWN_HOSTS", "-E", "FIVE_IDENTITY_FILE", "-E", "HOME",
                             "-E", "XDG_RUNTIME_DIR", FIVE, "agent", "--foreground"],
                            stderr=log).proc
    wait_for(lambda: b"Listening on" in err.read_bytes(), what="systemd-socket-activate")
    for word in (b"one", b"two"):
        r = run_five("-p", port, "127.0.0.1", "echo", input=word)
        assert (r.returncode, r.stdout, r.stderr) == (0, word, b"")
    granted = wait_for(lambda: len(f.events("stream_granted")) >= 2 and
                       f.events("stream_granted"), what="two streams")
    assert len(sessions_of(granted)) == 1
    r = run_five("agent", "-k")
    assert r.returncode == 0, r.stderr
    assert activator.wait(5 * SLOW) == 0
    assert runtime.exists()


def test_without_the_agent_five_goes_direct(fived, agent):
    f = fived(config())
    port = str(f.port)
    run_five("-p", port, "127.0.0.1", "echo", input=b"pin")
    path, pid = agent()
    r = run_five("agent", "-k")
    assert r.returncode == 0 and r.stdout == b"unset FIVE_AGENT_SOCK;\n"
    wait_for(lambda: not os.path.exists(path), what="the agent's socket to go")
    # FIVE_AGENT_SOCK still names it: five goes direct, silently.
    r = run_five("-p", port, "127.0.0.1", "echo", input=b"direct")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"direct", b"")
    assert len(f.events("stream_granted")) == 0


def test_agent_goes_direct_for_a_password(fived, agent):
    """The agent cannot prompt: a request that may need a password does not go to it."""
    f = fived(config())
    port = str(f.port)
    run_five("-p", port, "127.0.0.1", "echo", input=b"pin")
    agent()
    run_five("-a", "password", "-p", port, "127.0.0.1", "echo", input=b"x")
    assert len(f.events("stream_granted")) == 0


def test_ssh_through_a_shared_forwarder_and_the_agent(fived, process, agent, tmp_path):
    """OpenSSH twice through five --multiplex -L, then twice as ProxyCommand through the
    agent: each pair of logins is two streams of one session."""
    from test_interop import start_sshd
    sshd_port, keys = start_sshd(tmp_path, process)
    f = fived("[service:ssh]\nbackend = tcp:127.0.0.1:%d\n" % sshd_port)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    base = ["ssh", "-F", "/dev/null", "-i", str(keys / "user"), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=%s" % (tmp_path / "kh")]
    local = free_port()
    process([FIVE, "-p", str(f.port), "--multiplex", "-L", "127.0.0.1:%d" % local,
             "127.0.0.1", "ssh"])
    wait_port(local)
    for _ in range(2):
        r = subprocess.run(base + ["-p", str(local), "%s@127.0.0.1" % user, "echo forwarded"],
                           capture_output=True, text=True, timeout=30 * SLOW)
        assert (r.returncode, r.stdout) == (0, "forwarded\n"), r.stderr
    forwarded = sessions_of(f.events("stream_granted"))
    assert len(forwarded) == 1
    # The first contact pins the key, direct; then the agent carries both logins.
    run_five("-p", str(f.port), "127.0.0.1", "ssh")
    agent()
    proxy = "%s -p %d %%h ssh" % (FIVE, f.port)
    for _ in range(2):
        r = subprocess.run(base + ["-o", "ProxyCommand=" + proxy, "%s@127.0.0.1" % user,
                                   "echo via the agent"],
                           capture_output=True, text=True, timeout=30 * SLOW)
        assert (r.returncode, r.stdout) == (0, "via the agent\n"), r.stderr
    through_agent = sessions_of(f.events("stream_granted")) - forwarded
    assert len(through_agent) == 1
    assert len([r for r in f.events("stream_granted")
                if r["session"] in through_agent]) == 2
