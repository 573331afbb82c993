"""The text dialect: RFC 1078 TCPMUX and fived's commands, against a real fived."""

import re
import socket
import time

from conftest import SLOW, connect, exchange, recv_all, recv_line

CONFIG = """
[service:echo]
backend = builtin:echo
[service:daytime]
backend = builtin:daytime
[service:discard]
backend = builtin:discard
[service:chargen]
backend = builtin:chargen
chargen_rate = 20000
[service:alpha-db]
backend = builtin:echo
[vhost:alpha.example]
services = db=alpha-db echo
"""


def test_service_by_name_crlf_and_lf(fived):
    f = fived(CONFIG)
    assert exchange(f.port, b"echo\r\nhello") == b"+\r\nhello"
    assert exchange(f.port, b"echo\nhello") == b"+\r\nhello"
    assert exchange(f.port, b"ECHO\r\nX") == b"+\r\nX"


def test_unknown_service_is_refused_and_closed(fived):
    f = fived(CONFIG)
    assert exchange(f.port, b"nosuch\r\n", shut=False) == b"- unknown service\r\n"


def test_help_lists_names_and_closes(fived):
    f = fived(CONFIG)
    out = exchange(f.port, b"HELP\r\n", shut=False)
    assert out.decode().split("\r\n") == ["echo", "daytime", "discard", "chargen", "alpha-db", ""]


def list_lines(s):
    """Sends LIST on s; the lines of the answer, to its terminator."""
    s.sendall(b"LIST\r\n")
    lines = []
    while not lines or lines[-1] != ".":
        lines.append(recv_line(s).decode().rstrip("\r\n"))
    return lines


def services_in(lines):
    """The services of a LIST answer: its lowercase names (commands are in capitals)."""
    return [line for line in lines[1:-1] if line == line.lower()]


def commands_in(lines):
    """The commands of a LIST answer: its names in capitals."""
    return [line for line in lines[1:-1] if line != line.lower()]


def test_list_keeps_the_connection_open(fived):
    """Report 3.1.1: "LIST outputs a multi-line message which must be a list of the service
    names of the supported services, one name per line." ... "When LIST is followed by a
    service name, fived returns the service name if it exists." """
    f = fived(CONFIG)
    with connect(f.port) as s:
        lines = list_lines(s)
        assert lines[0] == "+ LIST"
        assert services_in(lines) == ["echo", "daytime", "discard", "chargen", "alpha-db"]
        assert "HELP" in lines and "QUIT" in lines
        s.sendall(b"LIST echo\r\nLIST nosuch\r\nLIST ECHO\r\nQUIT\r\n")
        assert recv_all(s) == b"+ echo\r\n- unknown service\r\n+ echo\r\n+ bye\r\n"


def test_list_shows_the_commands_usable_now(fived):
    """Report 3.1.1: "A typical use of the LIST command on a fived daemon which supports
    the core features LIST, MULTIPLEX, TLS and HOST as well as a service called http":
    LIST names every command usable at that moment, in capitals, a name per line."""
    f = fived(CONFIG)
    with connect(f.port) as s:
        lines = list_lines(s)
        assert commands_in(lines) == ["HELP", "LIST", "HOST", "QUIT", "TLS", "MULTIPLEX",
                                      "GETSIGNKEY"], lines
        # "These two modes allow for dynamic service and extension discovery."
        s.sendall(b"LIST tls\r\nLIST AUTH\r\nLIST DETACHABLE\r\nQUIT\r\n")
        assert recv_all(s) == b"+ TLS\r\n- command not available\r\n" \
            b"- command not available\r\n+ bye\r\n"


def test_list_names_host_only_with_vhosts(fived):
    """HOST is a command this session can use only where there are vhosts to select."""
    f = fived("[service:echo]\nbackend = builtin:echo\n")
    with connect(f.port) as s:
        assert "HOST" not in list_lines(s)


def test_reserved_commands_are_not_services(fived):
    """A command of the protocol fived does not implement is answered as PROTOCOL.md 2.9
    says, whatever its arguments: never looked up as a service or a token."""
    f = fived(CONFIG)
    for request in (b"DETACHABLE", b"DETACHABLE x"):
        assert exchange(f.port, request + b"\r\n", shut=False) == \
            b"- command not supported\r\n", request
    # ATTACH is a command (section 12.5), of two arguments: never a service either.
    assert exchange(f.port, b"ATTACH x\r\n", shut=False) == b"- wrong number of arguments\r\n"


def test_host_selects_a_vhost(fived):
    f = fived(CONFIG)
    assert exchange(f.port, b"HOST alpha.example\r\ndb\r\nhi") == b"+ alpha.example\r\n+\r\nhi"
    with connect(f.port) as s:
        s.sendall(b"host Alpha.Example\r\nLIST\r\nQUIT\r\n")
        out = recv_all(s).decode()
    assert "\r\ndb\r\necho\r\n.\r\n" in out and "alpha-db" not in out
    # Inside the vhost, names of other vhosts do not resolve.
    assert exchange(f.port, b"HOST alpha.example\r\nalpha-db\r\n", shut=False) == \
        b"+ alpha.example\r\n- unknown service\r\n"


HIDDEN_VHOST = CONFIG + """
[service:staff-db]
backend = builtin:echo
auth = required
[vhost:staff.example]
services = db=staff-db
"""


