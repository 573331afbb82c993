"""workers = N (fived.conf(5)): several worker processes, the kernel handing each new
connection to the one its source address picks.

"the kernel hands each new connection to the worker its source address picks [...] so
that every connection from one source meets the same worker and those limits stay
exact.  What must be one across workers is the monitor's: the 0-RTT timestamps acted on
(a replay from another address meets another worker and is refused all the same),
revoked tokens, the token quota." -- fived.conf(5), workers
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import muxwire as mw
from conftest import BUILD, SLOW, connect_from, free_port, recv_all, recv_line, wait_for
from muxwire import MuxSession, PlainTransport, SealedTransport
from sealwire import SealedClient, keypair
from test_hardening import needs_root, send_once
from test_multiplex import backend  # noqa: F401  (the fixture)
from test_sealed import authorized_file, sentinel_service, server_key
from test_tokens import config as token_config, services as token_services, use
from conftest import issue_token

T = 10 * SLOW
ECHO = "[service:echo]\nbackend = builtin:echo\n"
FIVECTL = os.path.join(BUILD, "fivectl")

pytestmark = needs_root


@contextlib.contextmanager
def from_source(source):
    """Every connection the helpers make comes from source, a loopback address."""
    plain = socket.create_connection

    def bound(address, timeout=None, source_address=None, **kw):
        return plain(address, timeout, (source, 0), **kw)

    socket.create_connection = bound
    try:
        yield
    finally:
        socket.create_connection = plain


def worker_pids(f):
    return set(int(p) for p in re.findall(r"fived\[(\d+)\] info: privilege separation: "
                                          r"worker runs as", f.log()))


def worker_of_session(f, session):
    found = re.findall(r"fived\[(\d+)\] debug: session %s:" % session, f.log())
    return int(found[0]) if found else None


def worker_of(f, source):
    """The worker that took a connection from source (one refused for its service)."""
    c = connect_from(f.port, source)
    port = c.getsockname()[1]
    c.sendall(b"nosuch\r\n")
    assert recv_all(c).startswith(b"- ")
    c.close()
    accepted = wait_for(lambda: [e for e in f.events("accepted")
                                 if e["src"] == source and e["src_port"] == port],
                        what="the connection's record")
    return wait_for(lambda: worker_of_session(f, accepted[0]["session"]), what="its worker")


def two_workers(f):
    """A source address for each of two workers: {pid: source}."""
    picked = {}
    for i in range(1, 60):
        source = "127.0.0.%d" % i
        picked.setdefault(worker_of(f, source), source)
        if len(picked) == 2:
            return picked
    raise AssertionError("every source met one worker: %r" % picked)


def start(fived, config=ECHO, server="", **kw):
    f = fived(config, server="workers = 2\n" + server, **kw)
    wait_for(lambda: len(worker_pids(f)) == 2, what="two workers")
    return f


def test_each_source_meets_one_worker(fived):
    f = start(fived)
    seen = {}
    for i in range(1, 13):
        source = "127.0.0.%d" % i
        seen[source] = {worker_of(f, source) for _ in range(3)}
    assert all(len(w) == 1 for w in seen.values()), seen
    assert set().union(*seen.values()) == worker_pids(f)


def test_max_per_source_is_exact_across_workers(fived):
    """Two connections held from one address: every further one is refused, whichever
    port it comes from (a kernel spreading by ports would let some reach the other
    worker, where the address holds nothing)."""
    f = start(fived, server="max_per_source = 2\n")
    held = [connect_from(f.port, "127.0.0.9") for _ in range(2)]
    for c in held:
        c.sendall(b"echo\r\n")
        assert recv_line(c) == b"+\r\n"
    for _ in range(12):
        c = connect_from(f.port, "127.0.0.9")
        c.sendall(b"echo\r\n")
        assert recv_all(c) == b"- too many connections from your address\r\n"
        c.close()
    c = connect_from(f.port, "127.0.0.10")
    c.sendall(b"echo\r\nfree")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b"+\r\nfree"
    for c in held:
        c.close()


def test_0rtt_replayed_from_another_worker_is_not_acted_on(fived, sentinel, tmp_path):
    s = sentinel("count")
    priv, pub = keypair()
    f = start(fived, sentinel_service(s),
              server="authorized_clients = %s\n" % authorized_file(tmp_path, {"robot": pub}))
    first, other = two_workers(f).values()
    with from_source(first):
        recorded = send_once(f, priv)
    wait_for(lambda: s.connections == 1, what="the first delivery")
    for _ in range(3):
        with connect_from(f.port, other) as r:
            r.sendall(recorded)
            time.sleep(0.2)
    time.sleep(0.3)
    assert s.connections == 1
    # The client itself goes on, from either address.
    for source in (first, other):
        with from_source(source), SealedClient(f.port, server_key(f), static_key=priv,
                                               early=b"s\r\nagain", timeout=T) as c:
            c.close_write()
            assert c.recv_all() == b"+\r\ngot 5\n"


def test_a_revocation_holds_on_every_worker(fived, world, sentinel, tmp_path):
    s = sentinel("echo")
    admin = tmp_path / "admin.sock"
    f = start(fived, token_config(world, token_services(s.port),
                                  "workers = 2\nadmin_socket = %s\n" % admin),
              env=world.fived_env())
    sources = list(two_workers(f).values())
    token = issue_token(f, world)
    for source in sources:
        assert use(f.port, token, source=source) == b"+\r\npayload"
    r = subprocess.run([FIVECTL, "-s", str(admin), "revoke", token.decode()],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for source in sources:
        assert use(f.port, token, source=source).startswith(b"- "), source
    assert [e["reason"] for e in f.events("token_refused")] == ["revoked", "revoked"]


def test_a_worker_dies_alone(fived):
    f = start(fived)
    (victim, doomed), (survivor, kept) = two_workers(f).items()
    held = connect_from(f.port, kept)
    held.sendall(b"echo\r\n")
    assert recv_line(held) == b"+\r\n"
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(worker_pids(f)) == 3, what="the worker's successor")
    assert re.search(r"worker \d was killed by signal 9", f.log())
    held.sendall(b"after")
    assert held.recv(100) == b"after"
    c = connect_from(f.port, doomed)
    c.sendall(b"echo\r\nagain")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b"+\r\nagain"
    held.close()


def metric(port, name):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=T).read()
    return sum(float(line.split()[-1]) for line in text.decode().splitlines()
               if line.startswith(name))


def test_fivectl_and_metrics_count_every_worker(fived, tmp_path):
    admin, mport = tmp_path / "admin.sock", free_port()
    f = start(fived, server="admin_socket = %s\nmetrics_listen = tcp:127.0.0.1:%d\n"
                            % (admin, mport))
    sources = list(two_workers(f).values())
    held = []
    for source in sources:
        c = connect_from(f.port, source)
        c.sendall(b"echo\r\n")
        assert recv_line(c) == b"+\r\n"
        held.append(c)

    def ctl(*args):
        r = subprocess.run([FIVECTL, "-s", str(admin), "--json", *args], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    listed = ctl("sessions")["sessions"]
    assert sorted(s["src"] for s in listed) == sorted(sources)
    assert ctl("stats")["sessions"] == 2
    assert os.path.exists(str(admin) + ".1")
    # The other worker's counters come with its heartbeat, once a second.
    wait_for(lambda: metric(mport, "fived_sessions_open{") == 2, what="both workers' sessions")
    refused = len(f.events("refused"))
    assert refused >= 2
    wait_for(lambda: metric(mport, 'fived_refusals_total{reason="unknown service"}') == refused,
             what="both workers' refusals")
    for s in listed:
        assert ctl("kill", s["id"]) == {"killed": s["id"]}
    assert ctl("sessions")["sessions"] == []
    for c in held:
        c.close()


def test_attach_through_another_worker_is_passed_on(fived, backend):
    """A session detached from one address attaches from an address another worker
    takes: that worker passes the ATTACH on to the one that holds the session, and
    carries its frames both ways; nothing is lost, and the session may come home."""
    echo = backend("echo")
    f = start(fived, "[service:echo]\n" + echo.service, server="detach_plaintext = yes\n")
    (_, home), (_, away) = two_workers(f).items()
    with from_source(home):
        s = MuxSession.connect(f.port, timeout=T)
    assert s.enter(pipelined=mw.detachable_frame()) == b"+ MULTIPLEX\r\n"
    s.wait(lambda: s.detach_answer is not None, "the DETACHABLE answer")
    sid = s.open("echo")
    s.send(sid, b"one")
    assert s.read_exact(sid, 3) == b"one"
    s.send(sid, b"two")
    s.drop_connection("reset")
    wait_for(lambda: f.events("detached"), timeout=T, what="detached")
    for source, word in ((away, b"three"), (home, b"four"), (away, b"five")):
        sock = connect_from(f.port, source)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.attach(PlainTransport(sock))
        s.send(sid, word)
        expected = (b"two" if word == b"three" else b"") + word
        assert s.read_exact(sid, len(expected)) == expected
        s.drop_connection("reset")
        wait_for(lambda: len(f.events("detached")) >= 2 + [b"three", b"four", b"five"].index(
            word), timeout=T, what="detached again")
    attached = [e["src"] for e in f.events("attached")]
    assert attached == [away, home, away], attached
    assert len(f.events("attach_passed_on")) == 2


def test_a_sealed_attach_is_passed_on_with_its_identity(fived, backend, tmp_path):
    """Passed on, the ATTACH keeps what its connection proved: sealed, so never refused
    as plaintext, and the client's key's identity, which must be the session's."""
    echo = backend("echo")
    priv, pub = keypair()
    other_priv, other_pub = keypair()
    f = start(fived, "[service:echo]\n" + echo.service,
              server="authorized_clients = %s\n" % authorized_file(
                  tmp_path, {"robot": pub, "other": other_pub}))
    (_, home), (_, away) = two_workers(f).items()
    with from_source(home):
        s = MuxSession.sealed(f.port, f.server_key(), static_key=priv, timeout=T)
    assert s.enter(pipelined=mw.detachable_frame()) == b"+ MULTIPLEX\r\n"
    s.wait(lambda: s.detach_answer is not None, "the DETACHABLE answer")
    sid = s.open("echo")
    s.send(sid, b"sealed")
    assert s.read_exact(sid, 6) == b"sealed"
    s.drop_connection("reset")
    wait_for(lambda: f.events("detached"), timeout=T, what="detached")
    # Another identity, through the other worker: the one that holds the session says no.
    with from_source(away):
        other = SealedClient(f.port, f.server_key(), static_key=other_priv, timeout=T)
    try:
        other.send(mw.attach_line(s.ticket, s.recv_count))
        assert other.recv_line().startswith(b"- not permitted")
    finally:
        other.close()
    with from_source(away):
        s.attach(SealedTransport(SealedClient(f.port, f.server_key(), static_key=priv,
                                              timeout=T)))
    s.send(sid, b"again")
    assert s.read_exact(sid, 5) == b"again"
    attached = f.events("attached")
    assert [(e["src"], e["transport"]) for e in attached] == [(away, "sealed")], attached


