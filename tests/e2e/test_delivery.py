"""Delivery to backends: TCP, Unix, exec; pipelining, half-close, PROXY headers."""

import ctypes
import os
import signal
import socket
import struct
import threading
import time

import pytest

from conftest import (SANITIZED, SLOW, connect, exchange, free_port, need_ipv6_loopback,
                      recv_all, recv_line, wait_for)
from fivewire import parse_proxy_v2
from world import NSS_WRAPPER


def test_tcp_backend_gets_pipelined_bytes_in_order(fived, sentinel):
    s = sentinel("echo")
    f = fived("[service:web]\nbackend = tcp:127.0.0.1:%d\n" % s.port)
    assert exchange(f.port, b"web\r\nfirst bytes") == b"+\r\nfirst bytes"
    wait_for(lambda: s.received, what="backend to finish")
    assert s.received == [b"first bytes"]


@pytest.mark.parametrize("first", ["127.0.0.2", "::1"])
@pytest.mark.skipif(SANITIZED, reason="nss_wrapper's getaddrinfo dlopens libc with "
                                      "RTLD_DEEPBIND, which AddressSanitizer refuses")
def test_backend_by_name_tries_each_address(fived, sentinel, tmp_path, first):
    """The backend's name has two addresses (from nss_wrapper, whatever the machine's
    own names are): first one that refuses, then 127.0.0.1, where the backend listens.
    fived goes on to the second.  nss_wrapper's hosts file is outside the worker's
    chroot, so this worker has none."""
    if first == "::1":
        need_ipv6_loopback()
    s = sentinel("echo")
    hosts = tmp_path / "hosts"
    hosts.write_text("%s two.test\n127.0.0.1 two.test\n" % first)
    hosts.chmod(0o644)
    env = dict(os.environ, LD_PRELOAD=NSS_WRAPPER, NSS_WRAPPER_HOSTS=str(hosts),
               ASAN_OPTIONS="verify_asan_link_order=0")
    f = fived("[service:web]\nbackend = tcp:two.test:%d\n" % s.port, env=env,
              server="chroot = none\n")
    assert exchange(f.port, b"web\r\nhi") == b"+\r\nhi"
    wait_for(lambda: s.received, what="the backend's stream to end")
    assert s.connections == 1 and s.received == [b"hi"]


def test_backend_by_name_in_the_chroot(fived, sentinel):
    """Confined, the worker still resolves names: /etc/hosts is copied into its chroot."""
    with open("/etc/hosts") as f:
        if not any("localhost" in line.split()[1:] and line.split()[0] == "127.0.0.1"
                   for line in f if line.strip() and not line.startswith("#")):
            pytest.skip("/etc/hosts does not name localhost 127.0.0.1")
    s = sentinel("echo")
    f = fived("[service:web]\nbackend = tcp:localhost:%d\n" % s.port)
    assert exchange(f.port, b"web\r\nhi") == b"+\r\nhi"


def hosts_file_of_its_own(path):
    """A preexec_fn: the child sees path as /etc/hosts, in a mount namespace of its own."""
    libc = ctypes.CDLL(None, use_errno=True)
    ms_rec, ms_private, ms_bind, clone_newns = 0x4000, 0x40000, 0x1000, 0x20000

    def enter():
        if (libc.unshare(clone_newns) != 0
                or libc.mount(None, b"/", None, ms_rec | ms_private, None) != 0
                or libc.mount(str(path).encode(), b"/etc/hosts", None, ms_bind, None) != 0):
            raise OSError(ctypes.get_errno(), "cannot give fived a hosts file of its own")
    return enter


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a mount namespace")
def test_backend_name_with_several_addresses_when_confined(fived, sentinel, tmp_path):
    """A name with several addresses makes the resolver sort them (RFC 6724), which asks
    the kernel over netlink: the confined worker must survive it, and reach the one
    address that answers."""
    s = sentinel("echo")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.2 fivedmulti.test\n"
                     "127.0.0.1 fivedmulti.test\n")
    f = fived("[service:multi]\nbackend = tcp:fivedmulti.test:%d\n" % s.port,
              preexec_fn=hosts_file_of_its_own(hosts))
    for _ in range(3):
        assert exchange(f.port, b"multi\r\nhi") == b"+\r\nhi"
    assert "its sessions are lost" not in f.log(), f.log()


