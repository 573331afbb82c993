"""Transition on the same port (docs/PROTOCOL.md section 1.1): real ssh, curl and
openssl clients of older protocols reach their servers through fived's port, while
fived's own clients on that port are served as ever.

The USP paper, section 8.2, "Adoption in Existing Infrastructure": "Application
servers implementing USP would also know what USP and application layer messages to
expect, so they would be able to determine whether to route application layer traffic
directly to the application or process USP messages, and whether to strictly require
USP or permit application layer directly, perhaps while transitioning to a new TCP/IP
model."
"""

import socket
import subprocess
import time

from conftest import SLOW, connect, free_port, recv_all, run_five, wait_for, wait_port
from test_interop import need, start_sshd
from test_metrics import scrape, value
from test_tls import read_for

ECHO = "[service:echo]\nbackend = builtin:echo\n"


def ssh_direct(keys, tmp_path, port, command):
    """OpenSSH's ssh straight to fived's port: no ProxyCommand, no five."""
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(keys / "user"), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=%s" % (tmp_path / "kh"),
         "-p", str(port), "%s@127.0.0.1" % user, command],
        capture_output=True, text=True, timeout=30 * SLOW)


def fived_clients_still_served(f):
    """five sealed, TLS, plain, USP, and nc's text dialect, on the port legacy shares."""
    for transport in ([], ["--tls"], ["--plain"], ["--plain", "--usp"]):
        r = run_five(*transport, "-p", str(f.port), "127.0.0.1", "echo", input=b"mine")
        assert (r.returncode, r.stdout) == (0, b"mine"), (transport, r.stderr)
    r = subprocess.run(["nc", "-N", "127.0.0.1", str(f.port)], input=b"echo\r\nby nc\n",
                       capture_output=True, timeout=10 * SLOW)
    assert r.stdout == b"+\r\nby nc\n"


def test_ssh_reaches_sshd_through_fiveds_port(fived, tmp_path, process):
    """A real sshd behind legacy_ssh: ssh logs in through fived's port, unchanged, while
    every one of fived's own dialects and transports goes on working there."""
    sshd_port, keys = start_sshd(tmp_path, process)
    f = fived(ECHO, server="legacy_ssh = tcp:127.0.0.1:%d\n" % sshd_port)
    r = ssh_direct(keys, tmp_path, f.port, "echo reached sshd")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "reached sshd\n"
    handed = wait_for(lambda: f.events("legacy"))
    assert [(e["protocol"], e["service"], e["backend"]) for e in handed] == \
        [("ssh", "legacy-ssh", "tcp:127.0.0.1:%d" % sshd_port)]
    assert not f.events("granted")
    closed = wait_for(lambda: f.events("closed"))
    assert closed[0]["session"] == handed[0]["session"]
    assert closed[0]["bytes_in"] > 0 and closed[0]["bytes_out"] > 0
    fived_clients_still_served(f)
    assert len(f.events("legacy")) == 1


def test_curl_reaches_an_http_server_through_fiveds_port(fived, tmp_path, process, sentinel):
    need("curl")
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("served by python beside fived\n")
    http_port = free_port()
    process(["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", str(http_port),
             "--directory", str(web)])
    wait_port(http_port)
    metrics_port = free_port()
    f = fived(ECHO, server="legacy_http = tcp:127.0.0.1:%d\nmax_per_source = 2\n"
              "metrics_listen = tcp:127.0.0.1:%d\n" % (http_port, metrics_port))
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:%d/" % f.port],
                       capture_output=True, text=True, timeout=20 * SLOW)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "served by python beside fived\n"
    # Byte for byte, with the client's end passed on: the counts are the bytes moved.
    request = b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n"
    with connect(f.port) as c:
        c.sendall(request)
        c.shutdown(socket.SHUT_WR)
        answer = recv_all(c)
    assert answer.startswith(b"HTTP/1.0 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nserved by python beside fived\n")
    closed = wait_for(lambda: [e for e in f.events("closed") if e["bytes_in"] == len(request)])
    assert closed[0]["bytes_out"] == len(answer)
    assert [e["protocol"] for e in f.events("legacy")] == ["http", "http"]
    wait_for(lambda: len(f.events("closed")) == 2)
    assert value(scrape(("tcp", metrics_port)), "fived_sessions_closed_total",
                 transport="plain", dialect="legacy") == 2
    # Limits hold before anything is looked at: one source's connections are capped.
    held = [connect(f.port), connect(f.port)]
    with connect(f.port) as c:
        c.sendall(request)
        assert recv_all(c) == b"- too many connections from your address\r\n"
    for c in held:
        c.close()


