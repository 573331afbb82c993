"""TCP options: on listeners, defer_accept (TCP_DEFER_ACCEPT: the kernel hands fived a
connection once its first bytes are there) and tcp_fastopen (TCP_FASTOPEN's queue), set at
start and by a reload, read back from the listening socket itself; and a service's
fastopen, TCP Fast Open towards its backend, counted by the kernel."""

import ctypes
import os
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import FIVED, connect, recv_line, wait_for

SYS_PIDFD_GETFD = 438  # x86_64 and aarch64 alike
TCP_DEFER_ACCEPT = 9
TCP_FASTOPEN = 23


def listening_socket(pid, port):
    """A copy of the listening socket on 127.0.0.1:port held by process pid (pidfd_getfd)."""
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == "0100007F:%04X" % port and fields[3] == "0A":
                inode = fields[9]
    assert inode is not None, "nothing listens on port %d" % port
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if target == "socket:[%s]" % inode:
            break
    else:
        pytest.fail("process %d does not hold the listening socket" % pid)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
    finally:
        os.close(pidfd)
    if fd < 0:
        pytest.skip("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
    return socket.socket(fileno=fd)


def options(f):
    with listening_socket(f.proc.pid, f.port) as s:
        return (s.getsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT),
                s.getsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN))


def server_side(port, state):
    """Connections to port in state (ss's name: syn-recv while the kernel holds one back
    from accept, established once it is accepted or may be)."""
    out = subprocess.run(["ss", "-Htn", "state", state, "( sport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def test_listener_options_are_set_and_reloaded(fived, sentinel):
    backend = sentinel("echo")
    service = "[service:s]\nbackend = tcp:127.0.0.1:%d\n" % backend.port
    f = fived(service, server="defer_accept = 5s\ntcp_fastopen = 128")
    defer, tfo = options(f)
    assert defer > 0 and tfo == 128
    # A client that has sent nothing is the kernel's still; its first bytes hand it over.
    with connect(f.port) as quiet:
        wait_for(lambda: server_side(f.port, "syn-recv") == 1,
                 what="a connection held by the kernel")
        assert server_side(f.port, "established") == 0
        quiet.sendall(b"s\r\nhello")
        assert recv_line(quiet) == b"+\r\n"
        assert quiet.recv(5) == b"hello"
    f.reload("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n" + service)
    assert "reloaded the configuration" in f.log()
    assert options(f) == (0, 0)
    with connect(f.port) as quiet:
        wait_for(lambda: server_side(f.port, "established") == 1,
                 what="a connection accepted at once")
        assert server_side(f.port, "syn-recv") == 0
        quiet.sendall(b"s\r\n")
        assert recv_line(quiet) == b"+\r\n"


# Run in a network namespace of its own, where the kernel may be a Fast Open server
# (net.ipv4.tcp_fastopen = 3) without touching the host's: fived, an echo backend that
# takes Fast Open, and a client that connects with it (MSG_FASTOPEN), three times.
FASTOPEN_WORLD = r"""
import socket, subprocess, sys, threading, time

fived, conf, fived_port, backend_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv4/tcp_fastopen", "w") as f:
    f.write("3")

def counters():
    with open("/proc/net/netstat") as f:
        head, values = [l.split() for l in f.readlines()[:2]]
    return {k: int(v) for k, v in zip(head[1:], values[1:])}

def echo(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)

def serve(backend):
    while True:
        threading.Thread(target=echo, args=(backend.accept()[0],), daemon=True).start()

def talk():
    for i in range(3):
        c = socket.socket()
        c.sendto(b"s\r\nhello%d" % i, socket.MSG_FASTOPEN, ("127.0.0.1", fived_port))
        c.settimeout(5)
        got = b""
        while len(got) < len(b"+\r\nhello0"):
            got += c.recv(100)
        assert got == b"+\r\nhello%d" % i, got
        c.close()

backend = socket.socket()
backend.bind(("127.0.0.1", backend_port))
backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
backend.listen(16)
threading.Thread(target=serve, args=(backend,), daemon=True).start()
proc = subprocess.Popen([fived, "-c", conf], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=open(conf + ".log", "wb"))
try:
    deadline = time.monotonic() + 10
    while b"started" not in open(conf + ".log", "rb").read():
        assert time.monotonic() < deadline and proc.poll() is None, "fived did not start"
        time.sleep(0.05)
    before = counters()
    talk()
    after = counters()
finally:
    proc.terminate()
    proc.wait(10)
print(after["TCPFastOpenActive"] - before["TCPFastOpenActive"],
      after["TCPFastOpenPassive"] - before["TCPFastOpenPassive"])
"""


@pytest.mark.parametrize("listener,backend,expected", [
    # The client's 2nd and 3rd connections and fived's three to the backend: the kernel
    # keeps a cookie per address, and the client's first one got it for 127.0.0.1.
    (16, "yes", 5),
    (0, "yes", 2),   # fived's to the backend alone
    (16, "no", 2),   # the client's alone
])
def test_fastopen_to_fived_and_to_backends(tmp_path, listener, backend, expected):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1): a network namespace of its own")
    fived_port, backend_port = 47101, 47102
    conf = tmp_path / "fived.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:%d\naudit_log = none\nkey_file = %s\n"
                    "tcp_fastopen = %d\n[service:s]\nbackend = tcp:127.0.0.1:%d\n"
                    "fastopen = %s\n" % (fived_port, tmp_path / "fived.key", listener,
                                         backend_port, backend))
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", FASTOPEN_WORLD, FIVED,
                        str(conf), str(fived_port), str(backend_port)],
                       capture_output=True, text=True, timeout=60)
    log = (tmp_path / "fived.conf.log").read_text()
    assert r.returncode == 0, r.stderr + log
    assert "AddressSanitizer" not in log and "runtime error" not in log, log
    active, passive = map(int, r.stdout.split())
    assert (active, passive) == (expected, expected), r.stdout
