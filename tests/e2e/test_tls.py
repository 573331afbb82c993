"""TLS as a transport: implicit TLS and the TLS command, five --tls with its pinned key,
client certificates as identities, and real TLS software (openssl s_client, stunnel)."""

import base64
import datetime
import hashlib
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import FIVED, SLOW, connect, exchange, free_port, recv_all, recv_line, run_five, \
    wait_for, wait_port
from fivewire import load_key, parse_challenge, signature_line, signed_data, user_line
from test_auth import ECHO_RESTRICTED, base_config, needs_pam_wrapper

ECHO = "[service:echo]\nbackend = builtin:echo\n"
WHO = "[service:who]\nbackend = exec:/usr/bin/env\nauth = required\n"


def need(*programs):
    for p in programs:
        if shutil.which(p) is None:
            pytest.fail("%s is not installed (make deps installs it)" % p)


# --- certificates and a TLS client whose every byte is ours ---------------------------------


def make_cert(tmp_path, name, subject, ca=None, is_ca=False):
    """A certificate for subject (RFC 4514), self-signed or signed by ca: (cert path, key path,
    certificate, private key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name_ = x509.Name.from_rfc4514_string(subject)
    issuer, signer = (ca[2].subject, ca[3]) if ca is not None else (name_, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name_).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=1)))
    if is_ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    cert = builder.sign(signer, hashes.SHA256())
    cert_path, key_path = tmp_path / (name + ".crt"), tmp_path / (name + ".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return str(cert_path), str(key_path), cert, key


def spki_digest(cert):
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def fingerprint(cert):
    return "SHA256:" + base64.b64encode(spki_digest(cert)).decode().rstrip("=")


def server_cert(f):
    """The self-signed certificate fived made beside its key file."""
    path = str(f.key_file)[:-len(".key")] + "-tls.crt"
    with open(path, "rb") as pem:
        return x509.load_pem_x509_certificate(pem.read())


def client_context(cert=None, key=None, version=ssl.TLSVersion.TLSv1_3):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


class MemoryTLS:
    """TLS over a plain socket through memory BIOs: records can be held, sent with other
    bytes, or damaged."""

    def __init__(self, sock, ctx=None):
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = (ctx or client_context()).wrap_bio(self.incoming, self.outgoing)

    def client_hello(self):
        with pytest.raises(ssl.SSLWantReadError):
            self.obj.do_handshake()
        return self.outgoing.read()

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.sock.sendall(self.outgoing.read())
                return
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake")
                self.incoming.write(data)

    def record(self, data):
        self.obj.write(data)
        return self.outgoing.read()

    def send(self, data):
        self.sock.sendall(self.record(data))

    def recv_exactly(self, n):
        out = b""
        while len(out) < n:
            try:
                out += self.obj.read(n - len(out))
            except ssl.SSLWantReadError:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.incoming.write(data)
        return out


def read_for(stream, expected, timeout=5.0):
    """Reads a pipe until expected has come (or the time is up)."""
    out = b""
    deadline = time.monotonic() + timeout * SLOW
    while len(out) < len(expected) and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            out += chunk
    return out


def ssl_read(t, n):
    """n bytes from a TLS socket, or what came before it closed."""
    out = b""
    while len(out) < n:
        chunk = t.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


# --- implicit TLS and the TLS command ----------------------------------------------------------


def test_openssl_s_client_reaches_a_service_through_implicit_tls(fived, process):
    need("openssl")
    f = fived(ECHO)
    p = process(["openssl", "s_client", "-connect", "127.0.0.1:%d" % f.port, "-quiet"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE).proc
    p.stdin.write(b"echo\r\nhello")
    p.stdin.flush()
    assert read_for(p.stdout, b"+\r\nhello") == b"+\r\nhello"
    granted = f.events("granted")
    assert len(granted) == 1 and granted[0]["transport"] == "tls"


def test_tls_command_with_the_client_hello_pipelined(fived):
    f = fived(ECHO)
    with connect(f.port) as s:
        tls = MemoryTLS(s)
        # The ClientHello right behind the command, in one write.
        s.sendall(b"TLS\r\n" + tls.client_hello())
        assert recv_line(s) == b"+ SUCCESS\r\n"
        tls.handshake()
        tls.send(b"TLS\r\n")
        assert tls.recv_exactly(21) == b"- already encrypted\r\n"
        tls.send(b"echo\r\nhello")
        assert tls.recv_exactly(8) == b"+\r\nhello"
    assert f.events("granted")[0]["transport"] == "tls"


def test_tls_command_then_python_ssl(fived):
    f = fived(ECHO)
    with connect(f.port) as s:
        s.sendall(b"TLS\r\n")
        assert recv_line(s) == b"+ SUCCESS\r\n"
        with client_context().wrap_socket(s) as t:
            assert t.version() == "TLSv1.3"
            t.sendall(b"echo\r\nhello")
            got = b""
            while len(got) < 8:
                chunk = t.recv(8 - len(got))
                if not chunk:
                    break
                got += chunk
            assert got == b"+\r\nhello"
    assert f.events("granted")[0]["transport"] == "tls"


def test_stunnel_in_front_of_a_plain_five(fived, process, tmp_path):
    need("stunnel4")
    f = fived(ECHO)
    port = free_port()
    conf = tmp_path / "stunnel.conf"
    conf.write_text("foreground = yes\npid =\n[fived]\nclient = yes\naccept = 127.0.0.1:%d\n"
                    "connect = 127.0.0.1:%d\nsslVersionMin = TLSv1.3\n" % (port, f.port))
    process(["stunnel4", str(conf)])
    wait_port(port)
    r = run_five("--plain", "-p", str(port), "127.0.0.1", "echo", input=b"through stunnel\n")
    assert (r.returncode, r.stdout) == (0, b"through stunnel\n"), r.stderr
    granted = f.events("granted")
    assert len(granted) == 1 and granted[0]["transport"] == "tls"


# --- five --tls --------------------------------------------------------------------------------


def test_five_tls_pins_the_key_and_reports_a_change(fived, tmp_path):
    port = free_port()
    config = "[server]\nlisten = tcp:127.0.0.1:%d\naudit_log = @AUDIT@\n" % port + ECHO
    known_hosts = tmp_path / "known_hosts"
    f = fived(config)
    cert = server_cert(f)
    r = run_five("--tls", "-p", str(port), "127.0.0.1", "echo", input=b"first")
    assert (r.returncode, r.stdout) == (0, b"first"), r.stderr
    assert r.stderr == b"five: new host 127.0.0.1:%d/tls, TLS key %s, pinned in %s\n" % (
        port, fingerprint(cert).encode(), str(known_hosts).encode())
    pin = "127.0.0.1:%d/tls %s\n" % (port, base64.b64encode(spki_digest(cert)).decode())
    assert known_hosts.read_text() == pin
    r = run_five("--tls", "-p", str(port), "127.0.0.1", "echo", input=b"again")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"again", b"")
    r = run_five("--tls", "--key", fingerprint(cert), "-p", str(port), "127.0.0.1", "echo",
                 input=b"given")
    assert (r.returncode, r.stdout) == (0, b"given"), r.stderr
    f.stop()
    # Same address, another key file, so another certificate.
    g = fived(config, name="impostor")
    assert spki_digest(server_cert(g)) != spki_digest(cert)
    r = run_five("--tls", "-p", str(port), "127.0.0.1", "echo", input=b"must not be sent")
    assert r.returncode == 5 and r.stdout == b""
    assert r.stderr.startswith(b"five: 127.0.0.1 echo: refused: THE TLS KEY OF 127.0.0.1:%d/tls "
                               b"HAS CHANGED" % port)
    assert b"delete line 1 of %s" % str(known_hosts).encode() in r.stderr
    r = run_five("--tls", "--key", fingerprint(cert), "-p", str(port), "127.0.0.1", "echo")
    assert r.returncode == 5 and b"not %s as given" % fingerprint(cert).encode() in r.stderr
    assert g.events("granted") == []
    assert known_hosts.read_text() == pin


def test_a_tls_client_over_the_limit_is_told_why(fived):
    """PROTOCOL.md 2.2: a connection over the server's limits is answered in text before
    any handshake; five over TLS takes that line as the refusal it is (exit 5), not as a
    broken TLS record."""
    f = fived(ECHO, server="max_connections = 1\n")
    with connect(f.port) as held:
        held.sendall(b"echo\r\n")
        assert recv_line(held) == b"+\r\n"
        r = run_five("--tls", "-p", str(f.port), "127.0.0.1", "echo")
    assert (r.returncode, r.stderr) == (
        5, b"five: 127.0.0.1 echo: refused: too many connections\n"), r.stderr


def test_five_tls_restarted_server_keeps_its_certificate(fived, tmp_path):
    port = free_port()
    config = "[server]\nlisten = tcp:127.0.0.1:%d\naudit_log = @AUDIT@\n" % port + ECHO
    f = fived(config)
    cert = server_cert(f)
    assert run_five("--tls", "-p", str(port), "127.0.0.1", "echo").returncode == 0
    f.stop()
    g = fived(config)
    assert spki_digest(server_cert(g)) == spki_digest(cert)
    r = run_five("--tls", "-p", str(port), "127.0.0.1", "echo", input=b"same key")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"same key", b"")


def test_five_tls_large_transfer_both_ways(fived):
    f = fived(ECHO)
    data = os.urandom(3 * 1024 * 1024 + 7)
    r = run_five("--tls", "-p", str(f.port), "127.0.0.1", "echo", input=data, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
    closed = f.events("closed")[0]
    assert closed["bytes_in"] == closed["bytes_out"] == len(data)


def test_encryption_required_is_met_by_tls(fived):
    f = fived("[service:secret]\nbackend = builtin:echo\nencryption = required\n")
    assert exchange(f.port, b"secret\r\nx") == b"- encryption required\r\n"
    r = run_five("--tls", "-p", str(f.port), "127.0.0.1", "secret", input=b"over tls")
    assert (r.returncode, r.stdout) == (0, b"over tls"), r.stderr


@needs_pam_wrapper
def test_password_over_tls_needs_no_permission(fived, world):
    f = fived(base_config(world).replace("allow_plaintext_password = yes", "")
              + ECHO_RESTRICTED, env=world.fived_env())
    r = run_five("--tls", "-p", str(f.port), "-a", "password", "-l", "alice", "127.0.0.1",
                 "secret", input=b"tls secret", env=world.client_env(password="wonderland"))
    assert (r.returncode, r.stdout) == (0, b"tls secret"), r.stderr
    assert f.events("authenticated")[0]["method"] == "password"


def listed(read_line, send):
    """Sends LIST; the names of the answer, between "+ LIST" and its terminator."""
    send(b"LIST\r\n")
    assert read_line() == b"+ LIST\r\n"
    names = []
    while (line := read_line()) != b".\r\n":
        names.append(line.decode().rstrip("\r\n"))
    return names


@needs_pam_wrapper
def test_the_reports_walk_through_by_discovery_alone(fived, world):
    """Report 3.1.3: "Here is an example of a user using the TLS service, then
    authenticating using AUTH and receiving access to the service telnet which they then
    access over a secure and authenticated session": LIST, TLS, AUTH, LIST, the service,
    each step taken only because the LIST before it named it. And 3.1.2: "AUTH itself acts
    as a restricted service until after TLS or another acceptable encryption scheme is
    invoked": in clear, LIST names TLS and not AUTH."""
    config = base_config(world).replace("allow_plaintext_password = yes\n", "") \
        .replace("allow_plaintext_pubkey = yes\n", "")
    f = fived(config + ECHO_RESTRICTED, env=world.fived_env())
    with connect(f.port) as s:
        names = listed(lambda: recv_line(s), s.sendall)
        assert "TLS" in names and "AUTH" not in names and "secret" not in names, names
        s.sendall(b"TLS\r\n")
        assert recv_line(s) == b"+ SUCCESS\r\n"
        with client_context().wrap_socket(s) as t, t.makefile("rb") as r:
            names = listed(r.readline, t.sendall)
            assert "AUTH" in names and "TLS" not in names and "secret" not in names, names
            t.sendall(b"AUTH password\r\nUSER alice\r\n")
            assert r.readline() == b"+ SUCCESS password\r\n"
            assert r.readline() == b"+ PROMPT-ECHO-OFF Password: \r\n"
            t.sendall(b"RESPONSE " + base64.b64encode(b"wonderland") + b"\r\n")
            assert r.readline() == b"+ Authentication as alice successful\r\n"
            names = listed(r.readline, t.sendall)
            assert "secret" in names and "AUTH" not in names, names
            t.sendall(b"secret\r\nresearcher@researchbox")
            assert r.read(len(b"+\r\nresearcher@researchbox")) == \
                b"+\r\nresearcher@researchbox"
    assert f.events("granted")[0]["transport"] == "tls"