def test_unix_backend(fived, tmp_path):
    path = str(tmp_path / "backend.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    os.chmod(path, 0o666)
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(b"unix says " + conn.recv(100))
    threading.Thread(target=serve, daemon=True).start()
    f = fived("[service:local]\nbackend = unix:%s\n" % path)
    assert exchange(f.port, b"local\r\nhello") == b"+\r\nunix says hello"
    srv.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: privilege separation")
def test_a_unix_backend_only_root_may_reach_stays_out_of_reach(fived, tmp_path):
    """The monitor connects to unix: backends as the worker's account would (fived(8)): a
    socket only root may use is not reached through fived."""
    path = str(tmp_path / "rootonly.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    os.chmod(path, 0o600)
    srv.listen(1)
    srv.settimeout(0.5)
    f = fived("[service:root]\nbackend = unix:%s\n" % path)
    assert exchange(f.port, b"root\r\n", shut=False) == b"- service unavailable\r\n"
    with pytest.raises(socket.timeout):
        srv.accept()
    srv.close()


def test_unreachable_backend_says_so(fived, tmp_path):
    port = free_port()
    f = fived("[service:gone]\nbackend = tcp:127.0.0.1:%d\n"
              "[service:nosock]\nbackend = unix:%s/none.sock\n"
              "[service:noprog]\nbackend = exec:/nonexistent/program\n" % (port, tmp_path))
    for name in (b"gone", b"nosock", b"noprog"):
        assert exchange(f.port, name + b"\r\npipelined", shut=False) == \
            b"- service unavailable\r\n", name
    refused = f.events("refused")
    assert [r["reason"] for r in refused] == ["service unavailable"] * 3


def blackhole():
    """A listener whose accept queue is full: the kernel drops further SYNs.  Returns
    (port, sockets to close)."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = [full]
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.2)
    return port, fillers


def test_backend_connect_timeout(fived):
    port, fillers = blackhole()
    f = fived("[service:slow]\nbackend = tcp:127.0.0.1:%d\nconnect_timeout = 500ms\n" % port)
    start = time.monotonic()
    assert exchange(f.port, b"slow\r\n", shut=False) == b"- service unavailable\r\n"
    assert 0.4 < time.monotonic() - start < 2.5 * SLOW
    for c in fillers:
        c.close()


def test_reaching_the_backend_counts_in_the_request_timeout(fived):
    """PROTOCOL.md 2.2: "The whole request phase (from the connection until a service is
    granted) MUST complete within the server's request_timeout"."""
    port, fillers = blackhole()
    f = fived("[service:slow]\nbackend = tcp:127.0.0.1:%d\nconnect_timeout = 30s\n" % port,
              server="request_timeout = 1500ms")
    start = time.monotonic()
    with connect(f.port) as c:
        time.sleep(0.5)
        c.sendall(b"slow\r\n")
        assert recv_all(c) == b"- request timeout\r\n"
    assert 1.3 < time.monotonic() - start < 3 * SLOW
    for c in fillers:
        c.close()


def test_exec_environment(fived):
    f = fived("[service:env]\nbackend = exec:/usr/bin/env\n"
              "[vhost:v1]\nservices = env\n")
    with connect(f.port) as s:
        s.sendall(b"HOST v1\r\nenv\r\n")
        out = recv_all(s).decode()
        local_port = s.getsockname()[1]
    lines = out.split("\r\n", 2)
    assert lines[0] == "+ v1" and lines[1] == "+"
    env = dict(line.split("=", 1) for line in lines[2].splitlines())
    assert env["PROTO"] == "FIVE"
    assert env["FIVE_SERVICE"] == "env"
    assert env["FIVE_VHOST"] == "v1"
    assert len(env["FIVE_SESSION_ID"]) == 32
    assert env["FIVE_REMOTE_ADDR"] == env["TCPREMOTEIP"] == "127.0.0.1"
    assert env["FIVE_REMOTE_PORT"] == env["TCPREMOTEPORT"] == str(local_port)
    assert env["TCPLOCALPORT"] == str(f.port)
    granted = f.events("granted")[-1]
    assert granted["session"] == env["FIVE_SESSION_ID"]
    # Nothing of fived's own environment leaks to the program.
    assert env["FIVE_AUTH_METHOD"] == "none" and "FIVE_IDENTITY" not in env
    assert set(env) <= {"PATH", "PROTO", "FIVE_SERVICE", "FIVE_VHOST", "FIVE_SESSION_ID",
                        "FIVE_AUTH_METHOD",
                        "FIVE_REMOTE_ADDR", "FIVE_REMOTE_PORT", "TCPREMOTEIP", "TCPREMOTEPORT",
                        "TCPLOCALIP", "TCPLOCALPORT"}


def test_exec_stream_with_pipelined_bytes(fived):
    f = fived("[service:rev]\nbackend = exec:/usr/bin/rev\n")
    assert exchange(f.port, b"rev\r\nabc\ndef\n") == b"+\r\ncba\nfed\n"


UPLOAD = """#!/usr/bin/python3
import os, sys
n = 0
while data := os.read(0, 65536):
    n += len(data)
    open("%s/data.%d" % (sys.argv[1], os.getpid()), "w").write(str(n))
open("%s/end.%d" % (sys.argv[1], os.getpid()), "w").write("whole")
"""


def programs(tmp_path):
    """Where the programs write (out), and two of them: upload, which records what it
    read (data.PID) and the end of its input (end.PID); early, which leaves upload
    reading its input in the background and exits at once."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    upload = tmp_path / "upload"
    upload.write_text(UPLOAD)
    early = tmp_path / "early"
    early.write_text("#!/bin/sh\nexec 3<&0\n%s %s <&3 3<&- &\nexit 0\n" % (upload, out))
    for p in (upload, early):
        p.chmod(0o755)
    return out, "%s %s" % (upload, out), str(early)


def read_by_programs(out, n, each):
    wait_for(lambda: sorted(p.read_text() for p in out.glob("data.*")) == [str(each)] * n,
             what="the programs' bytes")


def cut(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_a_program_whose_stream_is_cut_is_killed(fived, tmp_path):
    """A program's stream has no reset: one cut short (here, the client's reset) has its
    program killed, with what it started, before its input ends, so that it never takes
    half an upload for a whole one.  A stream that ends in order ends its input."""
    out, upload, _ = programs(tmp_path)
    f = fived("[service:upload]\nbackend = exec:%s\n" % upload)
    with connect(f.port) as s:
        s.sendall(b"upload\r\nall of it")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"+\r\n"
    wait_for(lambda: [p.read_text() for p in out.glob("end.*")] == ["whole"],
             what="the program's end of input")
    for p in out.iterdir():
        p.unlink()
    s = connect(f.port)
    s.sendall(b"upload\r\n" + b"x" * 100000)
    read_by_programs(out, 1, 100000)
    cut(s)
    wait_for(lambda: len(f.events("closed")) == 2, what="the cut session's end")
    time.sleep(0.5 * SLOW)
    assert not list(out.glob("end.*")), "the program took a cut stream for a whole one"


def as_nobody():
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)


def test_a_program_of_an_unprivileged_fived_is_killed_with_its_group(fived, tmp_path):
    """Without privilege separation (fived not run as root) a program is fived's own
    child, in a group of its own all the same: one whose stream is cut short is killed
    with what it started, also once it has exited itself."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run fived as another user")
    tmp_path.chmod(0o777)
    out, _, early = programs(tmp_path)
    f = fived("[service:early]\nbackend = exec:%s\n" % early, preexec_fn=as_nobody,
              env=dict(os.environ, HOME=str(tmp_path)))
    s = connect(f.port)
    s.sendall(b"early\r\n" + b"x" * 1000)
    read_by_programs(out, 1, 1000)
    cut(s)
    time.sleep(0.5 * SLOW)
    assert not list(out.glob("end.*")), "the program's child took a cut stream for a whole one"


