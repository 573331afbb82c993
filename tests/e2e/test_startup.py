"""fived starting: the key files it makes or refuses, and what it says about them and
about its sessions."""

import os
import re
import signal
import subprocess

import pytest

from conftest import FIVED, SLOW, connect, recv_line, wait_for
from test_tls import make_cert

ECHO = "[service:echo]\nbackend = builtin:echo\n"
OTHER_UID = 12345


def write_conf(tmp_path, server=""):
    conf = tmp_path / "fived.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = none\n" + server + ECHO)
    return conf


def run_fived(*args, env=None):
    """Starts fived; stops it once started (or at once, when it fails): (status, stderr)."""
    p = subprocess.Popen([FIVED, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if " started with " in line:
            p.send_signal(signal.SIGTERM)
    return p.wait(5 * SLOW), "".join(lines)


def fingerprint_of(conf):
    r = subprocess.run([FIVED, "--print-key", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[1]


# --- which files are made, and which directories are not --------------------------------------


def test_a_key_file_in_a_missing_directory_is_not_made(tmp_path):
    key = tmp_path / "nonexistent" / "dir" / "server.key"
    conf = write_conf(tmp_path, "key_file = %s\n" % key)
    status, err = run_fived("-c", str(conf))
    assert status == 1
    assert "%s: cannot create: directory %s does not exist" % (key, key.parent) in err, err
    for option in ("--print-key", "--print-token-key"):
        r = subprocess.run([FIVED, option, "-c", str(conf)], capture_output=True, text=True)
        assert r.returncode == 1 and "does not exist" in r.stderr, r.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_new_keys_are_announced_once(tmp_path):
    key = tmp_path / "state" / "server.key"
    key.parent.mkdir()
    os.chmod(key.parent, 0o755)
    conf = write_conf(tmp_path, "key_file = %s\n" % key)
    status, err = run_fived("-c", str(conf))
    assert status == 0, err
    fp = fingerprint_of(conf)
    assert "created a new server key in %s (fingerprint %s)" % (key, fp) in err, err
    kid = subprocess.run([FIVED, "--print-token-key", "-c", str(conf)], capture_output=True,
                         text=True).stdout.split()[1]
    assert "created a new token key in %s (key id %s)" % (
        tmp_path / "state" / "server-token.key", kid) in err, err
    assert ("created a self-signed TLS certificate in %s and its key in %s"
            % (tmp_path / "state" / "server-tls.crt", tmp_path / "state" / "server-tls.key")
            in err), err
    assert "created %s for revoked tokens" % (tmp_path / "state" / "server-revoked") in err, err
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    status, err = run_fived("-c", str(conf))
    assert status == 0 and "created" not in err, err


def test_print_key_announces_the_key_it_makes(tmp_path):
    key = tmp_path / "server.key"
    conf = write_conf(tmp_path, "key_file = %s\n" % key)
    r = subprocess.run([FIVED, "--print-key", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 0
    assert "created a new server key in %s (fingerprint %s)" % (key, r.stdout.split()[1]) \
        in r.stderr, r.stderr


def test_the_default_state_directory_is_made(tmp_path):
    """Without key_file, fived keeps its keys in a directory of its own, made when missing."""
    home = tmp_path / "home"
    home.mkdir()
    conf = write_conf(tmp_path)
    argv = [FIVED, "--print-key", "-c", str(conf)]
    if os.geteuid() == 0:   # as root the default is /var/lib/fived: be somebody else
        os.chown(home, 65534, 65534)
        os.chmod(conf, 0o644)
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv
    r = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, HOME=str(home)))
    assert r.returncode == 0, r.stderr
    key = home / ".local" / "state" / "fived" / "server.key"
    assert key.exists()
    assert "created a new server key in %s" % key in r.stderr
    for d in (home / ".local", home / ".local" / "state", key.parent):
        assert oct(d.stat().st_mode & 0o777) == "0o700"


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")


# --- what is wrong with a key file, each reason on its own --------------------------------------


def made_key(tmp_path):
    key = tmp_path / "server.key"
    conf = write_conf(tmp_path, "key_file = %s\n" % key)
    fingerprint_of(conf)
    return conf, key


def test_a_key_file_others_may_read(tmp_path):
    conf, key = made_key(tmp_path)
    os.chmod(key, 0o644)
    status, err = run_fived("-c", str(conf))
    assert status == 1
    assert "%s: readable by group and others (mode 644): chmod 600 it" % key in err, err
    assert "owned by" not in err and "not ours" not in err
    os.chmod(key, 0o660)
    status, err = run_fived("-c", str(conf))
    assert "%s: readable and writable by group (mode 660): chmod 600 it" % key in err, err


def test_a_key_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    """A key file is read only if it is a regular file: a FIFO at its path is refused at
    once, not waited on for a writer."""
    conf, key = made_key(tmp_path)
    os.unlink(key)
    os.mkfifo(key, 0o600)
    status, err = run_fived("-c", str(conf))
    assert status == 1 and "%s: not a regular file" % key in err, err


def test_a_key_file_of_another_user(tmp_path):
    needs_root()
    conf, key = made_key(tmp_path)
    os.chown(key, OTHER_UID, OTHER_UID)
    status, err = run_fived("-c", str(conf))
    assert status == 1
    assert "%s: owned by uid %d, not by uid 0 (root) that reads it: chown it" % (
        key, OTHER_UID) in err, err
    assert "chmod" not in err
    os.chmod(key, 0o604)
    status, err = run_fived("-c", str(conf))
    assert ("%s: owned by uid %d, not by uid 0 (root) that reads it: chown it; "
            "readable by others (mode 604): chmod 600 it" % (key, OTHER_UID)) in err, err


def test_a_tls_key_others_may_read_or_of_another_user(tmp_path):
    cert, tls_key, _, _ = make_cert(tmp_path, "server", "CN=fived")
    conf = write_conf(tmp_path, "key_file = %s\ntls_certificate = %s\ntls_key = %s\n"
                      % (tmp_path / "k.key", cert, tls_key))
    os.chmod(tls_key, 0o644)
    status, err = run_fived("-c", str(conf))
    assert status == 1
    assert "TLS key %s: readable by others (mode 644): chmod 600 it" % tls_key in err, err
    assert "owned by" not in err and "not ours" not in err
    if os.geteuid() != 0:
        return
    os.chmod(tls_key, 0o640)
    os.chown(tls_key, OTHER_UID, OTHER_UID)
    status, err = run_fived("-c", str(conf))
    assert status == 1
    assert "TLS key %s: owned by uid %d, not by uid 0 (root) that reads it: chown it" % (
        tls_key, OTHER_UID) in err, err
    assert "chmod" not in err


# --- what fived says ---------------------------------------------------------------------------


def test_session_counts_in_the_singular_and_the_plural(fived):
    f = fived(ECHO)
    held = [connect(f.port)]
    held[0].sendall(b"echo\r\n")
    assert recv_line(held[0]) == b"+\r\n"
    f.reload(ECHO)
    assert "reloaded the configuration; 1 session continues" in f.log()
    held.append(connect(f.port))
    held[1].sendall(b"echo\r\n")
    assert recv_line(held[1]) == b"+\r\n"
    f.reload(ECHO)
    assert "reloaded the configuration; 2 sessions continue" in f.log()
    held.pop().close()
    wait_for(lambda: len(f.events("closed")) == 1, what="a session closed")
    f.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "may finish" in f.log(), what="the drain")
    assert "stopping: no new connections; 1 session may finish" in f.log(), f.log()
    f.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "second stop signal" in f.log(), what="the second signal")
    assert "second stop signal: closing 1 session now" in f.log()
    held[0].close()


def test_errors_at_start_are_logged_as_errors(tmp_path):
    status, err = run_fived("-c", str(tmp_path / "nonexistent.conf"))
    assert status == 1
    assert re.fullmatch(r"\S+Z fived\[\d+\] error: %s: No such file or directory\n"
                        % re.escape(str(tmp_path / "nonexistent.conf")), err), err
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:99999\nlistne = 1\n")
    status, err = run_fived("-c", str(conf))
    assert status == 1
    assert re.fullmatch(r"\S+Z fived\[\d+\] error: %s:2: listen: port must be a number from 0 "
                        r"to 65535\n"
                        r"\S+Z fived\[\d+\] error: %s:3: unknown key \"listne\" in \[server\]\n"
                        % (re.escape(str(conf)), re.escape(str(conf))), err), err
