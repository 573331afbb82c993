"""fived -t: everything fived checks as it starts, checked without starting, binding or
creating anything; a failure exits 1, a backend that does not answer now is a warning."""

import os
import socket
import subprocess

import pytest

from conftest import FIVED, free_port
from test_tls import make_cert

ECHO = "[service:echo]\nbackend = builtin:echo\n"


def write_conf(tmp_path, server="", services=ECHO, key=None):
    key = key or tmp_path / "state" / "server.key"
    conf = tmp_path / "fived.conf"
    if "audit_log" not in server:
        server = "audit_log = none\n" + server
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\nkey_file = %s\n" % key + server + services)
    return conf


def with_keys(tmp_path, server="", services=ECHO):
    """A configuration whose key files fived has already made, as after a first start."""
    (tmp_path / "state").mkdir(exist_ok=True)
    os.chmod(tmp_path / "state", 0o755)
    conf = write_conf(tmp_path)
    r = subprocess.run([FIVED, "--print-token-key", "-c", str(conf)], capture_output=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([FIVED, "--print-key", "-c", str(conf)], capture_output=True)
    assert r.returncode == 0, r.stderr
    return write_conf(tmp_path, server, services)


def files_below(path):
    return sorted(os.path.join(d, f) for d, dirs, files in os.walk(path) for f in dirs + files)


def check(conf):
    before = files_below(conf.parent)
    r = subprocess.run([FIVED, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert files_below(conf.parent) == before, "fived -t created something"
    return r


def fails(conf, message):
    r = check(conf)
    assert r.returncode == 1, r.stderr
    assert "configuration OK" not in r.stdout
    assert "fived: error: " + message in r.stderr, r.stderr
    return r


def passes(conf, *warnings):
    r = check(conf)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: configuration OK\n" % conf
    for w in warnings:
        assert "fived: warning: " + w in r.stderr, r.stderr
    if not warnings:
        assert "warning" not in r.stderr, r.stderr
    return r


# --- keys ---------------------------------------------------------------------------------------


def test_all_well(tmp_path):
    passes(with_keys(tmp_path))


def test_keys_start_would_make_are_named_not_made(tmp_path):
    (tmp_path / "state").mkdir()
    state = tmp_path / "state"
    r = passes(write_conf(tmp_path))
    for note in ("%s does not exist yet: fived will create a new server key there"
                 % (state / "server.key"),
                 "%s does not exist yet: fived will create a new token key there"
                 % (state / "server-token.key"),
                 "%s does not exist yet: fived will make a self-signed TLS certificate there"
                 % (state / "server-tls.crt"),
                 "%s does not exist yet: fived will create it for revoked tokens"
                 % (state / "server-revoked")):
        assert "fived: info: " + note in r.stderr, r.stderr


def test_a_key_in_a_missing_directory(tmp_path):
    key = tmp_path / "nonexistent" / "server.key"
    fails(write_conf(tmp_path, key=key),
          "%s: cannot create: directory %s does not exist" % (key, key.parent))


def test_a_key_file_others_may_read(tmp_path):
    conf = with_keys(tmp_path)
    key = tmp_path / "state" / "server.key"
    os.chmod(key, 0o644)
    fails(conf, "%s: readable by group and others (mode 644): chmod 600 it" % key)
    os.chmod(key, 0o600)
    os.chmod(tmp_path / "state" / "server-token.key", 0o640)
    fails(conf, "%s: readable by group (mode 640): chmod 600 it"
          % (tmp_path / "state" / "server-token.key"))


def test_a_damaged_key_file(tmp_path):
    conf = with_keys(tmp_path)
    (tmp_path / "state" / "server.key").write_text("garbage\n")
    fails(conf, "%s: not a fived-server-key-v1 file" % (tmp_path / "state" / "server.key"))


# --- TLS ----------------------------------------------------------------------------------------


def test_tls_files_that_cannot_be_read(tmp_path):
    cert, key, _, _ = make_cert(tmp_path, "tls", "CN=fived")
    conf = with_keys(tmp_path, "tls_certificate = %s\ntls_key = %s\n" % (cert, key))
    passes(conf)
    conf = with_keys(tmp_path, "tls_certificate = %s\ntls_key = %s\n" % (tmp_path / "no.crt", key))
    fails(conf, "TLS certificate %s: " % (tmp_path / "no.crt"))
    os.chmod(key, 0o644)
    conf = with_keys(tmp_path, "tls_certificate = %s\ntls_key = %s\n" % (cert, key))
    fails(conf, "TLS key %s: readable by others (mode 644): chmod 600 it" % key)
    other, other_key, _, _ = make_cert(tmp_path, "other", "CN=other")
    conf = with_keys(tmp_path, "tls_certificate = %s\ntls_key = %s\n" % (cert, other_key))
    fails(conf, "TLS key does not go with the certificate: %s" % other_key)
    conf = with_keys(tmp_path, "tls_client_ca = %s\n" % (tmp_path / "no-ca.pem"))
    fails(conf, "tls_client_ca %s: " % (tmp_path / "no-ca.pem"))


def test_a_self_signed_key_others_may_read(tmp_path):
    conf = with_keys(tmp_path)
    # The self-signed pair is made at the first start: make it as start does.
    p = subprocess.Popen([FIVED, "-c", str(conf)], stderr=subprocess.PIPE, text=True,
                         stdout=subprocess.DEVNULL)
    for line in p.stderr:
        if " started with " in line:
            p.terminate()
    p.wait()
    tls_key = tmp_path / "state" / "server-tls.key"
    assert tls_key.exists()
    passes(conf)
    os.chmod(tls_key, 0o606)
    fails(conf, "TLS key %s: readable and writable by others (mode 606): chmod 600 it" % tls_key)


def test_a_tls_clients_file_that_does_not_parse(tmp_path):
    clients = tmp_path / "tls_clients"
    clients.write_text("SHA256:nonsense bob\n")
    os.chmod(clients, 0o644)
    fails(with_keys(tmp_path, "tls_clients = %s\n" % clients), "%s:1: " % clients)
    fails(with_keys(tmp_path, "tls_clients = %s\n" % (tmp_path / "none")),
          "%s: No such file or directory" % (tmp_path / "none"))


def test_a_tls_clients_file_only_root_may_read(tmp_path):
    """The monitor reads tls_clients for the worker: a file only root may read is fine."""
    if os.geteuid() != 0:
        pytest.skip("privilege separation needs root")
    clients = tmp_path / "tls_clients"
    clients.write_text("# nobody yet\n")
    os.chmod(clients, 0o600)
    passes(with_keys(tmp_path, "tls_clients = %s\n" % clients))


# --- client keys and tokens ---------------------------------------------------------------------


def test_an_authorized_clients_file_that_does_not_parse(tmp_path):
    clients = tmp_path / "authorized_clients"
    clients.write_text("not-base64 robot\n")
    fails(with_keys(tmp_path, "authorized_clients = %s\n" % clients), "%s:1: " % clients)
    fails(with_keys(tmp_path, "authorized_clients = %s\n" % (tmp_path / "none")),
          "%s: No such file or directory" % (tmp_path / "none"))


def test_a_token_trusted_keys_file_that_does_not_parse(tmp_path):
    trusted = tmp_path / "trusted"
    trusted.write_text("short name\n")
    fails(with_keys(tmp_path, "token_trusted_keys = %s\n" % trusted), "%s:1: " % trusted)


def test_a_damaged_revocation_file(tmp_path):
    revoked = tmp_path / "revoked"
    revoked.write_text("this is no revocation\n")
    fails(with_keys(tmp_path, "revocation_file = %s\n" % revoked),
          "%s:1: expected a token id and its expiry" % revoked)
    fails(with_keys(tmp_path, "revocation_file = %s\n" % (tmp_path / "nodir" / "revoked")),
          "%s: cannot create: directory %s does not exist"
          % (tmp_path / "nodir" / "revoked", tmp_path / "nodir"))


# --- the audit log, the user, listeners ---------------------------------------------------------


def test_an_audit_log_that_cannot_be_opened(tmp_path):
    log = tmp_path / "nodir" / "audit.log"
    fails(with_keys(tmp_path, "audit_log = %s\n" % log),
          "audit log %s: cannot create: directory %s does not exist" % (log, log.parent))
    fails(with_keys(tmp_path, "audit_log = %s\n" % tmp_path),
          "audit log %s: Is a directory" % tmp_path)
    r = passes(with_keys(tmp_path, "audit_log = %s\n" % (tmp_path / "audit.log")))
    assert "fived: info: audit log %s does not exist yet: fived will create it" % (
        tmp_path / "audit.log") in r.stderr


def test_a_user_that_does_not_exist(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the worker's user matters only to root")
    fails(with_keys(tmp_path, "user = nosuchuser\n"), "user nosuchuser does not exist")


def test_listen_addresses_that_cannot_be(tmp_path):
    fails(with_keys(tmp_path, "listen = unix:%s\n" % (tmp_path / "nodir" / "s.sock")),
          "cannot listen on unix:%s: directory %s does not exist"
          % (tmp_path / "nodir" / "s.sock", tmp_path / "nodir"))
    fails(with_keys(tmp_path, "listen = tcp:192.0.2.1:5501\n"),
          "cannot listen on tcp:192.0.2.1:5501: Cannot assign requested address")
    fails(with_keys(tmp_path, "control_socket = %s\n" % (tmp_path / "nodir" / "c.sock")),
          "cannot open the control socket %s: directory %s does not exist"
          % (tmp_path / "nodir" / "c.sock", tmp_path / "nodir"))


# --- backends -----------------------------------------------------------------------------------


def service(backend):
    return "[service:x]\nbackend = %s\n" % backend


EXEC_USER = "exec_user = daemon\n"


def test_an_exec_program_that_does_not_exist_or_cannot_run(tmp_path):
    fails(with_keys(tmp_path, EXEC_USER, services=service("exec:/nonexistent/prog -x")),
          "service x: exec:/nonexistent/prog: No such file or directory")
    prog = tmp_path / "prog"
    prog.write_text("#!/bin/sh\necho hi\n")
    os.chmod(prog, 0o644)
    fails(with_keys(tmp_path, EXEC_USER, services=service("exec:%s" % prog)),
          "service x: exec:%s: not executable" % prog)
    os.chmod(prog, 0o755)
    passes(with_keys(tmp_path, EXEC_USER, services=service("exec:%s" % prog)))
    fails(with_keys(tmp_path, EXEC_USER, services=service("exec:%s" % tmp_path)),
          "service x: exec:%s: not a regular file" % tmp_path)


def test_an_exec_program_exec_user_cannot_run(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("privilege separation needs root")
    prog = tmp_path / "prog"
    prog.write_text("#!/bin/sh\necho hi\n")
    os.chmod(prog, 0o700)
    fails(with_keys(tmp_path, EXEC_USER, services=service("exec:%s" % prog)),
          "service x: exec:%s: not executable by exec_user daemon" % prog)
    passes(with_keys(tmp_path, "user = root\n", services=service("exec:%s" % prog)))


def test_exec_user_must_not_be_the_workers(tmp_path):
    """Programs of exec services run under an account the worker does not share."""
    if os.geteuid() != 0:
        pytest.skip("privilege separation needs root")
    prog = tmp_path / "prog"
    prog.write_text("#!/bin/sh\necho hi\n")
    os.chmod(prog, 0o755)
    fails(with_keys(tmp_path, "user = nobody\nexec_user = nobody\n",
                    services=service("exec:%s" % prog)),
          "exec_user nobody is the worker's account")
    fails(with_keys(tmp_path, "exec_user = nosuchuser\n", services=service("exec:%s" % prog)),
          "exec_user nosuchuser does not exist")
    passes(with_keys(tmp_path, "user = nobody\nexec_user = nobody\n"))


def test_a_unix_backend_whose_path_does_not_exist(tmp_path):
    path = tmp_path / "nothing.sock"
    fails(with_keys(tmp_path, services=service("unix:%s" % path)),
          "service x: unix:%s: No such file or directory" % path)
    path.write_text("")
    fails(with_keys(tmp_path, services=service("unix:%s" % path)),
          "service x: unix:%s: not a socket" % path)


def test_a_unix_backend_nobody_listens_on_is_a_warning(tmp_path):
    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()    # the file stays, nobody listens
    passes(with_keys(tmp_path, services=service("unix:%s" % path)),
           "service x: cannot reach unix:%s now: Connection refused" % path)
    s = socket.socket(socket.AF_UNIX)
    path.unlink()
    s.bind(str(path))
    os.chmod(path, 0o777)
    s.listen()
    passes(with_keys(tmp_path, services=service("unix:%s" % path)))
    s.close()


def test_a_tcp_backend_refusing_connections_is_a_warning(tmp_path):
    port = free_port()
    passes(with_keys(tmp_path, services=service("tcp:127.0.0.1:%d" % port)),
           "service x: cannot reach tcp:127.0.0.1:%d now: Connection refused" % port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        passes(with_keys(tmp_path, services=service("tcp:127.0.0.1:%d" % s.getsockname()[1])))
        passes(with_keys(tmp_path, services=service("tcp:localhost:%d" % s.getsockname()[1])))


def test_the_builtin_configuration(tmp_path):
    r = subprocess.run([FIVED, "-t"], capture_output=True, text=True,
                       env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 0 and r.stdout == "(built-in): configuration OK\n", r.stderr