def test_bare_host_lists_vhosts_and_takes_a_name(fived):
    """The slides' HOST dialogue: "HOST / + Success / Which VHOST? main". fived answers
    the vhosts this client may see, then takes the next line as the name; a vhost whose
    every service is hidden from this client is not named."""
    f = fived(HIDDEN_VHOST)
    with connect(f.port) as s:
        s.sendall(b"HOST\r\n")
        assert recv_line(s) == b"+ HOST\r\n"
        assert recv_line(s) == b"alpha.example\r\n"
        assert recv_line(s) == b".\r\n"
        s.sendall(b"Alpha.Example\r\ndb\r\nhi")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"+ alpha.example\r\n+\r\nhi"
    # The name line is a vhost name only: never a command, never a service.
    assert exchange(f.port, b"HOST\r\nQUIT\r\n", shut=False) == \
        b"+ HOST\r\nalpha.example\r\n.\r\n- unknown host\r\n"
    assert exchange(f.port, b"HOST\r\nalpha.example echo\r\n", shut=False) == \
        b"+ HOST\r\nalpha.example\r\n.\r\n- wrong number of arguments\r\n"
    # A vhost not named is not hidden from HOST NAME, whose answer a client can probe
    # anyway; what it hides, its services, stays hidden inside it.
    assert exchange(f.port, b"HOST\r\nstaff.example\r\ndb\r\n", shut=False) == \
        b"+ HOST\r\nalpha.example\r\n.\r\n+ staff.example\r\n- unknown service\r\n"


def test_unknown_vhost_ends_the_session(fived, sentinel):
    f = fived(CONFIG)
    # The pipelined service line must not be served from the default view.
    assert exchange(f.port, b"HOST nowhere\r\necho\r\nhi", shut=False) == b"- unknown host\r\n"


def test_overlong_line(fived):
    f = fived(CONFIG)
    assert exchange(f.port, b"a" * 600, shut=False) == b"- line too long\r\n"
    assert exchange(f.port, b"a" * 510 + b"\r\n", shut=False) == b"- invalid service name\r\n"
    assert exchange(f.port, b"a" * 511 + b"\r\n", shut=False) == b"- line too long\r\n"


def test_non_ascii_and_control_bytes(fived):
    f = fived(CONFIG)
    for bad in (b"ech\xc3\xa9\r\n", b"echo\tx\r\n", b"\x00echo\r\n", b"\x17\x03\x03\x00\x10",
                b"e\rcho\r\n"):
        assert exchange(f.port, bad, shut=False) == b"- invalid character in request\r\n", bad


def test_request_timeout(fived):
    f = fived(CONFIG, server="request_timeout = 1")
    with connect(f.port) as s:
        s.sendall(b"ec")
        start = time.monotonic()
        assert recv_all(s) == b"- request timeout\r\n"
        assert 0.8 < time.monotonic() - start < 3 * SLOW


def test_empty_and_malformed_requests(fived):
    f = fived(CONFIG)
    assert exchange(f.port, b"\r\n", shut=False) == b"- empty request\r\n"
    assert exchange(f.port, b"HOST a b\r\n", shut=False) == b"- wrong number of arguments\r\n"
    assert exchange(f.port, b"echo a b\r\n", shut=False) == b"- too many words in request\r\n"
    assert exchange(f.port, b"echo token\r\n", shut=False) == b"- invalid token\r\n"


def test_too_many_commands(fived):
    f = fived(CONFIG)
    out = exchange(f.port, b"LIST echo\r\n" * 40, shut=False)
    assert out.count(b"+ echo\r\n") == 32
    assert out.endswith(b"- too many commands\r\n")


def test_client_closing_before_a_request(fived):
    f = fived(CONFIG)
    assert exchange(f.port, b"ech") == b""
    wait = [e for e in f.events("closed")]
    assert wait[-1]["reason"] == "client closed before a request"


def test_daytime(fived):
    f = fived(CONFIG)
    out = exchange(f.port, b"daytime\r\n", shut=False).decode()
    assert re.fullmatch(r"\+\r\n\w+, \w+ \d\d, \d{4} \d\d:\d\d:\d\d-UTC\r\n", out), out


def test_discard(fived):
    f = fived(CONFIG)
    assert exchange(f.port, b"discard\r\n" + b"x" * 100000) == b"+\r\n"


def test_chargen_pattern_and_rate(fived):
    f = fived(CONFIG)
    with connect(f.port) as s:
        s.sendall(b"chargen\r\n")
        start = time.monotonic()
        data = bytearray()
        while time.monotonic() - start < 1.0:
            data += s.recv(65536)
    assert data.startswith(b"+\r\n")
    lines = bytes(data[3:]).split(b"\r\n")
    assert lines[0] == bytes(range(0x21, 0x21 + 72))
    assert lines[1] == bytes(range(0x22, 0x22 + 72))
    # 20000 bytes per second, with slack for the first tick.
    assert 5000 < len(data) < 30000, len(data)


def test_echo_large_transfer_in_order(fived):
    f = fived(CONFIG)
    payload = bytes(range(256)) * 8192
    with connect(f.port) as s:
        s.sendall(b"echo\r\n")
        assert recv_line(s) == b"+\r\n"
        received = bytearray()
        sent = 0
        s.setblocking(False)
        deadline = time.monotonic() + 30 * SLOW
        while len(received) < len(payload):
            assert time.monotonic() < deadline, (sent, len(received))
            if sent < len(payload):
                try:
                    sent += s.send(payload[sent:sent + 65536])
                except BlockingIOError:
                    pass
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            assert chunk, "fived closed after %d of %d bytes" % (len(received), len(payload))
            received += chunk
    assert bytes(received) == payload
