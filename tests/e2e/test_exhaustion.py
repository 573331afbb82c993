"""fived out of something: a backend that is down, descriptors.  Clients
are answered, the log says so without flooding, and fived recovers."""

import os
import re
import resource
import select
import time

from conftest import SLOW, connect, exchange, free_port, wait_for

ECHO = "[service:echo]\nbackend = builtin:echo\n"
BUSY = b"- server busy\r\n"


def test_backend_down_warnings_are_rate_limited(fived):
    f = fived("[service:down]\nbackend = tcp:127.0.0.1:%d\n" % free_port())
    start = time.monotonic()
    for _ in range(500):
        assert exchange(f.port, b"down\r\n") == b"- service unavailable\r\n"
    seconds = time.monotonic() - start

    def said():
        lines = f.log().splitlines()
        warned = [ln for ln in lines if " warning: " in ln and "service down: backend" in ln]
        counts = [int(n) for ln in lines
                  for n in re.findall(r" warning: backend failure warnings: (\d+) suppressed", ln)]
        return warned, counts

    # Every failure is either a line of its own or counted in a summary.
    wait_for(lambda: len(said()[0]) + sum(said()[1]) == 500, timeout=5,
             what="500 failures to be accounted for")
    warned, counts = said()
    # At most 20 lines a second: a handful for 500 failures.
    assert 0 < len(warned) <= 20 * (int(seconds) + 2), (len(warned), seconds)
    assert counts


def limit_descriptors(n):
    def set_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return set_limit


def cpu_seconds(pid):
    """CPU time of a process and its children (fived's monitor and worker)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
            except OSError:
                pass
    total = 0
    for p in pids:
        with open("/proc/%d/stat" % p) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def answered(conns):
    """The connections fived answered (and closed), with what it said; a reset fails."""
    readable, _, _ = select.select(conns, [], [], 0)
    out = {}
    for c in readable:
        data = b""
        while True:
            chunk = c.recv(4096)  # ConnectionResetError: a reset instead of a reply
            if not chunk:
                break
            data += chunk
        out[c] = data
    return out


def test_out_of_descriptors_answers_busy_and_recovers(fived):
    f = fived(ECHO, server="max_per_source = 1000", preexec_fn=limit_descriptors(64))
    assert exchange(f.port, b"echo\r\nok") == b"+\r\nok"
    conns = [connect(f.port) for _ in range(80)]
    time.sleep(0.5 * SLOW)
    replies = answered(conns)
    held = [c for c in conns if c not in replies]
    # Some connections are held (their sessions wait for a request), the rest refused.
    assert held and replies, (len(held), len(replies))
    assert set(replies.values()) == {BUSY}, set(replies.values())
    # A flood of refusals: each answered, the log rate-limited.  (The
    # request may reach fived after it closed: the reply is read all the same.)
    for _ in range(100):
        with connect(f.port) as c:
            c.sendall(b"echo\r\nhi")
            assert c.recv(100) == BUSY
    refused = len(replies) + 100

    def said():
        lines = f.log().splitlines()
        shortage = [ln for ln in lines if " error: out of descriptors" in ln]
        counts = [int(n) for ln in lines
                  for n in re.findall(r" descriptor shortage messages: (\d+) suppressed", ln)]
        return shortage, counts

    # Each refusal is logged, or counted in a summary once the second is over.
    wait_for(lambda: len(said()[0]) + sum(said()[1]) == refused, what="the shortage to be said")
    shortage, counts = said()
    assert 0 < len(shortage) < refused and counts, (len(shortage), refused)
    # At the limit, with nothing to do, fived is idle.
    before = cpu_seconds(f.proc.pid)
    time.sleep(1)
    assert cpu_seconds(f.proc.pid) - before < 0.2
    for c in conns:
        c.close()
    wait_for(lambda: exchange(f.port, b"echo\r\nok") == b"+\r\nok", what="fived to serve again")
