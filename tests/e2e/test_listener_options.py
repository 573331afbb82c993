"""The TCP listener's options: defer_accept (TCP_DEFER_ACCEPT: the kernel hands fived a
connection once its first bytes are there) and tcp_fastopen (TCP_FASTOPEN's queue), set
at start and by a reload, read back from the listening socket itself."""

import ctypes
import os
import socket
import subprocess

import pytest

from conftest import connect, recv_line, wait_for

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