def test_only_the_monitor_connects_workers(fived):
    """The peer sockets are in the abstract namespace, which anyone may reach: a
    worker takes no connection to it but its monitor's, and reads nothing from one."""
    f = start(fived)

    def peer_sockets():
        """The monitor holds them: /proc/net/unix lists each with its inode and name."""
        held = set()
        for fd in os.listdir("/proc/%d/fd" % f.proc.pid):
            target = os.readlink("/proc/%d/fd/%s" % (f.proc.pid, fd))
            if target.startswith("socket:["):
                held.add(target[len("socket:["):-1])
        with open("/proc/net/unix") as t:
            return [line.split()[7][1:] for line in t.read().splitlines()[1:]
                    if len(line.split()) == 8 and line.split()[7].startswith("@fived-peer-")
                    and line.split()[6] in held]

    names = wait_for(lambda: len(peer_sockets()) == 2 and peer_sockets(),
                     what="both workers' peer sockets")
    for name in names:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(T)
        c.connect("\0" + name)
        try:
            c.sendall(b"\r\n\r\n\x00\r\nQUIT\n")
            assert c.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass
        c.close()
    assert f.log().count("not made by the monitor: closed") == len(names)


def test_tickets_naming_no_session_are_unknown_wherever_they_go(fived):
    """A ticket's first byte names a worker: one naming none (a guess) is an unknown
    session at once, and one naming the other worker is an unknown session there, passed
    on; fived survives both."""
    f = start(fived, server="detach_plaintext = yes\n")
    (_, home), (_, away) = two_workers(f).items()
    for first in (200, 255, 2, 0, 1):
        ticket = bytes([first]) + os.urandom(47)
        for source in (home, away):
            c = connect_from(f.port, source)
            c.sendall(mw.attach_line(ticket, 0))
            assert recv_line(c) == b"- unknown session\r\n", (first, source)
            c.close()
    assert len(worker_pids(f)) == 2
    assert len(f.events("attach_passed_on")) == 2


