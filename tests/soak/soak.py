#!/usr/bin/python3
"""make soak: fived under thousands of sessions and timed faults.

Runs as root (a tmpfs for the audit log, descriptor limits raised for the
processes it starts, up to the hard limit it was given).  Everything listens on
127.0.0.1 on ports the kernel picks; every process it starts is stopped
by its pid and the tmpfs unmounted at the end, also on failure or Ctrl-C.
The state directory (/tmp/fivesoak.*: the configuration, every process's
output, the events file) is kept for a look after a failure.

The load (build/soak/soakload, see tests/soak/soakload.c) keeps --held
long plain and USP sessions open, opens --rate short ones a second, and
keeps sealed, TLS, multiplexed and detachable sessions (libfive) open;
every service is an echo and every byte that comes back is checked
against the one sent.  soakload writes one line per session's end; this
program starts fived and the backends, samples fived's memory and
descriptors every second, injects the faults of FAULTS on their timers,
checks after the run that every session that did not run its course is
excused by a fault whose rule allows it, and writes bench/SOAK.md with
bench/plots/soak.png.  Its exit status is 0 only if everything held.
"""

import argparse
import collections
import csv
import datetime
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# RLIMIT_NOFILE for every process started here: as high as this process may raise it.
NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
# fived's descriptors kept free of the load's long sessions: the 1024 fived keeps for
# sessions under way (it answers "server busy" past them), the short sessions, spare.
NOFILE_SPARE = 1024 + 4000
SHORT_MAX = 1000          # short sessions under way at most (the rest skipped, counted)
SOURCES = 64              # the load's source addresses: 127.1.1.1 ...
WARMUP = 20               # seconds before the trends and the first fault
SIGHUP_EVERY = 5          # seconds between reloads with a changed configuration
PROBE_TIMEOUT = 2.0       # one probe's wait for its echo
PROBE_BOUND = 5.0         # new sessions served again this long after a fault ends
DETACH_NOTICE = 45.0      # a relay's silence (45 s) outlasts libfive's 30 s without a frame
END_BOUND = 5.0           # a session a fault ends must have ended this long after it
NEW_GRACE = 25.0          # a session begun during a fault is refused, or given up (20 s
                          # without progress), this long after the fault's window at most
AUDIT_TMPFS = "256m"      # the audit log's file system, filled on purpose
STORE_NOTICE = 3.0        # fived notices the store gone, or back, this long after
GROWTH = 0.10             # the last third's median within 10 % of the second third's
RSS_SLACK_KB = 4096       # ... plus this much memory
KEEP_BOUND_KB = (64 + 16) * 1024  # MALLOC_KEEP, and 16 MiB for code, libraries, their data
FD_SLACK = 64             # ... plus this many descriptors
FLOOD_EXTRA = 500         # idle connections beyond what fills the worker's descriptors
FLOOD_REACH = 15          # seconds the flood may take to fill them
SHORTAGE = "out of descriptors"  # what fived logs once it answers "server busy" for want of them
# The worker at its descriptor limit, in shares of one CPU: at most this much above what
# it used serving the same load in the seconds before, and never near a whole CPU (a
# spinning accept loop takes all of one).
NOFILE_CPU_EXTRA = 0.25
NOFILE_CPU_MAX = 0.9
HZ = os.sysconf("SC_CLK_TCK")

# fault: (first at, every, how long) in seconds after the warm-up; the run's
# length decides how many times each comes.
FAULTS = {
    "client-reset": (3, 30, 0),
    "backend-kill": (10, 60, 3),
    "relay-silence": (15, 150, 45),
    "audit-full": (45, 60, 10),
    "worker-kill": (80, 120, 0),
    "out-of-descriptors": (95, 120, 8),
    "store-gone": (35, 120, 10),
}

# What must hold, per fault: the text SOAK.md gives; check() below checks it.
MUST_HOLD = {
    "sighup": "every session goes on (none excused); the changed service (spare) is "
              "served or refused as the new configuration says within %g s" % PROBE_BOUND,
    "client-reset": "the sessions the load resets mid-stream (a tenth of its running plain "
                    "ones) are the only ones that end; fived's descriptors come back (trend)",
    "backend-kill": "echo2's backend is killed (SIGKILL) and restarted %d s later: echo2's "
                    "running streams end (end of stream or reset, not a hang) within %g s, "
                    "each with its record and a reason in the audit log; "
                    "new echo2 sessions may be refused until %g s after the restart; "
                    "every echo session goes on" % (FAULTS["backend-kill"][2], END_BOUND,
                                                    PROBE_BOUND),
    "relay-silence": "the relay in front of the detachable session stops forwarding (its "
                     "connections stay open, silent); libfive gives the connection up "
                     "after 30 s and attaches again through a new one: no detachable "
                     "stream ends, no byte is lost",
    "audit-full": "the audit log's file system is full for %d s; never a crash (same "
                  "monitor and worker); audit_required = no: every session goes on and "
                  "new ones are served; audit_required = yes: new sessions are refused "
                  "('server busy') while it is full, established ones go on, and new "
                  "ones are served again within %g s of space coming back"
                  % (FAULTS["audit-full"][2], PROBE_BOUND),
    "worker-kill": "the worker is killed (SIGKILL); the monitor stays and starts a new one; "
                   "only sessions open at the kill (and new ones in the %g s after it) may "
                   "end (a detachable session behind a silent relay learns of the kill "
                   "when it attaches again, up to %g s after it); new sessions are served "
                   "again within %g s" % (PROBE_BOUND, DETACH_NOTICE, PROBE_BOUND),
    "out-of-descriptors": "idle connections (benchtool flood -M idle) fill the worker's "
                          "descriptors up to its limit, held %d s: new sessions may be "
                          "refused or wait, established ones go on, the worker's CPU at "
                          "the limit is at most %d points above the %d s before and under "
                          "%d %% of a CPU (its accept loop does not spin), and new sessions "
                          "are served again within %g s of the flood's end"
                          % (FAULTS["out-of-descriptors"][2], NOFILE_CPU_EXTRA * 100,
                             FAULTS["out-of-descriptors"][2], NOFILE_CPU_MAX * 100,
                             PROBE_BOUND),
    "store-gone": "the store the nodes share (a redis-server) is killed (SIGKILL) and "
                  "started again, empty, %d s later: fived logs it unreachable within %g s "
                  "and reachable again within %g s of its restart; every session goes on "
                  "(none excused) and new ones are served while it is away"
                  % (FAULTS["store-gone"][2], STORE_NOTICE, STORE_NOTICE),
}


