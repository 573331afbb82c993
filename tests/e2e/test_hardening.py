"""Failing closed around the core: 0-RTT data is acted on at most once across restarts,
the monitor keeps the keys and the service, the worker is confined, limits refuse
instead of failing open.  Each test here failed on the code before its fix."""

import base64
import os
import re
import signal
import socket
import time

import pytest

from conftest import SANITIZED, SLOW, connect, exchange, recv_all, recv_line, wait_for
from sealwire import Handshake, SealedClient, keypair
from test_sealed import authorized_file, sentinel_service, server_key

T = 5 * SLOW
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="privilege separation needs root")
# The sanitizers read /proc and trace the process at exit: their builds skip chroot and seccomp.
needs_confinement = pytest.mark.skipif(SANITIZED or not ROOT,
                                       reason="confinement is off in sanitizer builds "
                                              "and without root")


def worker_pid(f, after=0):
    """The pid of the newest worker fived's log announces (beyond the first `after`)."""
    def newest():
        found = re.findall(r"fived\[(\d+)\] info: privilege separation: worker runs as",
                           f.log())
        return int(found[-1]) if len(found) > after else None
    return wait_for(newest, what="a worker")


def readable_memory(pid):
    """The bytes of every readable mapping of a process (as root), but the huge ones a
    sanitizer reserves for its shadow memory."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            if end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                out.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                pass
    return b"".join(out)


def key_file_secret(path):
    return base64.b64decode(path.read_text().split()[1])


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def zero_rtt_site(fived, sentinel, tmp_path):
    s = sentinel("count")
    priv, pub = keypair()
    f = fived(sentinel_service(s),
              server="authorized_clients = %s" % authorized_file(tmp_path, {"robot": pub}))
    return s, priv, f


def replay(port, data):
    """Sends recorded bytes as an attacker would, without the keys to go on, and leaves."""
    with socket.create_connection(("127.0.0.1", port), timeout=T) as c:
        c.sendall(data)
        time.sleep(0.2)


def send_once(f, priv):
    """A 0-RTT request, acted on; returns the first message as it went on the wire."""
    hs = Handshake(server_key(f), priv, early=b"s\r\nTRANSFER")
    c = SealedClient(f.port, handshake=hs, timeout=T)
    assert c.zero_rtt
    c.close_write()
    assert c.recv_all() == b"+\r\ngot 8\n"
    c.close()
    return hs.initiation


# --- 0-RTT at most once --------------------------------------------------------------------


def test_0rtt_replayed_after_a_restart_is_not_acted_on(fived, sentinel, tmp_path):
    """A first message recorded on the wire and replayed after fived restarts (same key,
    within the clock skew) must not reach the backend again."""
    s, priv, f = zero_rtt_site(fived, sentinel, tmp_path)
    recorded = send_once(f, priv)
    wait_for(lambda: s.connections == 1, what="the first delivery")
    f.stop()
    g = fived(sentinel_service(s), server="authorized_clients = %s" % (tmp_path /
                                                                        "authorized_clients"))
    for _ in range(3):
        replay(g.port, recorded)
    time.sleep(0.3)
    assert s.connections == 1
    # A fresh message from the same client is served: not acted on early for a moment
    # after the restart, it is sent again as records and arrives once.
    with SealedClient(g.port, server_key(g), static_key=priv, early=b"s\r\nagain",
                      timeout=T) as c:
        c.close_write()
        assert c.recv_all() == b"+\r\ngot 5\n"
    wait_for(lambda: s.connections == 2, what="the fresh request")


def test_a_replayed_first_message_is_not_taken_for_its_client(fived, sentinel, tmp_path):
    """Replayed after a restart, a recorded IK first message completes no handshake: the
    audit log must not say its client authenticated. Only the client can follow the
    response with a record, so that is when its key becomes the session's identity."""
    s, priv, f = zero_rtt_site(fived, sentinel, tmp_path)
    recorded = send_once(f, priv)
    wait_for(lambda: s.connections == 1, what="the first delivery")
    assert len(f.events("authenticated")) == 1
    f.stop()
    g = fived(sentinel_service(s), server="authorized_clients = %s" % (tmp_path /
                                                                        "authorized_clients"))
    # g writes the same audit log as f: the first session's records are in it.
    closed = len(g.events("closed"))
    replay(g.port, recorded)
    wait_for(lambda: len(g.events("closed")) == closed + 1, what="the replayed session to end")
    assert len(g.events("authenticated")) == 1
    # The client itself, right after: authenticated once its first record came.
    with SealedClient(g.port, server_key(g), static_key=priv, early=b"s\r\nagain",
                      timeout=T) as c:
        c.close_write()
        assert c.recv_all() == b"+\r\ngot 5\n"
    assert [e["method"] for e in g.events("authenticated")] == ["external", "external"]