def test_plaintext_host_does_not_survive_tls(fived):
    """Nothing chosen in plaintext holds inside TLS (the STARTTLS injection pattern): a
    HOST sent (or slipped in) before TLS is forgotten, so the vhost's names are unknown
    inside until the client asks for the vhost again, encrypted."""
    f = fived(ECHO + "[service:inner]\nbackend = builtin:echo\n"
              "[vhost:v1]\nservices = only=inner\n")
    with connect(f.port) as s:
        s.sendall(b"HOST v1\r\nTLS\r\n")
        assert recv_line(s) == b"+ v1\r\n"
        assert recv_line(s) == b"+ SUCCESS\r\n"
        with client_context().wrap_socket(s) as t:
            t.sendall(b"only\r\n")
            assert ssl_read(t, 19) == b"- unknown service\r\n"
    with connect(f.port) as s:
        s.sendall(b"TLS\r\n")
        assert recv_line(s) == b"+ SUCCESS\r\n"
        with client_context().wrap_socket(s) as t:
            t.sendall(b"HOST v1\r\nonly\r\nhi")
            assert ssl_read(t, 11) == b"+ v1\r\n+\r\nhi"


def test_pubkey_over_tls_signs_the_channel_binding(fived, world):
    f = fived(base_config(world) + ECHO_RESTRICTED, env=world.fived_env())
    r = run_five("--tls", "-p", str(f.port), "-l", "alice", "-i", str(world.keys["alice"]),
                 "127.0.0.1", "secret", input=b"bound", env=world.client_env())
    assert (r.returncode, r.stdout) == (0, b"bound"), r.stderr
    # A signature without the binding (as on a plain session) is refused inside TLS.
    sk, pk = load_key(world.keys["alice"])
    with connect(f.port) as s:
        s.sendall(b"TLS\r\n")
        assert recv_line(s) == b"+ SUCCESS\r\n"
        tls = MemoryTLS(s)
        tls.handshake()
        tls.send(b"AUTH pubkey\r\n" + user_line("alice", pk))
        line = b""
        while line.count(b"\n") < 2:
            line += tls.recv_exactly(1)
        sid, nonce = parse_challenge(line.split(b"\r\n")[1] + b"\r\n")
        tls.send(signature_line(sk, signed_data(sid, nonce, "alice", pk)))
        assert tls.recv_exactly(25) == b"- authentication failed\r\n"


