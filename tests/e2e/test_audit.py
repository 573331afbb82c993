"""The audit log on a full file system: only whole records in the file,
every loss reported, and with audit_required no session it cannot record."""

import errno
import json
import os
import re
import subprocess
import time

import pytest

from conftest import exchange, wait_for

CONFIG = """[server]
listen = tcp:127.0.0.1:0
audit_log = %s
%s
[service:echo]
backend = builtin:echo
"""

BUSY = b"- server busy\r\n"


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs, mounted for the test and unmounted after it."""
    path = tmp_path / "small"
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs",
                        str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs to fill (%s)" % (r.stderr.strip() or "mount failed"))
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path):
    """Fills the file system holding path with a file of zeros; returns that file."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    # What is left of the last page, a byte at a time.
    try:
        while True:
            os.write(fd, b"\0")
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    os.close(fd)
    return filler


def settled(log):
    """The audit log once fived has stopped writing to it: two reads 50 ms apart agree.
    A read that races a record being taken back can see the page tail the truncation
    zeroes (the file never holds it), so a single read proves nothing."""
    seen = [None]

    def same():
        time.sleep(0.05)
        text = log.read_bytes()
        stable, seen[0] = text == seen[0], text
        return stable

    wait_for(same, what="the audit log to settle")
    return seen[0]


def records(log):
    """Every line of the audit log, parsed: a line that is not whole JSON fails."""
    text = settled(log)
    assert text == b"" or text.endswith(b"\n"), text[-200:]
    out = []
    for n, line in enumerate(text.split(b"\n")[:-1], 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError("line %d of the audit log is not a record: %r" % (n, line))
    return out


LOST = re.compile(r" error: audit log \S+: .*?(\d+) records? lost")


def test_full_disk_leaves_only_whole_records_and_reports_losses(small_fs, fived):
    log = small_fs / "audit.json"
    f = fived(CONFIG % (log, ""))
    assert exchange(f.port, b"echo\r\nhi") == b"+\r\nhi"
    fill(small_fs)
    # Without audit_required sessions go on: their records are lost, not cut.
    for _ in range(40):
        assert exchange(f.port, b"echo\r\nhi") == b"+\r\nhi"
    kept = records(log)
    assert kept and kept[0]["event"] == "accepted"
    wait_for(lambda: LOST.search(f.log()), what="the loss to be logged")
    # 41 sessions wrote or lost three records each.
    lost = sum(int(n) for n in LOST.findall(f.log()))
    assert 0 < lost <= 123 - len(kept)


def test_audit_required_refuses_sessions_until_records_can_be_written(small_fs, fived):
    log = small_fs / "audit.json"
    f = fived(CONFIG % (log, "audit_required = yes"))
    assert exchange(f.port, b"echo\r\nhi") == b"+\r\nhi"
    filler = fill(small_fs)
    replies = [exchange(f.port, b"echo\r\nhi") for _ in range(30)]
    assert BUSY in replies, replies
    # Once the log is full, no session is granted that could not be recorded.
    first = replies.index(BUSY)
    assert all(r == BUSY for r in replies[first:]), replies
    assert all(r in (BUSY, b"+\r\nhi") for r in replies), replies
    wait_for(lambda: "refusing new sessions" in f.log(), what="the refusals to be logged")
    records(log)
    os.unlink(filler)
    # The next session's first record can be written: fived serves again.
    assert exchange(f.port, b"echo\r\nhi") == b"+\r\nhi"
    wait_for(lambda: "accepting new sessions again" in f.log(), what="the resumption to be logged")
    kept = records(log)
    assert kept[-1]["event"] in ("granted", "closed")