@needs_root
def test_0rtt_replayed_after_a_worker_restart_is_not_acted_on(fived, sentinel, tmp_path):
    s, priv, f = zero_rtt_site(fived, sentinel, tmp_path)
    recorded = send_once(f, priv)
    os.kill(worker_pid(f), signal.SIGKILL)
    worker_pid(f, after=1)
    for _ in range(3):
        replay(f.port, recorded)
    time.sleep(0.3)
    assert s.connections == 1


# --- the monitor keeps the service -------------------------------------------------------


@needs_root
def test_a_killed_worker_is_replaced_on_the_same_socket(fived):
    f = fived("[service:echo]\nbackend = builtin:echo\n")
    first = worker_pid(f)
    os.kill(first, signal.SIGKILL)
    second = worker_pid(f, after=1)
    assert second != first
    assert "its sessions are lost" in f.log()
    # The listening socket stayed open: connections made meanwhile wait, none is refused.
    assert exchange(f.port, b"echo\r\nstill here") == b"+\r\nstill here"


@needs_root
def test_a_worker_that_keeps_dying_is_restarted_more_slowly(fived):
    """Restarts are limited per minute, and never stop: a crash anyone can trigger, or a
    kill by another user of the worker's account, slows the service, never ends it."""
    f = fived("[service:echo]\nbackend = builtin:echo\n")
    for n in range(6):
        pid = worker_pid(f, after=n)
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "(too many deaths within a minute)" in f.log(), what="the slow restart")
    time.sleep(0.5)
    assert f.proc.poll() is None
    # Meanwhile the listening socket waits; a stop is still obeyed at once.
    f.proc.send_signal(signal.SIGTERM)
    assert f.proc.wait(5 * SLOW) == 0


# --- the keys stay with the monitor --------------------------------------------------------


@needs_root
def test_the_worker_holds_no_private_key(fived, tmp_path):
    """The sealed static key and the token key are in the monitor's memory only."""
    f = fived("[service:echo]\nbackend = builtin:echo\n", server="token_format = local\n")
    # Use both keys once, so that nothing is only lazily loaded.
    assert exchange(f.port, b"echo\r\nx") == b"+\r\nx"
    static = key_file_secret(f.key_file)
    seed = key_file_secret(tmp_path / "fived-token.key")
    monitor = readable_memory(f.proc.pid)
    assert static in monitor and seed in monitor, "the search finds nothing at all"
    worker = readable_memory(worker_pid(f))
    assert static not in worker
    assert seed not in worker


@needs_root
def test_the_worker_sees_little_of_the_monitors_environment(fived):
    """What fived was started with may hold what the worker has no need of: it sees the
    time zone and the locale (fived(8), privilege separation), not the rest."""
    env = dict(os.environ, FIVED_TEST_SECRET="s3cret", TZ="Europe/Paris", LC_TIME="C")
    f = fived("[service:echo]\nbackend = builtin:echo\n", env=env)
    assert exchange(f.port, b"echo\r\nx") == b"+\r\nx"
    with open("/proc/%d/environ" % f.proc.pid, "rb") as e:
        assert b"FIVED_TEST_SECRET=s3cret" in e.read().split(b"\0"), "the test sets nothing"
    with open("/proc/%d/environ" % worker_pid(f), "rb") as e:
        worker = e.read().split(b"\0")
    assert b"TZ=Europe/Paris" in worker and b"LC_TIME=C" in worker, worker
    assert not [v for v in worker if v.startswith((b"FIVED_TEST_SECRET", b"PATH", b"HOME"))]