# --- client certificates ---------------------------------------------------------------------


def env_of(stdout):
    return dict(line.split("=", 1) for line in stdout.decode().splitlines())


def test_client_certificate_by_fingerprint(fived, tmp_path):
    cert, key, c, _ = make_cert(tmp_path, "alice", "CN=alice")
    other, other_key, _, _ = make_cert(tmp_path, "mallory", "CN=alice")
    clients = tmp_path / "tls_clients"
    clients.write_text("# by key\n%s alice\n" % fingerprint(c))
    f = fived(WHO, server="tls_clients = %s\n" % clients)
    r = run_five("--tls", "--tls-cert", cert, "--tls-key", key, "-p", str(f.port), "127.0.0.1",
                 "who")
    assert r.returncode == 0, r.stderr
    env = env_of(r.stdout)
    assert env["FIVE_IDENTITY"] == "alice" and env["FIVE_AUTH_METHOD"] == "external"
    auth = f.events("authenticated")[0]
    assert (auth["method"], auth["certificate"]) == ("external", fingerprint(c))
    granted = f.events("granted")[0]
    assert (granted["identity"], granted["transport"]) == ("alice", "tls")
    # The same subject with another key is nobody; so is no certificate.
    for argv in (["--tls-cert", other, "--tls-key", other_key], []):
        r = run_five("--tls", *argv, "-p", str(f.port), "127.0.0.1", "who")
        assert r.returncode == 5 and b"refused: unknown service" in r.stderr, r.stderr
    assert len(f.events("authenticated")) == 1