def test_a_connection_that_spoke_fived_is_never_handed_over(fived, sentinel):
    """Once fived's dialect has read a line, an HTTP request line later is a fived line;
    a verdict waits for the whole request line, and not past TRANSITION_DECIDE_MS."""
    backend = sentinel("echo")
    f = fived(ECHO, server="legacy_http = tcp:127.0.0.1:%d\nlegacy_ssh = tcp:127.0.0.1:%d\n"
              % (backend.port, backend.port))
    with connect(f.port) as c:
        c.sendall(b"LIST\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.shutdown(socket.SHUT_WR)
        answer = recv_all(c)
    assert answer.startswith(b"+ LIST\r\n") and answer.endswith(b"- too many words in request\r\n"), answer
    # A version line cut short, then finished after the time to decide: fived's.
    with connect(f.port) as c:
        c.sendall(b"SSH-2.0-")
        time.sleep(3.3)
        c.sendall(b"OpenSSH\r\n")
        assert recv_all(c).startswith(b"- ")
    # So is a first line that is not quite HTTP/1.x, and a plain request is granted.
    assert exchange_once(f.port, b"GET /\r\n").startswith(b"- ")
    assert exchange_once(f.port, b"echo\r\nhello") == b"+\r\nhello"
    assert backend.connections == 0
    assert not f.events("legacy")


def exchange_once(port, data):
    with connect(port) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c)


def make_cert(tmp_path, name):
    cert, key = tmp_path / (name + ".crt"), tmp_path / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def s_client(process, port, *args):
    """openssl s_client's answer to a request for echo (it keeps running: the test ends it)."""
    p = process(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-quiet", *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE).proc
    p.stdin.write(b"echo\r\nover tls")
    p.stdin.flush()
    return read_for(p.stdout, b"+\r\nover tls")


def test_tls_without_fiveds_alpn_or_name_goes_to_the_legacy_tls_server(fived, tmp_path, process):
    need("curl", "openssl")
    cert, key = make_cert(tmp_path, "legacy.example")
    tls_port = free_port()
    process(["openssl", "s_server", "-accept", "127.0.0.1:%d" % tls_port, "-cert", str(cert),
             "-key", str(key), "-www", "-quiet"])
    wait_port(tls_port)
    f = fived(ECHO, server="legacy_tls = tcp:127.0.0.1:%d\ntls_names = fived.example\n"
              % tls_port)
    # curl offers h2 and http/1.1, no fived: it gets the legacy server's certificate.
    r = subprocess.run(["curl", "-sk", "-v", "--max-time", "10", "https://127.0.0.1:%d/" % f.port],
                       capture_output=True, text=True, timeout=20 * SLOW)
    assert r.returncode == 0, r.stderr
    assert "CN=legacy.example" in r.stderr and "s_server" in r.stdout
    assert [e["protocol"] for e in wait_for(lambda: f.events("legacy"))] == ["tls"]
    # Asking by ALPN, or by one of fived's names, reaches fived's own TLS.
    for args in (["-alpn", "h2,fived"], ["-servername", "FIVED.example"]):
        assert s_client(process, f.port, *args) == b"+\r\nover tls", args
    # fived answers its ALPN id, so that the client knows whom it reached.
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % f.port, "-alpn",
                        "fived"], input=b"", capture_output=True, timeout=10 * SLOW)
    assert b"ALPN protocol: fived" in r.stdout
    fived_clients_still_served(f)
    assert len(f.events("legacy")) == 1


def test_with_the_option_off_legacy_bytes_get_fiveds_refusal(fived, sentinel):
    """Off by default: an SSH banner, an HTTP request line, a ClientHello without fived's
    ALPN are fived's as ever, and nothing reaches any backend."""
    backend = sentinel("echo")
    f = fived("[service:ssh]\nbackend = tcp:127.0.0.1:%d\n" % backend.port)
    assert exchange_once(f.port, b"SSH-2.0-OpenSSH_9.2p1\r\n").startswith(b"- ")
    assert exchange_once(f.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"- ")
    r = subprocess.run(["curl", "-sk", "-v", "--max-time", "10", "https://127.0.0.1:%d/" % f.port],
                       capture_output=True, text=True, timeout=20 * SLOW)
    assert r.returncode != 0 and "CN=" in r.stderr
    assert backend.connections == 0
    assert not f.events("legacy")
    # A reload turns it on for the connections after it; the echo is the backend's.
    f.server = "legacy_ssh = tcp:127.0.0.1:%d\n" % backend.port
    f.reload("[service:ssh]\nbackend = tcp:127.0.0.1:%d\n" % backend.port)
    banner = b"SSH-2.0-OpenSSH_9.2p1\r\n"
    assert exchange_once(f.port, banner) == banner
    assert backend.connections == 1
    assert [e["protocol"] for e in f.events("legacy")] == ["ssh"]