# --- the worker is confined ------------------------------------------------------------------


@needs_confinement
def test_the_worker_is_confined(fived):
    f = fived("[service:echo]\nbackend = builtin:echo\n")
    pid = worker_pid(f)
    st = status(pid)
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert st["Uid"].split()[0] != "0"
    assert os.readlink("/proc/%d/root" % pid) == "/run/fived/chroot"
    assert st["TracerPid"] == "0"


@needs_root
def test_exec_programs_run_as_exec_user_and_cannot_signal_the_worker(fived, tmp_path):
    prog = tmp_path / "who"
    prog.write_text("#!/bin/sh\nid -u\nkill -0 \"$1\" 2>/dev/null && echo reached || "
                    "echo refused\n")
    prog.chmod(0o755)
    f = fived("[service:who]\nbackend = exec:%s WORKER\n" % prog)
    pid = worker_pid(f)
    f.reload("[service:who]\nbackend = exec:%s %d\n" % (prog, pid))
    out = exchange(f.port, b"who\r\n").decode()
    assert out.split("\r\n") == ["+", "1\nrefused\n"], out
    assert status(pid)["Uid"].split()[0] != "1"


# --- listening sockets: only the configured ones, and never a file ---------------------------


def test_a_file_at_a_listen_path_is_never_removed(fived, tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("precious\n")
    from conftest import FIVED
    import subprocess
    conf = tmp_path / "f.conf"
    conf.write_text("[server]\nlisten = unix:%s\nkey_file = %s\nexec_user = daemon\n"
                    "[service:echo]\nbackend = builtin:echo\n" % (path, tmp_path / "k.key"))
    r = subprocess.run([FIVED, "-c", str(conf)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode == 1
    assert "cannot listen on unix:%s" % path in r.stderr, r.stderr
    assert path.read_text() == "precious\n"


# --- tokens --------------------------------------------------------------------------------


def test_tokens_per_identity_are_capped(fived, world):
    from conftest import pubkey_login
    keys = world.global_keys(['principals="alice" ' + world.public("alice")])
    f = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\n"
              "authorized_keys = %s\nallow_plaintext_pubkey = yes\nmax_tokens_per_hour = 3\n"
              "[service:db]\nbackend = builtin:echo\nauth = required\nencryption = optional\n"
              % keys, env=world.fived_env())
    replies = []
    for _ in range(4):
        c = pubkey_login(f, world)
        c.sendall(b"TOKEN db\r\n")
        replies.append(recv_line(c))
        c.close()
    assert all(r.startswith(b"+ TOKEN v4.public.") for r in replies[:3]), replies
    assert replies[3] == b"- token quota reached\r\n"
    assert "token quota: alice" in f.log()


# --- groups, PAM helpers ----------------------------------------------------------------------


def signed_in(f, world, user, service=b"secret"):
    """A plain pubkey exchange for user, then a request for service; the replies."""
    from fivewire import load_key, parse_challenge, signature_line, signed_data, user_line
    sk, pk = load_key(world.keys[user])
    c = connect(f.port)
    c.sendall(b"AUTH pubkey\r\n" + user_line(user, pk))
    assert recv_line(c) == b"+ SUCCESS pubkey\r\n"
    sid, nonce = parse_challenge(recv_line(c))
    c.sendall(signature_line(sk, signed_data(sid, nonce, user, pk, server_key=f.server_key()))
              + service + b"\r\n")
    out = recv_all(c)
    c.close()
    return out


def test_every_group_of_a_user_counts(fived, world):
    """A deny rule for a user's 70th group holds (the old code kept 64 groups); a user
    whose groups cannot all be named is refused by any group rule."""
    with open(world.root / "group", "a") as g:
        g.write("dave:x:2004:\n")
        for i in range(70):
            g.write("g%d:x:%d:dave\n" % (i, 4000 + i))
    with open(world.root / "passwd", "a") as p:
        p.write("dave:x:2004:2004:dave:%s:/bin/sh\n" % (world.home / "dave"))
        p.write("erin:x:2005:2005:erin:%s:/bin/sh\n" % (world.home / "erin"))
    for user in ("dave", "erin"):
        world.keys[user] = world.make_key(user)
    keys = world.global_keys(['principals="%s" %s' % (u, world.public(u))
                              for u in ("dave", "erin")])
    config = ("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\nauthorized_keys = %s\n"
              "allow_plaintext_pubkey = yes\n"
              "[service:secret]\nbackend = builtin:echo\nauth = required\n"
              "encryption = optional\ndeny = group:%%s\n" % keys)
    f = fived(config % "g69", env=world.fived_env())
    assert signed_in(f, world, "dave") == (b"+ Authentication as dave successful\r\n"
                                           b"- not permitted\r\n")
    f.reload(config % "nosuchgroup")
    assert signed_in(f, world, "dave").endswith(b"\r\n+\r\n")
    # erin's own group (2005) has no name.
    assert signed_in(f, world, "erin").endswith(b"- not permitted\r\n")
    assert "cannot list every group of erin" in f.log()
    assert "cannot list every group of dave" not in f.log()


@pytest.mark.skipif(SANITIZED, reason="pam_wrapper cannot run under ASan")
def test_pam_helpers_are_capped_per_source(fived, world):
    """Each password exchange holds a root PAM helper: one address may hold only a few."""
    keys = world.global_keys([])
    f = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\nauthorized_keys = %s\n"
              "allow_plaintext_password = yes\nmax_pam_helpers_per_source = 2\n"
              "[service:secret]\nbackend = builtin:echo\nauth = required\n"
              "encryption = optional\n" % keys, env=world.fived_env())
    held = []
    for _ in range(2):
        c = connect(f.port)
        c.sendall(b"AUTH password\r\nUSER bob\r\n")
        assert recv_line(c) == b"+ SUCCESS password\r\n"
        assert recv_line(c).startswith(b"+ PROMPT-ECHO-OFF")
        held.append(c)
    c = connect(f.port)
    c.sendall(b"AUTH password\r\nUSER bob\r\n")
    assert recv_line(c) == b"+ SUCCESS password\r\n"
    assert recv_all(c) == b"- too many password authentications in progress from your address\r\n"
    # From another address, and once a helper is gone, there is room again.
    from conftest import connect_from
    c = connect_from(f.port, "127.0.0.2")
    c.sendall(b"AUTH password\r\nUSER bob\r\n")
    assert recv_line(c) == b"+ SUCCESS password\r\n"
    assert recv_line(c).startswith(b"+ PROMPT-ECHO-OFF")
    c.close()
    held.pop().close()

    def room():
        c = connect(f.port)
        c.sendall(b"AUTH password\r\nUSER bob\r\n")
        recv_line(c)
        ok = recv_line(c).startswith(b"+ PROMPT-ECHO-OFF")
        c.close()
        return ok
    wait_for(room, what="a PAM helper's slot to be free again")


def test_a_revocation_that_cannot_be_recorded_is_refused(fived, world, sentinel, tmp_path):
    """invalidate never answers a revocation it could not keep: with the revocation file's
    file system full, the client is told, and the error is logged."""
    import subprocess
    from test_usp import Site, tokens_of
    from uspwire import invalidate
    if not ROOT:
        pytest.skip("mounting a small file system needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    site = None
    try:
        site = Site(fived, world, sentinel, server="revocation_file = %s/revoked\n" % disk)
        c, msg = site.login("db")
        token = tokens_of(msg)["db"]
        c.close()
        with open(disk / "filler", "wb") as fill:
            try:
                fill.write(b"x" * (1 << 20))
            except OSError:
                pass
        c = site.client()
        c.send(invalidate(token))
        c.expect_error("cannot record the revocation")
        assert "cannot record a revocation" in site.f.log()
        assert site.f.events("token_revoke_failed")
        # Not revoked anywhere, so not claimed to be: the token still opens its service.
        assert site.f.events("token_revoked") == []
    finally:
        if site is not None:
            site.f.stop()
        subprocess.run(["umount", str(disk)], check=False)


@needs_root
def test_a_worker_that_cannot_start_stops_fived_at_once(tmp_path):
    """A start that fails (here, a port another process holds) is not retried: fived
    exits at once with the worker's reason, as it did before it had a monitor."""
    import subprocess
    from conftest import FIVED
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        conf = tmp_path / "f.conf"
        conf.write_text("[server]\nlisten = tcp:127.0.0.1:%d\nkey_file = %s\n"
                        "[service:echo]\nbackend = builtin:echo\n"
                        % (taken.getsockname()[1], tmp_path / "k.key"))
        start = time.monotonic()
        r = subprocess.run([FIVED, "-c", str(conf)], capture_output=True, text=True,
                           timeout=10 * SLOW)
    assert r.returncode == 1
    assert r.stderr.count("address already in use") == 1, r.stderr
    assert "a new worker starts" not in r.stderr
    assert time.monotonic() - start < 2 * SLOW


# --- found by attacking it from outside -------------------------------------------------------


def test_two_fived_with_one_key_act_on_early_data_once(fived, sentinel, tmp_path):
    """A first message acted on by one fived must not be acted on by another one on the
    same host that uses the same key file: the second takes the one round trip path."""
    s, priv, f = zero_rtt_site(fived, sentinel, tmp_path)
    g = fived(sentinel_service(s), name="second",
              server="authorized_clients = %s\nkey_file = %s"
              % (tmp_path / "authorized_clients", f.key_file))
    assert "another fived uses this key" in g.log()
    recorded = send_once(f, priv)
    replay(g.port, recorded)
    time.sleep(0.3)
    assert s.connections == 1


def test_a_revocation_line_cut_short_does_not_stop_a_start(fived, world, sentinel, tmp_path):
    """A disk that filled up in the middle of a revocation leaves at most a line without
    its end, which the next start drops instead of refusing to start."""
    from test_usp import Site
    site = Site(fived, world, sentinel)
    site.f.stop()
    with open(tmp_path / "fived-revoked", "a") as f:
        f.write("0123456789abcdef0123456789abcdef 40")
    site.f = site.another("fived")
    assert "its last line is cut short" in site.f.log()


def fd_targets(pid):
    """What the process's descriptors name now; one closed while they are read is skipped."""
    out = []
    for n in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, n)))
        except FileNotFoundError:
            pass
    return out