def test_client_certificate_by_verified_subject(fived, tmp_path):
    ca = make_cert(tmp_path, "ca", "CN=Test CA", is_ca=True)
    bob, bob_key, _, _ = make_cert(tmp_path, "bob", "CN=bob,O=Example", ca=ca)
    forged, forged_key, _, _ = make_cert(tmp_path, "forged", "CN=bob,O=Example")
    clients = tmp_path / "tls_clients"
    clients.write_text("subject:CN=bob,O=Example bob\n")
    config = WHO
    server = "tls_clients = %s\ntls_client_ca = %s\n" % (clients, ca[0])
    f = fived(config, server=server)
    r = run_five("--tls", "--tls-cert", bob, "--tls-key", bob_key, "-p", str(f.port),
                 "127.0.0.1", "who")
    assert r.returncode == 0, r.stderr
    assert env_of(r.stdout)["FIVE_IDENTITY"] == "bob"
    # Anyone can make a certificate with that subject: without the CA's signature it is nobody.
    r = run_five("--tls", "--tls-cert", forged, "--tls-key", forged_key, "-p", str(f.port),
                 "127.0.0.1", "who")
    assert r.returncode == 5 and b"unknown service" in r.stderr
    # tls_clients is read again on SIGHUP.
    clients.write_text("subject:CN=bob,O=Example robert\n")
    f.reload(config)
    r = run_five("--tls", "--tls-cert", bob, "--tls-key", bob_key, "-p", str(f.port),
                 "127.0.0.1", "who")
    assert r.returncode == 0 and env_of(r.stdout)["FIVE_IDENTITY"] == "robert", r.stderr