def test_the_most_workers_come_up_with_every_socket(fived, tmp_path):
    """workers = 64, the most fived.conf(5) allows, with an admin socket and a metrics
    endpoint: each worker has its listener, admin and peer sockets, and serves."""
    admin, mport = tmp_path / "admin.sock", free_port()
    f = fived(ECHO, server="workers = 64\nadmin_socket = %s\nmetrics_listen = "
                           "tcp:127.0.0.1:%d\n" % (admin, mport))
    wait_for(lambda: f.log().count("monitor: worker") and
             len(re.findall(r"monitor: worker \d+ serves", f.log())) == 64,
             timeout=60, what="64 workers serving")
    assert "exited" not in f.log() and "Too many open files" not in f.log()
    r = subprocess.run([FIVECTL, "-s", str(admin), "--json", "stats"], capture_output=True,
                       text=True, timeout=T)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sessions"] == 0
    c = connect_from(f.port, "127.0.0.77")
    c.sendall(b"echo\r\nhi")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b"+\r\nhi"


def test_fivectl_gives_up_on_a_worker_that_does_not_answer(fived, tmp_path):
    """fivectl(8): a worker that has not answered within 10 seconds is said, exit 3,
    not waited for."""
    admin = tmp_path / "admin.sock"
    f = start(fived, server="admin_socket = %s\n" % admin)
    stopped = max(worker_pids(f))
    os.kill(stopped, signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = subprocess.run([FIVECTL, "-s", str(admin), "stats"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 3 and "no answer within 10 s" in r.stderr, r.stderr
        assert time.monotonic() - started < 20
    finally:
        os.kill(stopped, signal.SIGCONT)


def test_counters_do_not_go_back_when_a_worker_dies(fived, tmp_path):
    """A restarted worker goes on counting from its predecessor's last counters, so the
    sums the metrics endpoint reports stay where they were (fived.conf(5), workers)."""
    mport = free_port()
    f = start(fived, server="metrics_listen = tcp:127.0.0.1:%d\n" % mport)
    picked = two_workers(f)
    for source in picked.values():
        for _ in range(3):
            worker_of(f, source)
    accepted = len(f.events("accepted"))
    wait_for(lambda: metric(mport, "fived_sessions_accepted_total") == accepted,
             what="every worker's count")
    victim = next(iter(picked))
    os.kill(victim, signal.SIGKILL)
    seen = []
    deadline = time.monotonic() + 3 * SLOW
    while time.monotonic() < deadline:
        seen.append(metric(mport, "fived_sessions_accepted_total"))
        time.sleep(0.1)
    wait_for(lambda: len(worker_pids(f)) == 3, what="the successor")
    time.sleep(1.2)
    seen.append(metric(mport, "fived_sessions_accepted_total"))
    assert min(seen) >= accepted, seen
    assert 'reason="unknown service"' in urllib.request.urlopen(
        "http://127.0.0.1:%d/metrics" % mport, timeout=T).read().decode()


def test_counters_never_go_back_between_scrapes(fived):
    """Scrapes answered by one worker, then the other, while connections come from
    sources of both: every counter reads as much as, or more than, the read before."""
    mport = free_port()
    f = start(fived, server="metrics_listen = tcp:127.0.0.1:%d\n" % mport)
    sources = list(two_workers(f).values())
    stop = threading.Event()

    def load():
        n = 0
        while not stop.is_set() and n < 3000:
            c = connect_from(f.port, sources[n % 2])
            c.sendall(b"nosuch\r\n")
            recv_all(c)
            c.close()
            n += 1

    loader = threading.Thread(target=load)
    loader.start()
    seen = []
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            seen.append(metric(mport, "fived_sessions_accepted_total"))
            time.sleep(0.02)
    finally:
        stop.set()
        loader.join()
    back = [(i, a, b) for i, (a, b) in enumerate(zip(seen, seen[1:])) if b < a]
    assert not back, (back, len(seen))
    assert seen[-1] > seen[0]


def test_an_attach_passed_to_a_stuck_worker_is_answered(fived):
    """fived.conf(5): should the worker that holds the session not answer, the client is
    answered "- server busy": after the holder's longest penalty and request_timeout."""
    f = start(fived, server="detach_plaintext = yes\nrequest_timeout = 1s\n")
    picked = two_workers(f)
    (holder, _), (_, away) = picked.items()
    index = 0 if holder == min(worker_pids(f)) else 1
    os.kill(holder, signal.SIGSTOP)
    try:
        c = connect_from(f.port, away)
        c.settimeout(20 * SLOW)
        started = time.monotonic()
        c.sendall(mw.attach_line(bytes([index]) + os.urandom(47), 0))
        assert recv_line(c) == b"- server busy\r\n"
        assert 8 <= time.monotonic() - started < 15 * SLOW
        c.close()
    finally:
        os.kill(holder, signal.SIGCONT)
    assert "did not answer the ATTACH passed on to it" in f.log()


def test_refused_without_privilege_separation(tmp_path):
    conf = tmp_path / "w.conf"
    conf.write_text("[server]\nlisten = tcp:127.0.0.1:0\nuser = root\nworkers = 2\n"
                    "key_file = %s\n" % (tmp_path / "k.key") + ECHO)
    for args in (["-t"], []):
        r = subprocess.run([os.path.join(BUILD, "fived"), *args, "-c", str(conf)],
                           capture_output=True, text=True, timeout=T)
        assert r.returncode == 1
        assert "workers = 2 needs privilege separation" in r.stderr, r.stderr
    # Refused before anything was made.
    assert not (tmp_path / "k.key").exists()