@needs_root
def test_inherited_descriptors_go_no_further(tmp_path):
    """A descriptor fived was started with reaches neither the worker nor programs."""
    import subprocess
    from conftest import FIVED
    secret = tmp_path / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    prog = tmp_path / "fds"
    prog.write_text("#!/bin/sh\nls -l /proc/self/fd/\n")
    prog.chmod(0o755)
    conf = tmp_path / "f.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\nkey_file = %s\nexec_user = daemon\n"
                    "[service:fds]\nbackend = exec:%s\n" % (tmp_path / "k.key", prog))
    fd = os.open(secret, os.O_RDONLY)
    log = open(tmp_path / "log", "wb")
    p = subprocess.Popen([FIVED, "-c", str(conf)], pass_fds=(fd,), stderr=log,
                         stdout=subprocess.DEVNULL)
    os.close(fd)
    try:
        port = int(wait_for(lambda: re.findall(r"listening on tcp:127.0.0.1:(\d+)",
                                               (tmp_path / "log").read_text()),
                            what="fived to listen")[0])
        out = exchange(port, b"fds\r\n").decode()
        assert str(secret) not in out, out
        worker = int(re.findall(r"fived\[(\d+)\] info: privilege separation",
                                (tmp_path / "log").read_text())[-1])
        assert str(secret) not in fd_targets(worker)
        assert str(secret) not in fd_targets(p.pid)
    finally:
        p.terminate()
        p.wait()
        log.close()