def process_state(pid):
    """A process's state letter and its parent, or None once it is gone."""
    try:
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return fields[0], int(fields[1])


def test_a_program_that_exited_keeps_its_group_id_until_its_stream_ends(fived, tmp_path):
    """The monitor kills a cut stream's program by its process group id, the leader's
    process id.  A leader that exits while its stream lives is left unreaped until the
    stream ends, so that no other process can get that id, and no other group the kill:
    it is a zombie of the monitor's while its child reads the stream, and reaped once the
    stream is cut (the child killed with it)."""
    out, upload, _ = programs(tmp_path)
    early = tmp_path / "early-pid"
    early.write_text("#!/bin/sh\necho $$ > %s/leader\nexec 3<&0\n%s <&3 3<&- &\nexit 0\n"
                     % (out, upload))
    early.chmod(0o755)
    f = fived("[service:early]\nbackend = exec:%s\n" % early)
    s = connect(f.port)
    s.sendall(b"early\r\n" + b"x" * 1000)
    read_by_programs(out, 1, 1000)
    leader = int((out / "leader").read_text())
    time.sleep(0.5 * SLOW)
    assert process_state(leader) == ("Z", f.proc.pid), "the leader was reaped early"
    cut(s)
    wait_for(lambda: process_state(leader) is None, what="the leader reaped")
    time.sleep(0.5 * SLOW)
    assert not list(out.glob("end.*")), "the program's child took a cut stream for a whole one"


