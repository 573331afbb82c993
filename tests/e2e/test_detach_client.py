"""The client side of DETACHABLE and ATTACH (docs/PROTOCOL.md section 12) against a real
fived, through a relay that cuts every connection it carries (cutrelay.py): five
--detachable on standard input and output, five -L --detachable, the agent's sessions."""

import hashlib
import os
import re
import select
import socket
import subprocess
import threading
import time

import pytest
from conftest import FIVE, SLOW, free_port, run_five, wait_for, wait_port
from cutrelay import CutRelay

ECHO = "[service:echo]\nbackend = builtin:echo\n"
BULK = 100 * 1024 * 1024


@pytest.fixture
def relay():
    made = []

    def make(port):
        r = CutRelay(port)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def attached_times(stderr):
    """The milliseconds five took to attach again, as it says on standard error."""
    return [int(m) for m in re.findall(rb"attached again, after (\d+) ms", stderr)]


def test_bulk_both_ways_across_three_cuts(fived, relay, tmp_path):
    """100 MB through builtin:echo, both ways at once, while the relay cuts the connection
    three times: what comes back is what went, byte for byte."""
    f = fived(ECHO)
    r = relay(f.port)
    src = tmp_path / "in.bin"
    with open(src, "wb") as out:
        for i in range(BULK // (1 << 20)):
            out.write(hashlib.sha256(b"%d" % i).digest() * (1 << 15))
    r.cut_at(50 << 20, 60 << 20, 60 << 20)
    start = time.monotonic()
    with open(src, "rb") as stdin, open(tmp_path / "out.bin", "wb") as stdout:
        p = subprocess.run([FIVE, "--detachable", "-p", str(r.port), "127.0.0.1", "echo"],
                           stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                           timeout=120 * SLOW)
    took = time.monotonic() - start
    assert p.returncode == 0, p.stderr
    assert r.cuts == 3, (r.cuts, r.total)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert hashlib.sha256((tmp_path / "out.bin").read_bytes()).hexdigest() == digest
    times = attached_times(p.stderr)
    assert len(times) == 3, p.stderr
    # The sessions after the first cut came from another address: roaming (attach_from any).
    assert r.sources[0] == "127.0.0.1" and set(r.sources[1:]) == {"127.0.0.2"}
    print("100 MB each way in %.1f s; attached again after %s ms" % (took, times))


def test_detach_timeout_ends_the_session(fived, relay):
    """fived keeps a detached session 2 s: past it, five says why and ends with the connect
    step's exit code."""
    f = fived(ECHO, server="detach_timeout = 2s\n")
    r = relay(f.port)
    p = subprocess.Popen([FIVE, "--detachable", "-p", str(r.port), "127.0.0.1", "echo"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"before\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"before\n"
        r.down()
        start = time.monotonic()
        p.wait(15 * SLOW)
        took = time.monotonic() - start
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert p.returncode == 4, err
    assert b"could not be attached again within its detach timeout, 2 s" in err, err
    assert took < 6 * SLOW, took


def keep_writing(pipe):
    """Writes to pipe until it breaks."""
    try:
        while True:
            pipe.write(b"x" * 4096)
            pipe.flush()
    except (OSError, ValueError):
        pass


def test_a_refused_attach_is_told_with_fived_s_reason(fived, relay):
    """fived's worker dies, and the detached session with it (fived(8)): five's ATTACH
    is answered "- unknown session", and five says so, with status 5 (a refusal), not
    the reset its stream saw as the session ended."""
    f = fived(ECHO)
    r = relay(f.port)
    p = subprocess.Popen([FIVE, "--detachable", "-p", str(r.port), "127.0.0.1", "echo"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"before\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"before\n"
        # Bytes in flight both ways when the session dies, as in real use.
        pump = threading.Thread(target=keep_writing, args=(p.stdin,), daemon=True)
        drain = threading.Thread(target=p.stdout.read, daemon=True)
        pump.start()
        drain.start()
        time.sleep(0.2)
        worker = f.worker_pid()
        assert worker != f.proc.pid, "no worker: this test needs privilege separation"
        os.kill(worker, 9)
        wait_for(lambda: f.worker_pid() != worker, timeout=10, what="a new worker")
        p.wait(20 * SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert p.returncode == 5, err
    assert b"could not be attached again: unknown session" in err, err


def test_refused_detachable_still_serves(fived, relay):
    """A fived with detachable = no refuses DETACHABLE: the session goes on, not detachable,
    and five says so."""
    f = fived(ECHO, server="detachable = no\n")
    p = run_five("--detachable", "-p", str(f.port), "127.0.0.1", "echo",
                 input=b"still served\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"still served\n"
    assert b"fived refused to make the session detachable (not permitted)" in p.stderr


def test_detachable_goes_with_a_session(fived):
    f = fived(ECHO)
    for args in (["--usp"], ["-w"], ["--no-multiplex", "-L", "1"], ["list"]):
        p = run_five("--detachable", *args, "-p", str(f.port), "127.0.0.1",
                     *(["echo"] if args != ["list"] else []))
        assert p.returncode == 2, (args, p.stderr)
    assert run_five("agent", "--no-detachable", "x").returncode == 2


def test_ssh_survives_a_twenty_second_cut(fived, relay, tmp_path, process):
    """An ssh session through five --detachable: the relay is down for 20 s; the same shell
    (its $$) runs the next command."""
    from test_interop import ssh_args, start_sshd
    sshd_port, keys = start_sshd(tmp_path, process)
    f = fived("[service:ssh]\nbackend = tcp:127.0.0.1:%d\n" % sshd_port)
    r = relay(f.port)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    proxy = "%s --detachable -p %d %%h ssh" % (FIVE, r.port)
    p = subprocess.Popen(ssh_args(keys, proxy, tmp_path) + ["-T", "%s@127.0.0.1" % user, "sh"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)

    def ask(command, timeout):
        p.stdin.write(command + b"\n")
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        assert ready, "no answer to %r in %s s" % (command, timeout)
        return p.stdout.readline()

    try:
        before = ask(b"echo $$", 30 * SLOW)
        assert re.fullmatch(rb"\d+\n", before), before
        r.down()
        time.sleep(20)
        r.up()
        start = time.monotonic()
        after = ask(b"echo $$", 30 * SLOW)
        took = time.monotonic() - start
        assert after == before
        p.stdin.close()
        p.wait(15 * SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert p.returncode == 0, err
    assert r.cuts == 1 and r.connections >= 2
    print("the shell answered %.1f s after the relay came back; %s" %
          (took, attached_times(err)))


@pytest.fixture
def big_web(tmp_path, process):
    """python3 -m http.server serving big.bin (8 MB); its port and the file's digest."""
    www = tmp_path / "www"
    www.mkdir()
    data = os.urandom(8 << 20)
    (www / "big.bin").write_bytes(data)
    port = free_port()
    process(["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", str(port),
             "--directory", str(www)])
    wait_port(port)
    return port, hashlib.sha256(data).hexdigest()


def test_curl_through_a_detachable_forwarder(fived, relay, big_web, process, tmp_path):
    """curl through five -L --detachable, downloading slowly while the relay cuts: the
    download completes, the same bytes."""
    from test_interop import need
    need("curl")
    web_port, digest = big_web
    f = fived("[service:web]\nbackend = tcp:127.0.0.1:%d\n" % web_port)
    r = relay(f.port)
    local = free_port()
    log = open(tmp_path / "forward.log", "wb")
    process([FIVE, "--detachable", "-p", str(r.port), "-L", "127.0.0.1:%d" % local,
             "127.0.0.1", "web"], stderr=log)
    wait_port(local)
    r.cut_at(3 << 20)
    out = tmp_path / "got.bin"
    c = subprocess.run(["curl", "-sS", "--limit-rate", "4M", "-o", str(out),
                        "http://127.0.0.1:%d/big.bin" % local],
                       capture_output=True, timeout=60 * SLOW)
    assert c.returncode == 0, c.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert r.cuts == 1
    wait_for(lambda: attached_times((tmp_path / "forward.log").read_bytes()),
             what="five -L to say it attached again")


def test_the_agents_session_survives_a_cut(fived, relay, big_web, tmp_path, monkeypatch):
    """A download through five and the agent (whose sessions are detachable): the relay
    cuts in the middle; the bytes are whole."""
    web_port, digest = big_web
    f = fived("[service:web]\nbackend = tcp:127.0.0.1:%d\n" % web_port)
    r = relay(f.port)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("FIVE_AGENT_SOCK", raising=False)
    # The first contact pins the key, direct; the agent pins nothing itself.
    run_five("--no-agent", "-p", str(r.port), "127.0.0.1", "web")
    out = run_five("agent")
    assert out.returncode == 0, out.stderr
    m = re.match(rb"FIVE_AGENT_SOCK=(\S+); export FIVE_AGENT_SOCK;\necho five agent pid (\d+);",
                 out.stdout)
    pid = int(m.group(2))
    try:
        env = dict(os.environ, FIVE_AGENT_SOCK=m.group(1).decode())
        r.cut_at(3 << 20)
        got = subprocess.run([FIVE, "-p", str(r.port), "127.0.0.1", "web"],
                             input=b"GET /big.bin HTTP/1.0\r\n\r\n", capture_output=True,
                             timeout=60 * SLOW, env=env)
        assert got.returncode == 0, got.stderr
        body = got.stdout.split(b"\r\n\r\n", 1)[1]
        assert hashlib.sha256(body).hexdigest() == digest
        assert r.cuts == 1
        # The download was one stream of the agent's session, on both connections.
        assert len(f.events("stream_granted")) == 1
    finally:
        os.kill(pid, 15)