@needs_root
def test_a_backend_sees_a_reset_when_the_worker_dies(fived):
    """Killed mid-upload, the worker must not leave the backend an orderly end of stream
    that it would take for a complete upload."""
    import threading
    outcome = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        try:
            while conn.recv(65536):
                pass
            outcome.append("end")
        except ConnectionResetError:
            outcome.append("reset")
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    f = fived("[service:up]\nbackend = tcp:127.0.0.1:%d\n" % server.getsockname()[1])
    c = connect(f.port)
    c.sendall(b"up\r\n" + b"x" * 100000)
    assert recv_line(c) == b"+\r\n"
    os.kill(worker_pid(f), signal.SIGKILL)
    wait_for(lambda: outcome, what="the backend to see the end")
    assert outcome == ["reset"]
    # The client, in clear, is told the same way.
    with pytest.raises(ConnectionResetError):
        while c.recv(65536):
            pass
    server.close()


def test_a_program_may_ignore_its_input(fived, tmp_path):
    """A daytime-like program answers and exits without reading what it was sent: the
    session ends cleanly (sealed: with its FINAL), not as a failure."""
    from conftest import run_five
    prog = tmp_path / "hi"
    prog.write_text("#!/bin/sh\necho hi\n")
    prog.chmod(0o755)
    f = fived("[service:hi]\nbackend = exec:%s\n" % prog)
    for _ in range(3):
        r = run_five("-p", str(f.port), "127.0.0.1", "hi", input=b"ignored\n" * 1000)
        assert (r.returncode, r.stdout) == (0, b"hi\n"), r.stderr
    wait_for(lambda: len(f.events("closed")) >= 3, what="the sessions to end")
    assert {e["reason"] for e in f.events("closed")} == {"done"}