def test_programs_whose_worker_dies_are_killed(fived, tmp_path):
    """The worker's death cuts its streams short: the monitor kills the programs whose
    streams it had not ended, with what they started, also when the program itself had
    already exited and left a child reading its input."""
    out, upload, early = programs(tmp_path)
    f = fived("[service:upload]\nbackend = exec:%s\n[service:early]\nbackend = exec:%s\n"
              % (upload, early))
    socks = []
    for service in (b"upload", b"upload", b"early"):
        s = connect(f.port)
        s.sendall(service + b"\r\n" + b"x" * 1000)
        socks.append(s)
    read_by_programs(out, 3, 1000)
    os.kill(f.worker_pid(), signal.SIGKILL)
    time.sleep(1 * SLOW)
    assert not list(out.glob("end.*")), "a program took a cut stream for a whole one"
    for s in socks:
        s.close()


def test_half_close_client_to_backend(fived, sentinel):
    # The backend answers only after the client's end of stream.
    s = sentinel("count")
    f = fived("[service:count]\nbackend = tcp:127.0.0.1:%d\n" % s.port)
    assert exchange(f.port, b"count\r\n" + b"z" * 300000) == b"+\r\ngot 300000\n"


def test_half_close_backend_to_client(fived):
    # The backend ends its output first and keeps reading; the client then sends more.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(b"bye from backend\n")
            conn.shutdown(socket.SHUT_WR)
            got.append(recv_all(conn))
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    f = fived("[service:hc]\nbackend = tcp:127.0.0.1:%d\n" % srv.getsockname()[1])
    with connect(f.port) as c:
        c.sendall(b"hc\r\n")
        assert recv_all(c) == b"+\r\nbye from backend\n"
        c.sendall(b"still talking")
        c.shutdown(socket.SHUT_WR)
        t.join(5)
    assert got == [b"still talking"]
    srv.close()
    closed = wait_for(lambda: f.events("closed"), what="closed event")
    assert closed[-1]["reason"] == "done"
    assert closed[-1]["bytes_in"] == len(b"still talking")


def test_proxy_protocol_v2(fived, sentinel):
    s = sentinel("silent")
    f = fived("[service:pp]\nbackend = tcp:127.0.0.1:%d\nproxy_protocol = v2\n"
              "[vhost:site]\nservices = pp\n" % s.port)
    with connect(f.port) as c:
        c.sendall(b"HOST site\r\npp\r\npayload")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"+ site\r\n+\r\n"
        client_port = c.getsockname()[1]
    wait_for(lambda: s.received, what="backend data")
    src, dst, tlvs, rest = parse_proxy_v2(s.received[0])
    assert src == ("127.0.0.1", client_port)
    assert dst == ("127.0.0.1", f.port)
    assert tlvs[0x02] == b"site"
    assert tlvs[0x05].decode() == f.events("granted")[-1]["session"]
    assert tlvs[0xE2] == b"pp"
    assert rest == b"payload"


def test_proxy_protocol_v1(fived, sentinel):
    s = sentinel("silent")
    f = fived("[service:pp]\nbackend = tcp:127.0.0.1:%d\nproxy_protocol = v1\n" % s.port)
    with connect(f.port) as c:
        c.sendall(b"pp\r\nafter")
        c.shutdown(socket.SHUT_WR)
        recv_all(c)
        client_port = c.getsockname()[1]
    wait_for(lambda: s.received, what="backend data")
    assert s.received[0] == b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\nafter" % (
        client_port, f.port)


def test_ipv6_listener(fived):
    need_ipv6_loopback()
    f = fived("[server]\nlisten = tcp:[::1]:0\naudit_log = @AUDIT@\n"
              "[service:echo]\nbackend = builtin:echo\n")
    assert len(f.addresses) == 1 and f.addresses[0].startswith("tcp:[::1]:"), f.addresses
    port = int(f.addresses[0].rsplit(":", 1)[1])
    with socket.create_connection(("::1", port), timeout=5) as c:
        c.sendall(b"echo\r\nsix")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"+\r\nsix"
    assert f.events("accepted")[0]["src"] == "::1"


def test_unix_listener(fived, tmp_path):
    path = tmp_path / "fived.sock"
    f = fived("[server]\nlisten = unix:%s\naudit_log = @AUDIT@\n"
              "[service:echo]\nbackend = builtin:echo\n" % path)
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(path))
        c.sendall(b"echo\r\nlocal")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"+\r\nlocal"
    assert oct(os.stat(path).st_mode & 0o777) == "0o666"
    f.stop()
    assert not path.exists()


def test_idle_timeout(fived, sentinel):
    s = sentinel("silent")
    f = fived("[service:quiet]\nbackend = tcp:127.0.0.1:%d\nidle_timeout = 1\n" % s.port)
    with connect(f.port) as c:
        c.sendall(b"quiet\r\n")
        assert recv_line(c) == b"+\r\n"
        start = time.monotonic()
        assert recv_all(c) == b""
        assert 0.8 < time.monotonic() - start < 3 * SLOW
    assert wait_for(lambda: f.events("closed"))[-1]["reason"] == "idle timeout"
