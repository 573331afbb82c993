"""End-to-end test harness: real fived and five binaries on 127.0.0.1.

Every server a test starts listens on an ephemeral loopback port and is
stopped, by its own process id, when the test ends.
"""

import base64
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

BUILD = os.environ.get("FIVE_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
FIVED = os.path.join(BUILD, "fived")
FIVE = os.path.join(BUILD, "five")
HELPERS = os.path.join(BUILD, "helpers")
SANITIZED = "/asan" in os.path.abspath(BUILD)
# Timing bounds stretch under AddressSanitizer.
SLOW = 3 if SANITIZED else 1


def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


class Fived:
    """A running fived with its own configuration file and audit log."""

    def __init__(self, tmp_path, config, args=(), name="fived", server="", env=None,
                 preexec_fn=None):
        self.dir = tmp_path
        self.server = server
        self.conf = tmp_path / (name + ".conf")
        self.audit = tmp_path / (name + ".audit")
        self.stderr_path = tmp_path / (name + ".stderr")
        self.key_file = tmp_path / (name + ".key")
        self.write_config(config)
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([FIVED, "-d", "-c", str(self.conf), *args],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr, env=env,
                                     preexec_fn=preexec_fn)
        self.addresses = wait_for(self._listening, what="fived to listen")
        self.port = next((int(a.rsplit(":", 1)[1]) for a in self.addresses
                          if a.startswith("tcp:127.0.0.1:")), None)

    def write_config(self, config):
        text = config.replace("@AUDIT@", str(self.audit))
        if "listen" not in text:
            text = "[server]\nlisten = tcp:127.0.0.1:0\naudit_log = %s\n%s\n" % (
                self.audit, self.server) + text
        # Every test server has a static key of its own.
        if "key_file" not in text:
            text = text.replace("[server]\n", "[server]\nkey_file = %s\n" % self.key_file, 1)
        # Run as root, the worker is nobody: exec programs need an account of their own.
        if "exec_user" not in text:
            text = text.replace("[server]\n", "[server]\nexec_user = daemon\n", 1)
        self.conf.write_text(text)

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def server_key(self):
        """The server's static public key, as a client that pinned it knows it."""
        if not hasattr(self, "_server_key"):
            out = subprocess.run([FIVED, "--print-key", "-c", str(self.conf)],
                                 capture_output=True, text=True, check=True).stdout
            self._server_key = base64.b64decode(out.split()[0], validate=True)
        return self._server_key

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("fived exited %d:\n%s" % (self.proc.returncode, self.log()))
        # "fived VERSION started" comes once every listener is open (at -d the monitor
        # also says "worker N started", before the worker listens).
        log = self.log()
        found = re.findall(r"listening on (\S+)", log)
        return found if found and re.search(r"fived \S+ started", log) else None

    def reload(self, config):
        before = self.log().count("reload")
        self.write_config(config)
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.log().count("reload") > before, what="reload")

    def events(self, kind=None):
        if not self.audit.exists():
            return []
        # A record being written (by another worker, say) is not whole yet: its line ends
        # with its newline.
        whole = self.audit.read_text().split("\n")[:-1]
        records = [json.loads(line) for line in whole if line]
        return [r for r in records if kind is None or r["event"] == kind]

    def worker_pid(self):
        """The process that holds the sessions: the worker its "worker runs as" line names
        (the latest, if the monitor restarted it), or fived itself when it has none."""
        found = re.findall(r"fived\[(\d+)\] info: privilege separation: worker runs as",
                           self.log())
        return int(found[-1]) if found else self.proc.pid

    def rss_kb(self):
        """The resident memory of the process that holds the sessions, in KiB."""
        with open("/proc/%d/status" % self.worker_pid()) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        log = self.log()
        assert "AddressSanitizer" not in log and "runtime error" not in log, log


@pytest.fixture(autouse=True)
def reachable_tmp(tmp_path):
    """Run as root, fived's worker is an unprivileged user: let it reach test files."""
    path = tmp_path
    while str(path) not in ("/", "/tmp"):
        os.chmod(path, 0o755)
        path = path.parent