@needs_root
def test_fived_t_sees_what_would_stop_a_start(tmp_path):
    import subprocess
    from conftest import FIVED
    in_the_way = tmp_path / "in-the-way"
    in_the_way.write_text("")
    conf = tmp_path / "f.conf"
    conf.write_text("[server]\nlisten = unix:%s\nkey_file = %s\n"
                    "[service:echo]\nbackend = builtin:echo\n" % (in_the_way, tmp_path / "k"))
    r = subprocess.run([FIVED, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 1 and "is in the way: not a socket" in r.stderr, r.stderr
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\nkey_file = %s\nchroot = %s/root\n"
                    "[service:echo]\nbackend = builtin:echo\n" % (tmp_path / "k", open_dir))
    r = subprocess.run([FIVED, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 1 and "chroot %s/root" % open_dir in r.stderr, r.stderr


def test_0rtt_with_a_key_made_before_the_first_start(fived, sentinel, tmp_path):
    """A key made by --print-key (to hand out before the first start) has served nothing:
    0-RTT works at once.  A key whose floor file went missing may have: none for a while."""
    import subprocess
    from conftest import FIVED
    s = sentinel("count")
    priv, pub = keypair()
    key = tmp_path / "made.key"
    conf = tmp_path / "print.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\nkey_file = %s\n" % key)
    subprocess.run([FIVED, "--print-key", "-c", str(conf)], check=True, capture_output=True)
    server = "authorized_clients = %s\nkey_file = %s" % (
        authorized_file(tmp_path, {"robot": pub}), key)
    f = fived(sentinel_service(s), server=server)
    send_once(f, priv)
    f.stop()
    (tmp_path / "made-0rtt").unlink()
    g = fived(sentinel_service(s), name="again", server=server)
    hs = Handshake(server_key(g), priv, early=b"s\r\nTRANSFER")
    with SealedClient(g.port, handshake=hs, timeout=T) as c:
        assert not c.zero_rtt
        c.close_write()
        assert c.recv_all() == b"+\r\ngot 8\n"