def test_subject_lines_need_a_ca(tmp_path):
    clients = tmp_path / "tls_clients"
    clients.write_text("subject:CN=bob bob\n")
    conf = tmp_path / "fived.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = none\nkey_file = %s\n"
                    "tls_clients = %s\n" % (tmp_path / "k.key", clients) + ECHO)
    r = subprocess.run([FIVED, "-c", str(conf)], capture_output=True, timeout=10 * SLOW)
    assert r.returncode == 1
    assert b"%s:1: subject: lines need tls_client_ca" % str(clients).encode() in r.stderr


def test_reload_keeps_the_certificate_files(fived, tmp_path):
    f = fived(ECHO)
    f.reload("[server]\nlisten = tcp:127.0.0.1:%d\naudit_log = @AUDIT@\n"
             "tls_certificate = /nonexistent/c.pem\ntls_key = /nonexistent/k.pem\n" % f.port
             + ECHO)
    wait_for(lambda: "restart fived to change them" in f.log(), what="the reload refused")
    r = run_five("--tls", "-p", str(f.port), "127.0.0.1", "echo", input=b"still")
    assert (r.returncode, r.stdout) == (0, b"still"), r.stderr


# --- what must not pass ------------------------------------------------------------------------


def test_dark_server_is_silent_to_tls(fived):
    f = fived(ECHO, server="dark = yes\nrequest_timeout = 1s\n")
    with connect(f.port) as s:
        s.sendall(MemoryTLS(s).client_hello())
        assert recv_all(s) == b""
    wait_for(lambda: f.events("closed"), what="the close")
    assert f.events("closed")[0]["reason"] == "dark: not a sealed handshake"


def test_a_corrupted_record_ends_the_session(fived, sentinel):
    backend = sentinel("silent")
    f = fived("[service:s]\nbackend = tcp:127.0.0.1:%d\n" % backend.port)
    with connect(f.port) as s:
        tls = MemoryTLS(s)
        tls.handshake()
        tls.send(b"s\r\nfirst")
        assert tls.recv_exactly(3) == b"+\r\n"
        wait_for(lambda: backend.bytes == 5, what="the first bytes")
        damaged = bytearray(tls.record(b"second"))
        damaged[-1] ^= 1
        s.sendall(bytes(damaged) + tls.record(b"third"))
        recv_all(s)
    wait_for(lambda: backend.received, what="the backend's connection to end")
    assert backend.received == [b"first"]
    reason = f.events("closed")[0]["reason"]
    assert reason.startswith("tls: ") and "mac" in reason, reason


def test_tls_before_1_3_is_refused(fived):
    f = fived(ECHO)
    with connect(f.port) as s:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            client_context(version=ssl.TLSVersion.TLSv1_2).wrap_socket(s)
    wait_for(lambda: f.events("closed"), what="the close")
    assert f.events("closed")[0]["reason"].startswith("tls handshake failed: ")
    assert f.events("granted") == []


def test_a_stalled_handshake_times_out(fived):
    f = fived(ECHO, server="request_timeout = 1\n")
    with connect(f.port) as s:
        s.sendall(MemoryTLS(s).client_hello())
        start = time.monotonic()
        recv_all(s)
        assert time.monotonic() - start < 4 * SLOW
    wait_for(lambda: f.events("closed"), what="the close")
    assert f.events("closed")[0]["reason"] == "request timeout"


def test_fived_stops_cleanly_with_tls_sessions(fived):
    f = fived(ECHO)
    with connect(f.port) as s:
        tls = MemoryTLS(s)
        tls.handshake()
        tls.send(b"echo\r\nx")
        assert tls.recv_exactly(4) == b"+\r\nx"
        f.proc.send_signal(signal.SIGINT)
        wait_for(lambda: "stopping" in f.log(), what="the drain")
        f.proc.send_signal(signal.SIGINT)
        f.proc.wait(5 * SLOW)
    assert f.events("closed")[0]["reason"] == "shutdown"