@pytest.fixture(autouse=True)
def five_home(tmp_path, monkeypatch):
    """Each test's five has its own pinned keys and master secret."""
    monkeypatch.setenv("FIVE_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    monkeypatch.setenv("FIVE_IDENTITY_FILE", str(tmp_path / "identity"))


@pytest.fixture
def fived(tmp_path):
    started = []

    def start(config, args=(), name="fived", server="", env=None, preexec_fn=None):
        f = Fived(tmp_path, config, args, name, server, env, preexec_fn)
        started.append(f)
        return f

    yield start
    for f in started:
        f.stop()


def stop_listening(sock):
    """Closes a listening socket an accept loop runs on, waking the accept first (Linux
    ends it with EINVAL).  Closed under a thread still in accept, the descriptor's number
    goes to the next test's listener, and that thread was seen taking its connections
    (an echo sentinel answering for a counting one)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def serve_each(serve, lsock=None, backlog=16):
    """A listening socket on loopback (or lsock, already bound) whose every connection
    serve(conn) takes, each on a thread of its own; the caller stops it
    (stop_listening)."""
    if lsock is None:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
    lsock.listen(backlog)

    def accept():
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return lsock


def answer_then_reset(down, pause=0):
    """A backend that answers each connection's first bytes (the stream is granted by
    then) with down, and resets it pause seconds later; the caller stops it
    (stop_listening)."""

    def serve(conn):
        conn.recv(16)
        conn.sendall(down)
        time.sleep(pause * SLOW)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    return serve_each(serve)


class Sentinel:
    """A backend that counts every connection and byte it receives.

    mode: "echo" sends back what it reads, "silent" reads and says nothing,
    "count" answers "got N" after the client's end of stream, "proxy" records
    everything (a PROXY header included) and echoes the rest.
    """

    def __init__(self, mode="echo"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.bytes = 0
        self.received = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        data = bytearray()
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
                with self.lock:
                    self.bytes += len(chunk)
                if self.mode == "echo":
                    try:
                        conn.sendall(chunk)
                    except OSError:
                        break
            if self.mode == "count":
                try:
                    conn.sendall(b"got %d\n" % len(data))
                except OSError:
                    pass
        with self.lock:
            self.received.append(bytes(data))

    def close(self):
        self.running = False
        stop_listening(self.sock)


@pytest.fixture
def sentinel():
    made = []

    def make(mode="echo"):
        s = Sentinel(mode)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def connect(port, host="127.0.0.1", timeout=5):
    s = socket.create_connection((host, port), timeout=timeout * SLOW)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def connect_from(port, source):
    """A connection to fived on 127.0.0.1 from another loopback address."""
    c = socket.socket()
    c.bind((source, 0))
    c.settimeout(10 * SLOW)
    c.connect(("127.0.0.1", port))
    return c


@pytest.fixture
def world(tmp_path):
    """Users, keys and authorized_keys files for authentication tests (world.py)."""
    from world import World
    root = tmp_path / "world"
    root.mkdir()
    os.chmod(root, 0o755)
    return World(root)


def pubkey_login(f, world, user="alice", source="127.0.0.1"):
    """A plain text-dialect connection to fived f (allow_plaintext_pubkey) on which USER
    authenticated with the world's key for them."""
    from fivewire import load_key, parse_challenge, signature_line, signed_data, user_line
    sk, pk = load_key(world.keys[user])
    c = connect_from(f.port, source)
    c.sendall(b"AUTH pubkey\r\n" + user_line(user, pk))
    assert recv_line(c) == b"+ SUCCESS pubkey\r\n"
    sid, nonce = parse_challenge(recv_line(c))
    c.sendall(signature_line(sk, signed_data(sid, nonce, user, pk, server_key=f.server_key())))
    assert recv_line(c) == ("+ Authentication as %s successful\r\n" % user).encode()
    return c


def recv_all(s, limit=1 << 24):
    out = bytearray()
    while len(out) < limit:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def recv_line(s):
    out = bytearray()
    while not out.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def issue_token(f, world, request=b"TOKEN db"):
    """The token fived f issues to alice, logged in by her key, for a text-dialect request."""
    c = pubkey_login(f, world)
    c.sendall(request + b"\r\n")
    reply = recv_line(c)
    c.close()
    assert reply.startswith(b"+ TOKEN v4.") and reply.endswith(b"\r\n"), reply
    return reply[8:-2]


def exchange(port, data, shut=True):
    """Sends data, ends the write side, returns everything fived sends back."""
    with connect(port) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def run_five(*args, input=b"", timeout=10, env=None):
    return subprocess.run([FIVE, *args], input=input, capture_output=True,
                          timeout=timeout * SLOW, env=env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_ipv6_loopback():
    """Skips the calling test, saying why, unless a socket can be bound to ::1."""
    if not socket.has_ipv6:
        pytest.skip("IPv6 loopback unavailable: Python was built without IPv6")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.skip("IPv6 loopback unavailable: cannot bind ::1 (%s)" % (e.strerror or e))


class Process:
    """A third-party server started for one test, stopped by its pid."""

    def __init__(self, argv, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        self.proc = subprocess.Popen(argv, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def process():
    started = []

    def start(argv, **kw):
        p = Process(argv, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def wait_port(port, timeout=5.0):
    def ready():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    wait_for(ready, timeout, "port %d" % port)