def raise_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def default_held():
    """10,000 long sessions where descriptors allow: fived holds two for each (the
    client's, the backend's), besides the libfive sessions' and NOFILE_SPARE."""
    return max(100, min(10000, (NOFILE - NOFILE_SPARE) // 2 - 400))


def log(*args):
    print("soak: %7.1f" % (time.monotonic() - T0), *args, flush=True)


T0 = time.monotonic()


# --- processes --------------------------------------------------------------------------

class Procs:
    """Every process started here, stopped by its pid at the end."""

    def __init__(self, state):
        self.state = state
        self.procs = []

    def start(self, name, argv, stdout=None, env=None):
        out = open(os.path.join(self.state, name + ".out"), "ab")
        err = open(os.path.join(self.state, name + ".err"), "ab")
        p = subprocess.Popen(argv, stdout=stdout or out, stderr=err, env=env,
                             preexec_fn=raise_nofile)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise RuntimeError("soak: timed out waiting for " + what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def proc_cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError):
        return 0


def worker_of(monitor):
    """The monitor's child that runs fived --worker, or None."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != monitor:
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if b"--worker" in f.read():
                    return int(d)
        except (OSError, ValueError, IndexError):
            continue
    return None


# --- fived and its backends ---------------------------------------------------------------

CONF = """# fived under the soak: limits out of the way of 10,000 sessions
[server]
listen = tcp:127.0.0.1:0
metrics_listen = tcp:127.0.0.1:{metrics}
store = tcp:127.0.0.1:{store}
key_file = {state}/server.key
audit_log = {audit}
audit_required = {required}
max_connections = {maxconn}
max_per_source = 4096
handshakes_per_source = 1000000
max_streams = 1024
relay_memory_max = 1G

[service:echo]
backend = tcp:127.0.0.1:{echo}

[service:echo2]
backend = tcp:127.0.0.1:{echo2}
{spare}"""

SPARE = "\n[service:spare]\nbackend = builtin:echo\n"


class Fived:
    def __init__(self, procs, build, state, audit, echo, echo2, store):
        self.state, self.audit = state, audit
        self.ports = dict(echo=echo, echo2=echo2, metrics=free_port(), store=store)
        self.conf = os.path.join(state, "fived.conf")
        self.spare, self.required = True, False
        self.reloads = 0
        self.lock = threading.Lock()
        self.write()
        self.err = os.path.join(state, "fived.err")
        self.proc = procs.start("fived", [os.path.join(build, "fived"), "-c", self.conf])
        self.pid = self.proc.pid
        self.port = int(wait_for(self.listening, 20, "fived to listen"))
        self.key = subprocess.run([os.path.join(build, "fived"), "--print-key", "-c",
                                   self.conf], capture_output=True, text=True,
                                  check=True).stdout.split()[0]

    def write(self):
        with open(self.conf + ".new", "w") as f:
            f.write(CONF.format(state=self.state, audit=self.audit, echo=self.ports["echo"],
                                echo2=self.ports["echo2"], metrics=self.ports["metrics"],
                                store=self.ports["store"],
                                required="yes" if self.required else "no",
                                maxconn=NOFILE,
                                spare=SPARE if self.spare else ""))
        os.rename(self.conf + ".new", self.conf)

    def log(self):
        with open(self.err, errors="replace") as f:
            return f.read()

    def listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError("fived exited:\n" + self.log())
        text = self.log()
        m = re.search(r"listening on tcp:127\.0\.0\.1:(\d+)", text)
        return m.group(1) if m and re.search(r"fived \S+ started", text) else None

    def reload(self, spare=None, required=None):
        with self.lock:
            if spare is not None:
                self.spare = spare
            if required is not None:
                self.required = required
            self.write()
            os.kill(self.pid, signal.SIGHUP)
            self.reloads += 1

    def worker(self):
        return worker_of(self.pid)

    def heap_kb(self):
        """The worker's heap in use (its metrics), in KiB; 0 when it does not answer."""
        try:
            with socket.create_connection(("127.0.0.1", self.ports["metrics"]),
                                          timeout=0.5) as s:
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                reply = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return 0
        m = re.search(rb"^fived_heap_in_use_bytes (\S+)$", reply, re.M)
        return int(float(m.group(1))) // 1024 if m else 0


class Store:
    """A redis-server of the soak's own, nothing saved: started again, it is empty."""

    def __init__(self, procs, state):
        self.procs, self.state, self.port = procs, state, free_port()
        self.start()

    def start(self):
        self.proc = self.procs.start("redis", ["redis-server", "--port", str(self.port),
                                              "--bind", "127.0.0.1", "--save", "",
                                              "--appendonly", "no", "--dir", self.state])
        wait_for(lambda: probe_port(self.port), 10, "the store to listen")

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def probe_port(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_backend(procs, build, name, port):
    p = procs.start(name, [os.path.join(build, "bench", "benchtool"), "serve", "-e",
                           "127.0.0.1:%d" % port], stdout=subprocess.PIPE)
    p.stdout.readline()  # "ready"
    return p


# --- probes: one short plain session ------------------------------------------------------

def probe(port, service, payload=b"soak-probe", timeout=2.0):
    """(True, "") when service echoes payload back; else (False, what happened)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(service.encode() + b"\r\n" + payload)
            got = b""
            while len(got) < 3 + len(payload):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            if got == b"+\r\n" + payload:
                return True, ""
            return False, got.split(b"\r\n")[0].decode(errors="replace") or "closed"
    except OSError as e:
        return False, str(e)


def served_within(port, service, bound):
    """(seconds until a probe of service succeeds or None if not within bound, what the
    last probe met)."""
    t0 = time.monotonic()
    why = ""
    while time.monotonic() - t0 < bound:
        ok, why = probe(port, service, timeout=PROBE_TIMEOUT)
        if ok:
            return time.monotonic() - t0, ""
        time.sleep(0.05)
    return None, why


def audit_ends(path, service, since, until):
    """The reasons of the closed and stream_ended records of service's sessions and
    streams that ended between since and until (seconds since the epoch), counted."""
    granted, reasons = set(), collections.Counter()
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return reasons
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        key = (r.get("session"), r.get("stream"))
        if r.get("event") in ("granted", "stream_granted") and r.get("service") == service:
            granted.add(key)
        elif r.get("event") in ("closed", "stream_ended") and key in granted:
            when = datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
            if since <= when.timestamp() <= until:
                reasons[r.get("reason", "")] += 1
    return reasons


def waited(pred, bound):
    """Seconds until pred() holds, or None if not within bound."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def seconds_text(secs):
    return "after %.2f s" % secs if secs is not None else "NOT within the bound"


def served_text(back):
    return "%.2f s" % back[0] if back[0] is not None else "NOT (last: %s)" % back[1]


# --- the relay that falls silent ----------------------------------------------------------

class SilentRelay:
    """Relays connections on 127.0.0.1 to fived.  silence() makes every
    connection it carries now stop forwarding: it keeps reading both sides
    and drops what it reads, the sockets stay open, as a path that goes
    dark does; connections made afterwards are relayed normally.  release()
    closes the silenced ones."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.live, self.silenced = [], []
        self.connections = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = [client, server, False]
            with self.lock:
                self.live.append(pair)
                self.connections += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(a, b, pair), daemon=True).start()

    def pump(self, src, dst, pair):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if pair[2]:
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        if not pair[2]:
            for s in pair[:2]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def silence(self):
        with self.lock:
            for pair in self.live:
                pair[2] = True
            self.silenced += self.live
            self.live = []
            return len(self.silenced)

    def release(self):
        with self.lock:
            pairs, self.silenced = self.silenced, []
        for pair in pairs:
            for s in pair[:2]:
                try:
                    s.close()
                except OSError:
                    pass


# --- sampling -------------------------------------------------------------------------------

class Sampler:
    """fived's monitor and worker, every second: RSS (KiB), descriptors, CPU ticks."""

    def __init__(self, fived, load_status, load_pid):
        self.fived, self.load_status, self.load_pid = fived, load_status, load_pid
        self.rows = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            t = time.monotonic()
            w = self.fived.worker() or 0
            m = self.fived.pid
            self.rows.append(dict(t=t, mon_rss=proc_status(m, "VmRSS"), mon_fds=proc_fds(m),
                                  worker=w, wrk_rss=proc_status(w, "VmRSS") if w else 0,
                                  wrk_fds=proc_fds(w) if w else 0,
                                  wrk_heap=self.fived.heap_kb() if w else 0,
                                  wrk_cpu=proc_cpu_ticks(w) if w else 0,
                                  live=self.load_status.get("live", 0),
                                  load_cpu=proc_cpu_ticks(self.load_pid)))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))

    def stop(self):
        self.running = False
        self.thread.join()


# --- the faults ---------------------------------------------------------------------------

class Faults:
    """Each fault's injection and its own checks; the windows of time in which
    the ends of sessions it may cause are excused are kept for check()."""

    def __init__(self, ctx):
        self.c = ctx
        self.results = []   # (at, fault, details, held)
        self.windows = []   # (fault, start, end, services or None, new_only)

    def record(self, at, fault, details, held):
        self.results.append((at - self.c.t0, fault, details, held))
        log(fault, "held" if held else "DID NOT HOLD", details)

    def sighup(self, at):
        f = self.c.fived
        f.reload(spare=not f.spare)
        # While another fault refuses every new session, the probe learns nothing.
        wait_for(lambda: self.c.refusing == 0, 60, "the refusing faults to end")
        t0 = time.monotonic()
        why = ""
        while time.monotonic() - t0 < PROBE_BOUND:
            want = f.spare  # the latest reload's, should another have come meanwhile
            ok, why = probe(f.port, "spare", timeout=PROBE_TIMEOUT)
            if ok == want and (ok or "unknown service" in why):
                return True
            time.sleep(0.1)
        self.record(at, "sighup", "spare not %s %.1f s after the reload (last probe: %s)"
                    % ("served" if want else "refused", PROBE_BOUND, why or "served"), False)
        return False

    def client_reset(self, at):
        os.kill(self.c.load.pid, signal.SIGUSR1)
        self.record(at, "client-reset", "SIGUSR1 to the load: it resets a tenth of its "
                    "running plain sessions (their count is in the events)", True)

    def backend_kill(self, at, hold):
        c = self.c
        killed = time.time()
        c.echo2.kill()
        c.echo2.wait()
        time.sleep(hold)
        c.echo2 = start_backend(c.procs, c.build, "echo2", c.fived.ports["echo2"])
        back = served_within(c.fived.port, "echo2", PROBE_BOUND)
        restart = time.monotonic()
        self.windows.append(("backend-kill", at, restart + PROBE_BOUND, {"echo2"}, False))
        time.sleep(max(0.0, killed + END_BOUND - time.time()))
        reasons = audit_ends(c.audit_log, "echo2", killed, killed + END_BOUND)
        self.record(at, "backend-kill", "echo2's backend killed, restarted after %d s; "
                    "echo2 served again %s after the restart; the audit log's ends of echo2 "
                    "sessions and streams in the %g s after the kill, by reason: %s"
                    % (hold, served_text(back), END_BOUND,
                       ", ".join("%s %d" % kv for kv in sorted(reasons.items())) or "NONE"),
                    back[0] is not None and sum(reasons.values()) > 0 and "" not in reasons)

    def relay_silence(self, at, hold):
        c = self.c
        before = c.relay.connections
        n = c.relay.silence()
        time.sleep(hold)
        c.relay.release()
        again = c.relay.connections - before
        self.record(at, "relay-silence", "%d relayed connection(s) silenced for %d s; %d new "
                    "connection(s) through the relay meanwhile (the detachable session "
                    "attaching again); its streams' ends are checked with the rest"
                    % (n, hold, again), n > 0 and again > 0)

    def audit_full(self, at, hold):
        c = self.c
        required = c.audit_rounds % 2 == 1
        c.audit_rounds += 1
        if required != c.fived.required:
            c.fived.reload(required=required)
            time.sleep(1)
        c.refusing += required
        wrk = c.fived.worker()
        filler = os.path.join(c.audit_dir, "filler")
        start = time.monotonic()
        st = os.statvfs(c.audit_dir)
        with open(filler, "wb", buffering=0) as f:  # nothing left to flush at close
            try:
                os.posix_fallocate(f.fileno(), 0, st.f_bavail * st.f_frsize)
            except OSError:
                pass
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        time.sleep(1)
        during = [probe(c.fived.port, "echo", timeout=PROBE_TIMEOUT) for _ in range(3)]
        time.sleep(max(0.0, hold - (time.monotonic() - start)))
        os.unlink(filler)
        back = served_within(c.fived.port, "echo", PROBE_BOUND)
        c.refusing -= required
        end = time.monotonic()
        alive = c.fived.proc.poll() is None and c.fived.worker() == wrk
        refused = [why for ok, why in during if not ok]
        if required:
            held = alive and back[0] is not None and bool(refused) and \
                all("server busy" in why or why == "closed" for why in refused)
            self.windows.append(("audit-full", start, end + PROBE_BOUND, None, True))
        else:
            held = alive and back[0] is not None and not refused
        self.record(at, "audit-full", "audit_required = %s: monitor and worker %s; probes "
                    "while full: %s; served %s after space came back"
                    % ("yes" if required else "no", "unchanged" if alive else "CHANGED",
                       ", ".join(why or "served" for ok, why in during),
                       served_text(back)), held)
        # The log grows with the soak: keep its file system for the next time.
        open(c.audit_log, "w").close()

    def worker_kill(self, at):
        c = self.c
        old = c.fived.worker()
        os.kill(old, signal.SIGKILL)
        back = served_within(c.fived.port, "echo", PROBE_BOUND)
        new = c.fived.worker()
        self.windows.append(("worker-kill", at, at + PROBE_BOUND, None, False))
        # A detachable session behind a silent relay learns that its worker is gone only
        # when libfive gives the connection up and attaches again, up to DETACH_NOTICE later.
        self.windows.append(("worker-kill", at, at + DETACH_NOTICE, {"detach"}, False))
        held = c.fived.proc.poll() is None and back[0] is not None and new not in (None, old)
        self.record(at, "worker-kill", "worker %d killed; monitor %s; new worker %s; "
                    "served again after %s" % (old, "alive" if c.fived.proc.poll() is None
                                               else "GONE", new,
                                               served_text(back)), held)

    def store_gone(self, at, hold):
        c = self.c
        said = c.fived.log()
        gone, back_at = said.count("unreachable ("), said.count("reachable\n")
        c.store.kill()
        noticed = waited(lambda: c.fived.log().count("unreachable (") > gone, STORE_NOTICE)
        during = probe(c.fived.port, "echo", timeout=PROBE_TIMEOUT)
        time.sleep(max(0.0, hold - (time.monotonic() - at)))
        c.store.start()
        back = waited(lambda: c.fived.log().count("reachable\n") > back_at, STORE_NOTICE)
        held = noticed is not None and back is not None and during[0] and \
            c.fived.proc.poll() is None
        self.record(at, "store-gone", "store killed; fived said unreachable %s; a probe while "
                    "it was away: %s; started again after %d s, fived said reachable %s"
                    % (seconds_text(noticed), "served" if during[0] else during[1], hold,
                       seconds_text(back)), held)

    def out_of_descriptors(self, at, hold):
        c = self.c
        w = c.fived.worker()
        cpu0, t0 = proc_cpu_ticks(w), time.monotonic()
        time.sleep(hold)
        base = (proc_cpu_ticks(w) - cpu0) / HZ / (time.monotonic() - t0)
        # Idle connections (benchtool's flood) until the worker holds all it may; no more
        # than that in all, so that what the worker does at the limit is not answering
        # a flood that reconnects as fast as it is refused.
        need = NOFILE - proc_fds(w) + FLOOD_EXTRA
        start = time.monotonic()
        c.refusing += 1
        flood = c.procs.start("flood", [os.path.join(c.build, "bench", "benchtool"), "flood",
                                        "-M", "idle", "-c", "127.0.0.1:%d" % c.fived.port,
                                        "-d", str(hold + FLOOD_REACH), "-k", "500",
                                        "-m", str(need), "-H", str(need), "-B", "127.2",
                                        "-S", str(SOURCES), "-t", "5"])
        shortages = c.fived.log().count(SHORTAGE)
        full = None
        try:
            full = wait_for(lambda: c.fived.log().count(SHORTAGE) > shortages, FLOOD_REACH,
                            "the limit")
        except RuntimeError:
            pass
        cpu0, t0 = proc_cpu_ticks(w), time.monotonic()
        time.sleep(1)
        during = probe(c.fived.port, "echo", timeout=1.0)
        time.sleep(max(0.0, hold - (time.monotonic() - t0)))
        cpu = (proc_cpu_ticks(w) - cpu0) / HZ / (time.monotonic() - t0)
        at_limit = proc_fds(w)
        flood.send_signal(signal.SIGTERM)
        flood.wait()
        back = served_within(c.fived.port, "echo", PROBE_BOUND)
        c.refusing -= 1
        end = time.monotonic()
        self.windows.append(("out-of-descriptors", start, end + PROBE_BOUND, None, True))
        held = bool(full) and cpu <= base + NOFILE_CPU_EXTRA and cpu < NOFILE_CPU_MAX and \
            back[0] is not None and \
            c.fived.worker() == w
        self.record(at, "out-of-descriptors", "%d idle connections asked for; the worker "
                    "%s short of descriptors (limit %d, %d held at the end); worker CPU %.0f %% at the "
                    "limit (%.0f %% in the %d s before); a probe at the limit: %s; served %s "
                    "after" % (need, "ran" if full else "DID NOT RUN", NOFILE, at_limit,
                               cpu * 100, base * 100, hold,
                               "served" if during[0] else during[1],
                               served_text(back)), held)


def schedule(seconds):
    """(time after the start, fault, how long) for a run of seconds."""
    plan = []
    last = seconds - 20
    for fault, (first, every, hold) in FAULTS.items():
        t = WARMUP + first
        while t + hold <= last:
            plan.append((t, fault, hold))
            t += every
    t = WARMUP
    while t <= last:
        plan.append((t, "sighup", 0))
        t += SIGHUP_EVERY
    return sorted(plan)


def run_faults(ctx, faults, plan):
    """Each fault in its own thread at its time (some last seconds)."""
    threads = []
    for at, fault, hold in plan:
        delay = ctx.t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if ctx.load.poll() is not None:
            break
        fn = getattr(faults, fault.replace("-", "_"))
        args = (time.monotonic(),) + ((hold,) if hold else ())
        th = threading.Thread(target=guarded, args=(faults, fault, fn, args), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        while th.is_alive():  # a join with no timeout would not let Ctrl-C through
            th.join(0.5)


def guarded(faults, fault, fn, args):
    try:
        fn(*args)
    except Exception as e:  # a fault that cannot be injected is a failed check, not a crash
        faults.record(args[0], fault, "could not be injected: %s" % e, False)


# --- the check ----------------------------------------------------------------------------

def excused(row, windows):
    """The fault that excuses this session's end, or None.  A window names the services
    or classes of sessions it excuses (None: all)."""
    start, end = int(row["start_ms"]) / 1000.0, int(row["end_ms"]) / 1000.0
    for fault, w0, w1, scope, new_only in windows:
        if scope is not None and row["service"] not in scope and row["class"] not in scope:
            continue
        began_inside = w0 <= start <= w1 and end <= w1 + NEW_GRACE
        cut_short = start < w0 <= end <= w0 + END_BOUND + (w1 - w0)
        if began_inside or (cut_short and not new_only):
            return fault
    return None


def check_events(path, windows):
    counts = collections.Counter()
    by_class = collections.Counter()
    excuses = collections.Counter()
    violations = []
    starts, bytes_checked, first, last = [], 0, None, None
    with open(path) as f:
        for row in csv.DictReader(f):
            out = row["outcome"]
            counts[out] += 1
            by_class[row["class"]] += 1
            bytes_checked += int(row["bytes"])
            starts.append(int(row["start_ms"]))
            if out in ("ok", "reset"):
                continue
            fault = excused(row, windows) if out != "corrupt" else None
            if fault is None:
                violations.append(row)
            else:
                excuses[fault] += 1
    return dict(counts=counts, by_class=by_class, excuses=excuses, violations=violations,
                bytes=bytes_checked, starts=sorted(starts))


def trend(rows, key, t0, seconds):
    """(second third's median, last third's median, held) after the warm-up, while
    the load runs."""
    vals = [r[key] for r in rows if t0 + WARMUP <= r["t"] <= t0 + seconds and r[key] > 0]
    if len(vals) < 6:
        return None, None, False
    n = len(vals) // 3
    mid, end = statistics.median(vals[n:2 * n]), statistics.median(vals[2 * n:])
    slack = FD_SLACK if "fds" in key else RSS_SLACK_KB
    return mid, end, end <= mid * (1 + GROWTH) + slack


def retention(rows, t0, seconds):
    """The most the worker's RSS exceeded its heap in use after each worker's own warm-up
    (KiB), and whether that stayed within KEEP_BOUND_KB: the memory the allocator keeps
    freed for the next peak (MALLOC_KEEP in src/server/daemon/main.c) plus the code, the
    libraries and their data.  With the heap in use flat, this bounds the RSS."""
    born, most = {}, 0
    for r in rows:
        if not (r["worker"] and r["wrk_rss"] and r["wrk_heap"]) or r["t"] > t0 + seconds:
            continue
        born.setdefault(r["worker"], r["t"])
        if r["t"] - born[r["worker"]] >= WARMUP:
            most = max(most, r["wrk_rss"] - r["wrk_heap"])
    return most, 0 < most <= KEEP_BOUND_KB


def worker_lives(rows, t0):
    """Each worker's life: (pid, from, to (s), RSS 20 s into it, its highest, its last, in
    MiB), to tell a leak (steady growth) from memory kept after a peak (steps)."""
    lives = collections.OrderedDict()
    for r in rows:
        if r["worker"] and r["wrk_rss"]:
            lives.setdefault(r["worker"], []).append(r)
    out = []
    for pid, rs in lives.items():
        settled = [r for r in rs if r["t"] - rs[0]["t"] >= WARMUP] or rs
        out.append((pid, rs[0]["t"] - t0, rs[-1]["t"] - t0, settled[0]["wrk_rss"] / 1024.0,
                    max(r["wrk_rss"] for r in rs) / 1024.0, rs[-1]["wrk_rss"] / 1024.0))
    return out


def worker_cpu(rows):
    """The worker's mean CPU share over the samples, in percent (a new worker counted too)."""
    ticks, last = 0, {}
    for r in rows:
        w = r["worker"]
        if w in last:
            ticks += r["wrk_cpu"] - last[w]
        last[w] = r["wrk_cpu"]
    span = rows[-1]["t"] - rows[0]["t"] if len(rows) > 1 else 1
    return 100.0 * ticks / HZ / span


def load_cpu(rows):
    """The load's mean CPU share while it ran, in percent."""
    ran = [r for r in rows if r["load_cpu"] > 0]
    span = ran[-1]["t"] - ran[0]["t"] if len(ran) > 1 else 1
    return 100.0 * (ran[-1]["load_cpu"] - ran[0]["load_cpu"]) / HZ / span if ran else 0.0


# --- the report ---------------------------------------------------------------------------

def plot(rows, t0, outdir):
    dat = os.path.join(outdir, "soak.dat")
    with open(dat, "w") as f:
        f.write("# t_s mon_rss_mib wrk_rss_mib mon_fds wrk_fds live_sessions "
                "wrk_heap_mib (0: no answer)\n")
        for r in rows:
            f.write("%.1f %.2f %.2f %d %d %d %.2f\n" % (r["t"] - t0, r["mon_rss"] / 1024.0,
                                                       r["wrk_rss"] / 1024.0, r["mon_fds"],
                                                       r["wrk_fds"], r["live"],
                                                       r["wrk_heap"] / 1024.0))
    gp = os.path.join(outdir, "soak.gp")
    with open(gp, "w") as f:
        f.write("""set terminal pngcairo size 1000,700
set output 'soak.png'
set multiplot layout 2,1 title "fived under the soak (make soak)"
set xlabel 'seconds'
set ylabel 'MiB'
set key top left
plot 'soak.dat' using 1:3 with lines title 'worker RSS', \\
     'soak.dat' using 1:($7 > 0 ? $7 : 1/0) with lines title 'worker heap in use', \\
     'soak.dat' using 1:2 with lines title 'monitor RSS'
set ylabel 'count'
plot 'soak.dat' using 1:5 with lines title 'worker descriptors', \\
     'soak.dat' using 1:4 with lines title 'monitor descriptors', \\
     'soak.dat' using 1:6 with lines title 'sessions open (load)'
unset multiplot
""")
    subprocess.run(["gnuplot", "soak.gp"], cwd=outdir, check=True)


def write_report(path, args, ev, rows, faults, trends, kept, peak, skipped, shortened, ok):
    dur = args.seconds
    starts = ev["starts"]
    per_sec = collections.Counter((s - starts[0]) // 1000 for s in starts) if starts else {}
    steady = [per_sec.get(i, 0) for i in range(WARMUP, max(WARMUP + 1, dur - 20))]
    lines = ["# fived soak report", "",
             "Written by `make soak` (tests/soak/soak.py); the plot is "
             "bench/plots/soak.png (data bench/plots/soak.dat, gnuplot script "
             "bench/plots/soak.gp).", ""]
    if shortened:
        lines += ["**A shortened run**: %d s (the default is 600 s), on a machine of 2 CPUs "
                  "shared with other work while it ran." % dur, ""]
    lines += ["Result: **%s**." % ("everything held" if ok else "SOMETHING DID NOT HOLD"), "",
              "## Load", "",
              "| figure | value |", "| --- | --- |",
              "| length | %d s (warm-up %d s) |" % (dur, WARMUP),
              "| sessions open at once, peak (load's count) | %d |" % peak,
              "| held long plain/USP sessions asked | %d |" % args.held,
              "| short sessions asked a second | %d (at most %d under way; %d skipped for "
              "that) |" % (args.rate, SHORT_MAX, skipped),
              "| sessions ended, all classes | %d |" % sum(ev["counts"].values()),
              "| new sessions a second after the warm-up, median (min) | %d (%d) |"
              % (statistics.median(steady) if steady else 0, min(steady) if steady else 0),
              "| fived's worker CPU, mean over the run (of one CPU) | %.0f %% |"
              % worker_cpu(rows),
              "| the load's CPU (soakload), mean | %.0f %% |" % load_cpu(rows),
              "| bytes echoed and checked byte by byte | %d (%.1f MB) |"
              % (ev["bytes"], ev["bytes"] / 1e6),
              "| sessions by class | %s |" % ", ".join("%s %d" % kv for kv in
                                                       sorted(ev["by_class"].items())),
              "| ends by outcome | %s |" % ", ".join("%s %d" % kv for kv in
                                                     sorted(ev["counts"].items())),
              "| ends excused by a fault | %s |" % (", ".join(
                  "%s %d" % kv for kv in sorted(ev["excuses"].items())) or "none"),
              "| ends no fault excuses (lost or corrupted) | %d |" % len(ev["violations"]),
              ""]
    lines += ["## Memory and descriptors", "",
              "Sampled every second: RSS and descriptors from /proc, the worker's heap in "
              "use from its metrics (`fived_heap_in_use_bytes`).  Rule: after the %d s "
              "warm-up, the median of the last third of the samples is at most %d %% above "
              "the median of the second third, plus %d KiB of memory or %d descriptors; "
              "the worker's over the whole run (a new worker serves the same load).  The "
              "worker's heap in use is the leak test.  Its RSS is not: the worker keeps up "
              "to 64 MiB of freed memory for the next peak (fived(8), METRICS; without it, "
              "many streams at once fault pages in again and again), so its RSS rises to "
              "the highest peak of a worker's life and stays there.  What the RSS holds "
              "beyond the heap in use, after each worker's own warm-up, must stay within "
              "%d MiB (the 64 MiB kept, and 16 MiB of code, libraries and their data)."
              % (WARMUP, GROWTH * 100, RSS_SLACK_KB, FD_SLACK, KEEP_BOUND_KB // 1024), "",
              "| series | second third | last third | held |", "| --- | --- | --- | --- |"]
    for key, (mid, end, held) in trends.items():
        lines.append("| %s | %s | %s | %s |" % (key, mid, end, "yes" if held else "NO"))
    lines += ["", "The worker's RSS beyond its heap in use, at most: %.1f MiB (bound %d MiB): "
              "**%s**." % (kept[0] / 1024.0, KEEP_BOUND_KB // 1024,
                           "held" if kept[1] else "DID NOT HOLD")]
    lines += ["", "Each worker's RSS (MiB):", "",
              "| worker | from (s) | to (s) | 20 s into its life | highest | last |",
              "| --- | --- | --- | --- | --- | --- |"]
    for life in worker_lives(rows, rows[0]["t"] if rows else 0):
        lines.append("| %d | %.0f | %.0f | %.1f | %.1f | %.1f |" % life)
    lines += ["", "## Faults", "", "| fault | what must hold |", "| --- | --- |"]
    for fault, text in MUST_HOLD.items():
        lines.append("| %s | %s |" % (fault, text))
    hups = [r for r in faults.results if r[1] == "sighup"]
    lines += ["", "What each did (time after the start):", "",
              "| at (s) | fault | what happened | held |", "| --- | --- | --- | --- |"]
    for at, fault, details, held in faults.results:
        lines.append("| %.0f | %s | %s | %s |" % (at, fault, details, "yes" if held else "NO"))
    lines += ["", "Reloads (SIGHUP, the service spare added or removed each time): %d, "
              "%d of them not in force within %g s." % (args.reloads, len(hups), PROBE_BOUND)]
    if ev["violations"]:
        lines += ["", "## Ends no fault excuses (first 20)", "", "```"]
        for row in ev["violations"][:20]:
            lines.append(",".join(row[k] for k in ("start_ms", "end_ms", "class", "service",
                                                    "bytes", "outcome", "reason")))
        lines.append("```")
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


# --- main ---------------------------------------------------------------------------------

class Ctx:
    pass


def read_status(load, status):
    for line in load.stdout:
        words = line.decode(errors="replace").split()
        for w in words:
            if "=" in w:
                k, v = w.split("=", 1)
                if v.isdigit():
                    status[k] = int(v)
        if "live" in status:
            status["peak"] = max(status.get("peak", 0), status["live"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--held", type=int, default=int(os.environ.get("SOAK_HELD", 0)) or None)
    ap.add_argument("--rate", type=int, default=int(os.environ.get("SOAK_RATE", 500)))
    ap.add_argument("--sealed", type=int, default=200)
    ap.add_argument("--tls", type=int, default=50)
    ap.add_argument("--mux", type=int, default=4, help="multiplexed sessions")
    ap.add_argument("--streams", type=int, default=50, help="streams in each")
    ap.add_argument("--detach-streams", type=int, default=8)
    ap.add_argument("--report", default=os.path.join(REPO, "bench", "SOAK.md"))
    ap.add_argument("--plots", default=os.path.join(REPO, "bench", "plots"))
    args = ap.parse_args()
    if args.held is None:
        args.held = default_held()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (a tmpfs for the audit log, fived with privilege separation)")
    if args.seconds < 60:
        sys.exit("soak: SOAK_SECONDS must be at least 60")
    raise_nofile()
    state = tempfile.mkdtemp(prefix="fivesoak.")
    os.chmod(state, 0o755)
    audit_dir = os.path.join(state, "audit")
    os.mkdir(audit_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % AUDIT_TMPFS,
                    "fivesoak", audit_dir], check=True)
    procs = Procs(state)
    ok = False
    try:
        ok = soak(args, state, audit_dir, procs)
    finally:
        procs.stop_all()
        subprocess.run(["umount", audit_dir])
        log("state kept in", state)
    sys.exit(0 if ok else 1)


def soak(args, state, audit_dir, procs):
    c = Ctx()
    c.procs, c.build, c.audit_dir = procs, args.build, audit_dir
    c.audit_log = os.path.join(audit_dir, "audit.log")
    c.audit_rounds = 0
    c.refusing = 0   # faults under way that refuse every new session
    ports = dict(echo=free_port(), echo2=free_port())
    c.echo = start_backend(procs, c.build, "echo", ports["echo"])
    c.echo2 = start_backend(procs, c.build, "echo2", ports["echo2"])
    c.store = Store(procs, state)
    c.fived = Fived(procs, c.build, state, c.audit_log, ports["echo"], ports["echo2"],
                    c.store.port)
    c.relay = SilentRelay(c.fived.port)
    events = os.path.join(state, "events.csv")
    env = dict(os.environ, FIVE_IDENTITY_FILE=os.path.join(state, "identity"))
    status = {}
    argv = [os.path.join(c.build, "soak", "soakload"), "-c", "127.0.0.1:%d" % c.fived.port,
            "-d", str(args.seconds), "-o", events, "-k", str(args.held), "-r", str(args.rate), "-C", str(SHORT_MAX),
            "-B", "127.1", "-S", str(SOURCES), "-K", c.fived.key,
            "-H", os.path.join(state, "known_hosts"), "-y", str(args.sealed),
            "-T", str(args.tls), "-m", str(args.mux), "-M", str(args.streams),
            "-R", str(c.relay.port), "-D", str(args.detach_streams)]
    c.t0 = time.monotonic()
    c.load = procs.start("soakload", argv, stdout=subprocess.PIPE, env=env)
    threading.Thread(target=read_status, args=(c.load, status), daemon=True).start()
    sampler = Sampler(c.fived, status, c.load.pid)
    faults = Faults(c)
    plan = schedule(args.seconds)
    log("fived pid %d on port %d; %d faults planned" % (c.fived.pid, c.fived.port, len(plan)))
    run_faults(c, faults, plan)
    c.load.wait()
    sampler.stop()
    args.reloads = c.fived.reloads
    alive = c.fived.proc.poll() is None
    # Under SAN=1 builds, a sanitizer's report in fived's log fails the soak.
    sanitized = [line for line in c.fived.log().splitlines()
                 if "AddressSanitizer" in line or "runtime error" in line][:20]
    ev = check_events(events, faults.windows)
    trends = {"monitor RSS (KiB)": trend(sampler.rows, "mon_rss", c.t0, args.seconds),
              "monitor descriptors": trend(sampler.rows, "mon_fds", c.t0, args.seconds),
              "worker heap in use (KiB)": trend(sampler.rows, "wrk_heap", c.t0,
                                                args.seconds),
              "worker descriptors": trend(sampler.rows, "wrk_fds", c.t0, args.seconds)}
    kept = retention(sampler.rows, c.t0, args.seconds)
    os.makedirs(args.plots, exist_ok=True)
    plot(sampler.rows, c.t0, args.plots)
    ok = alive and not sanitized and not ev["violations"] and ev["counts"]["corrupt"] == 0 and \
        all(t[2] for t in trends.values()) and kept[1] and \
        all(r[3] for r in faults.results)
    write_report(args.report, args, ev, sampler.rows, faults, trends, kept,
                 status.get("peak", 0),
                 status.get("skipped", 0), args.seconds < 600, ok)
    if sanitized:
        with open(args.report, "a") as f:
            f.write("## Sanitizer reports in fived's log\n\n```\n%s\n```\n"
                    % "\n".join(sanitized))
    log("%s; report in %s" % ("everything held" if ok else "SOMETHING DID NOT HOLD",
                              args.report))
    return ok


if __name__ == "__main__":
    main()
