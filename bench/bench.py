#!/usr/bin/python3
"""fived's benchmark suite (make bench, through bench/run.sh).

Measures fived beside the tools a user would otherwise pick and writes
bench/REPORT.md, bench/results/*.csv and bench/plots/*.png:

  1. layer 4 vs layer 5 timing across a 28 ms round trip (two network
     namespaces joined by bench/delayline.c);
  2. loopback throughput, 1 and 8 streams, with CPU per GB of every process
     on the path;
  3. loopback session rate with CPU per session;
  4. memory held by 10,000 idle sessions;
  5. fived's legitimate clients while floods hit it;
  plus `five HOST echo` against direct TCP.

Systems under test are entries of a table (SYSTEMS_WAN, SYSTEMS_LO): each is
a function that starts its servers in the bench's namespaces and returns a
Recipe saying how a client reaches the backend through it.  A new row (fived
sealed, fived warm) is one function and one table line.

Every process is started through Runner, stopped by its pid at the end (also
on an error or Ctrl-C), and every namespace the bench adds is deleted.
"""

import argparse
import csv
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PLOTS = os.path.join(HERE, "plots")
REPORT = os.path.join(HERE, "REPORT.md")

NS_A = "fivebench-a"      # the client's side of the wide-area link
NS_B = "fivebench-b"      # the server's side
NS_LO = "fivebench-lo"    # every loopback measurement
WAN_CLIENT_IP = "10.77.0.1"
WAN_SERVER_IP = "10.77.0.2"
WAN_DELAY_MS = 14
TUN_MTU = 1500

BACKEND_PORT = 7000       # benchtool serve: "G n", "E", hold
ECHO_PORT = 7001          # benchtool serve: plain echo
FIVED_PORT = 5001
SOCAT_PORT = 6001
HAPROXY_PORT = 6002
STUNNEL_SERVER_PORT = 6101   # + index of the cipher suite
STUNNEL_CLIENT_PORT = 6201
SPIPED_SERVER_PORT = 6301
SPIPED_CLIENT_PORT = 6401
SSH_FORWARD_PORT = 6501      # + index of the cipher
SSHD_PORT = 2222
FIVE_L_PORT = 6601           # five --multiplex -L: one warm session, a stream per connection

PIN_CPU = "0"             # pinned runs: every process on this CPU
ATTACK_CPU = "1"          # floods run on the other CPU, like another machine

GIB = 1 << 30
MIB = 1 << 20
MB = 1e6

# Bounds of every loop, full run and --quick.
FULL = dict(wan_reps=200, wan_block=25, wan_bytes=1_000_000, tput_rounds=3,
            tput_bytes_1=512 * MIB, tput_bytes_8=64 * MIB, big_rounds=3, rate_rounds=3,
            rate_seconds=1.5, rate_max=40000, rate_conc=8, idle_sessions=10000,
            attack_seconds=12, attack_legit=300, five_reps=100, resume_cuts=5,
            detached_sessions=500)
QUICK = dict(wan_reps=20, wan_block=10, wan_bytes=1_000_000, tput_rounds=1,
             tput_bytes_1=256 * MIB, tput_bytes_8=32 * MIB, big_rounds=1, rate_rounds=1,
             rate_seconds=1.0, rate_max=10000, rate_conc=8, idle_sessions=1000,
             attack_seconds=5, attack_legit=100, five_reps=20, resume_cuts=3,
             detached_sessions=100)

CLK_TCK = os.sysconf("SC_CLK_TCK")
# run.sh raises RLIMIT_NOFILE as far as it may; a proxy needs two
# descriptors per relayed session and a few of its own.
NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
PROXY_FDS_SPARE = 40
PROXY_MAX_SESSIONS = (NOFILE - PROXY_FDS_SPARE) // 2


def log(msg):
    print("bench: " + msg, flush=True)


# --- processes ------------------------------------------------------------------


class Proc:
    """A process the bench started: its Popen, a name, its log file."""

    def __init__(self, name, popen, logpath, argv):
        self.name = name
        self.popen = popen
        self.log = logpath
        self.argv = argv

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None


class Runner:
    """Starts every process, remembers it, and stops it by its pid."""

    def __init__(self, state, repo):
        self.state = state
        self.repo = repo
        self.logs = os.path.join(state, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.pidfile = os.path.join(state, "pids")
        self.nsfile = os.path.join(state, "netns")
        self.procs = []
        self.namespaces = []
        self.commands = []   # (section, shown command line) for the report
        self.section = "setup"
        self.counter = 0

    def show(self, argv):
        text = " ".join(a if re.fullmatch(r"[\w@%+=:,./\[\]-]+", a) else "'%s'" % a
                        for a in argv)
        return text.replace(self.state, "$WORK").replace(self.repo + "/", "")

    def wrap(self, argv, ns=None, pin=None):
        full = list(argv)
        if pin is not None:
            full = ["taskset", "-c", pin] + full
        if ns is not None:
            full = ["ip", "netns", "exec", ns] + full
        return full

    def note(self, full):
        shown = self.show(full)
        if (self.section, shown) not in self.commands:
            self.commands.append((self.section, shown))

    def spawn(self, name, argv, ns=None, pin=None, stdout=None, stdin=subprocess.DEVNULL,
              env=None):
        """Starts a long-running process; it is stopped by stop() or stop_all().
        env: variables added to the environment."""
        self.counter += 1
        full = self.wrap(argv, ns, pin)
        if env:
            full = ["env"] + ["%s=%s" % kv_ for kv_ in env.items()] + full
        logpath = os.path.join(self.logs, "%03d-%s.log" % (self.counter, name))
        logf = open(logpath, "wb")
        popen = subprocess.Popen(full, stdin=stdin, stdout=stdout or logf, stderr=logf,
                                 start_new_session=True)
        logf.close()
        proc = Proc(name, popen, logpath, full)
        self.procs.append(proc)
        with open(self.pidfile, "a") as f:
            f.write("%d\n" % popen.pid)
        self.note(full)
        return proc

    def run(self, argv, ns=None, pin=None, timeout=600, note=True, input=None):
        """Runs a command to completion (killed at timeout); returns (rc, out, err)."""
        full = self.wrap(argv, ns, pin)
        if note:
            self.note(full)
        popen = subprocess.Popen(full, stdin=subprocess.PIPE if input is not None else
                                 subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
        proc = Proc("run", popen, None, full)
        self.procs.append(proc)
        try:
            out, err = popen.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            out, err = popen.communicate()
            return -1, out.decode(errors="replace"), "timeout\n" + err.decode(errors="replace")
        finally:
            if proc in self.procs and not proc.alive():
                self.procs.remove(proc)
        return popen.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def stop(self, proc, grace=3.0):
        if proc.alive():
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.popen.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self):
        for proc in reversed(list(self.procs)):
            self.stop(proc)

    def netns_add(self, name):
        if os.path.exists("/run/netns/" + name):
            subprocess.run(["ip", "netns", "del", name], check=False)
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.namespaces.append(name)
        with open(self.nsfile, "a") as f:
            f.write(name + "\n")
        self.note(["ip", "netns", "add", name])

    def netns_del_all(self):
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False)
        self.namespaces = []

    def sh(self, argv, ns=None):
        """A setup command that must succeed (ip, sysctl)."""
        full = self.wrap(argv, ns)
        self.note(full)
        subprocess.run(full, check=True, stdout=subprocess.DEVNULL)


# --- /proc ----------------------------------------------------------------------


def proc_table():
    """pid -> (ppid, cpu ticks, minor page faults), reaped children included."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        # fields[0] is field 3 (state): ppid is 4, minflt 10, cminflt 11, utime..cstime 14..17
        table[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]),
                             int(fields[7]) + int(fields[8]))
    return table


def tree(table, roots):
    pids = set(p for p in roots if p in table)
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in table.items():
            if ppid in pids and pid not in pids:
                pids.add(pid)
                grew = True
    return pids


def cpu_of(procs, table=None):
    """CPU seconds of procs and all their descendants (reaped ones included)."""
    table = table or proc_table()
    return sum(table[p][1] for p in tree(table, [x.pid for x in procs])) / CLK_TCK


def faults_of(procs, table=None):
    """Minor page faults of procs and their descendants."""
    table = table or proc_table()
    return sum(table[p][2] for p in tree(table, [x.pid for x in procs]))


def rss_kib(procs):
    table = proc_table()
    total = 0
    for pid in tree(table, [x.pid for x in procs]):
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


CAP_SYS_RESOURCE = 24


def has_cap(bit):
    with open("/proc/self/status") as f:
        m = re.search(r"^CapEff:\s*([0-9a-f]+)", f.read(), re.M)
    return bool(m and int(m.group(1), 16) >> bit & 1)


def count_in_tree(proc, what):
    """Entries of /proc/PID/WHAT summed over proc and its descendants (fived
    started as root is a monitor and an unprivileged worker)."""
    total = 0
    for pid in tree(proc_table(), [proc.pid]):
        try:
            total += len(os.listdir("/proc/%d/%s" % (pid, what)))
        except OSError:
            pass
    return total


def fd_count(proc):
    return count_in_tree(proc, "fd")


def threads_of(proc):
    return count_in_tree(proc, "task")


def listening(pid, port):
    """Whether anything in pid's network namespace listens on TCP port."""
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except (OSError, StopIteration):
            pass
    return False


def wait_listen(proc, port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError("%s exited: %s" % (proc.name, tail(proc.log)))
        if listening(proc.pid, port):
            return
        time.sleep(0.02)
    raise RuntimeError("%s does not listen on %d: %s" % (proc.name, port, tail(proc.log)))


def tail(path, lines=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except (OSError, TypeError):
        return ""


# --- statistics -----------------------------------------------------------------


def pct(values, p):
    """Percentile p (0..100) with linear interpolation."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def med(values):
    return pct(values, 50)


def sd(values):
    return statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "%.*f" % (digits, x)


def ratio(x, base):
    if x is None or base in (None, 0) or math.isnan(x) or math.isnan(base):
        return "n/a"
    return "%.2f" % (x / base)


def kv(text):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", text)}


# --- the world the systems run in -----------------------------------------------


@dataclass
class Net:
    name: str
    client_ns: str
    server_ns: str
    server_ip: str          # where clients reach servers
    local_ip: str = "127.0.0.1"


@dataclass
class Recipe:
    """How a client reaches the backend through one system under test."""
    addr: str = None        # connect here ("IP:PORT"), or
    argv: list = None       # run this command, speaking on its stdin/stdout
    pre: str = ""           # sent before the request (escaped for benchtool)
    strip: str = ""         # the session layer's reply, before the backend's bytes
    key: str = ""           # fived's server key: benchtool makes a sealed session (libfive)
    strip_line: bool = False  # strip is the start of a line whose rest is skipped too
    via: str = ""           # "-X" (sealed, a first contact each time) or "-T" (TLS): libfive
    warm: str = ""          # with key: each session a new stream of this service (-W)
    procs: dict = field(default_factory=dict)   # role -> [Proc] on the path


@dataclass
class System:
    key: str
    label: str
    layer: int
    start: object           # function(ctx) -> Recipe, or None when not available yet
    note: str = ""


class Ctx:
    """One configuration of the world: a Net, pinned or not, the shared servers."""

    def __init__(self, runner, tools, net, pin):
        self.r = runner
        self.t = tools
        self.net = net
        self.pin = pin
        self.shared = {}

    def spawn(self, name, argv, side, **kw):
        ns = self.net.server_ns if side == "server" else self.net.client_ns
        return self.r.spawn(name, argv, ns=ns, pin=self.pin, **kw)

    def file(self, name, text):
        path = os.path.join(self.r.state, "%s-%s" % (self.net.name, name))
        with open(path, "w") as f:
            f.write(text)
        return path


class Tools:
    """Paths of the programs and the keys the bench made for this run."""

    def __init__(self, state, repo, build):
        self.state = state
        self.repo = repo
        self.fived = os.path.join(repo, "build", "fived")
        self.five = os.path.join(repo, "build", "five")
        self.benchtool = os.path.join(build, "benchtool")
        self.delayline = os.path.join(build, "delayline")
        self.stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
        self.keys = os.path.join(state, "keys")

    def make_keys(self, runner):
        os.makedirs(self.keys, exist_ok=True)
        k = self.keys
        runner.sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", k + "/tls.key", "-out",
                   k + "/tls.crt", "-days", "2", "-subj", "/CN=fivebench"])
        with open(k + "/spiped.key", "wb") as f:
            f.write(os.urandom(32))
        for name in ("host", "user"):
            runner.sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                       "%s/ssh_%s" % (k, name)])
        shutil.copy(k + "/ssh_user.pub", k + "/authorized_keys")


# --- systems under test ------------------------------------------------------------


def start_backend(ctx):
    """benchtool serve in the server namespace: protocol port and plain echo port."""
    if "backend" not in ctx.shared:
        p = ctx.spawn("backend", [ctx.t.benchtool, "serve", "-l", "0.0.0.0:%d" % BACKEND_PORT,
                                  "-e", "0.0.0.0:%d" % ECHO_PORT], "server")
        wait_listen(p, ECHO_PORT)
        ctx.shared["backend"] = p
    return ctx.shared["backend"]


FIVED_CONF = """# fived for the benchmarks: no audit log, limits out of the way
[server]
listen = tcp:{ip}:{port}
audit_log = none
max_connections = 100000
max_per_source = 100000
handshakes_per_source = 1000000
max_streams = 65536
max_pending_opens = 65536
{extra}
[service:bench]
backend = tcp:127.0.0.1:{backend}

[service:echo]
backend = builtin:echo
"""


def start_fived(ctx, name="fived", conf=None, port=FIVED_PORT, binary=None):
    if name not in ctx.shared:
        text = conf or FIVED_CONF.format(ip=ctx.net.server_ip, port=port,
                                         backend=BACKEND_PORT, extra="")
        path = ctx.file(name + ".conf", text)
        p = ctx.spawn(name, [binary or ctx.t.fived, "-c", path], "server")
        wait_listen(p, port)
        ctx.shared[name] = p
    return ctx.shared[name]


def sys_direct(ctx):
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, BACKEND_PORT))


def sys_fived(ctx):
    p = start_fived(ctx)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, FIVED_PORT), pre="bench\\r\\n",
                  strip="+\\r\\n", procs={"server proxy": [p]})


FIVED_SPLICE_PORT = FIVED_PORT + 9


def plain_fived_with(ctx, name, port, extra):
    """fived plain, as sys_fived, with extra lines in [server], on a port of its own."""
    conf = FIVED_CONF.format(ip=ctx.net.server_ip, port=port, backend=BACKEND_PORT, extra=extra)
    p = start_fived(ctx, name=name, conf=conf, port=port)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, port), pre="bench\\r\\n",
                  strip="+\\r\\n", procs={"server proxy": [p]})


def sys_fived_splice(ctx):
    return plain_fived_with(ctx, "fived-splice", FIVED_SPLICE_PORT, "splice = yes\n")


FIVED_WORKERS_PORT = FIVED_PORT + 11   # + 1: sealed


def sys_fived_workers(ctx):
    return plain_fived_with(ctx, "fived-workers", FIVED_WORKERS_PORT, "workers = auto\n")


SEALED_EXTRA = """key_file = {state}/fived-sealed.key
authorized_clients = {state}/authorized_clients
{cookie}"""

SEALED_SERVICE = "\nauth = required\n"

# For TLS without a client certificate: the same backend, open to anyone.
OPEN_SERVICE = "\n[service:open]\nbackend = tcp:127.0.0.1:{backend}\n"


def start_fived_sealed(ctx, name, port, cookie="", binary=None, extra=""):
    """fived whose bench service requires authentication; the bench's client
    key (libfive's, from FIVE_IDENTITY_FILE) is in authorized_clients, so the
    sealed handshake authenticates it and its request goes at once (0-RTT)."""
    key = sealed_server_key(ctx)
    extra = SEALED_EXTRA.format(state=ctx.r.state, cookie=cookie) + "\n" + extra
    conf = FIVED_CONF.format(ip=ctx.net.server_ip, port=port, backend=BACKEND_PORT,
                             extra=extra).replace(
        "backend = tcp:127.0.0.1:%d\n" % BACKEND_PORT,
        "backend = tcp:127.0.0.1:%d%s" % (BACKEND_PORT, SEALED_SERVICE), 1)
    conf += OPEN_SERVICE.format(backend=BACKEND_PORT)
    return start_fived(ctx, name=name, conf=conf, port=port, binary=binary), key


def sealed_server_key(ctx):
    """The sealed fived's key (made on first use) and the authorized_clients
    file with the bench client's key for it."""
    if "sealed-key" not in ctx.shared:
        keyfile = os.path.join(ctx.r.state, "fived-sealed.key")
        conf = ctx.file("print-key.conf", "[server]\nlisten = tcp:127.0.0.1:1\n"
                        "key_file = %s\n" % keyfile)
        key = subprocess.run([ctx.t.fived, "--print-key", "-c", conf], capture_output=True,
                             text=True, check=True).stdout.split()[0]
        client = subprocess.run([ctx.t.benchtool, "clientkey", "-K", key], capture_output=True,
                                text=True, check=True).stdout.strip()
        with open(os.path.join(ctx.r.state, "authorized_clients"), "w") as f:
            f.write("%s bench\n" % client)
        ctx.shared["sealed-key"] = key
    return ctx.shared["sealed-key"]


def sys_five_command(ctx):
    p, key = start_fived_sealed(ctx, "fived-sealed", FIVED_PORT + 2)
    return Recipe(argv=[ctx.t.five, "--key", key, "-p", str(FIVED_PORT + 2), ctx.net.server_ip,
                        "bench"], procs={"server proxy": [p]})


def sealed_recipe(ctx, service, via=""):
    """A session to the sealed fived: IK with its key given, or benchtool's `via`
    (-X, -T), which learns the key itself."""
    p, key = start_fived_sealed(ctx, "fived-sealed", FIVED_PORT + 2)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, FIVED_PORT + 2), pre=service + "\\r\\n",
                  strip="+\\r\\n", key="" if via else key, via=via,
                  procs={"server proxy": [p]})


def sys_fived_sealed(ctx):
    return sealed_recipe(ctx, "bench")


def sys_fived_xx(ctx):
    return sealed_recipe(ctx, "bench", via="-X")


def sys_fived_tls(ctx):
    return sealed_recipe(ctx, "open", via="-T")


def sys_fived_sealed_workers(ctx):
    port = FIVED_WORKERS_PORT + 1
    p, key = start_fived_sealed(ctx, "fived-sealed-workers", port, extra="workers = auto\n")
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, port), pre="bench\\r\\n",
                  strip="+\\r\\n", key=key, procs={"server proxy": [p]})


def sys_fived_cookie(ctx):
    p, key = start_fived_sealed(ctx, "fived-cookie", FIVED_PORT + 3, cookie="cookie = always")
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, FIVED_PORT + 3), pre="bench\\r\\n",
                  strip="+\\r\\n", key=key, procs={"server proxy": [p]})


def warm_up(ctx, port):
    """One connection through a forwarder, so that its session is open before
    the first measured one."""
    code = ("import socket; s = socket.create_connection(('127.0.0.1', %d)); "
            "s.sendall(b'E\\n'); s.recv(1); s.close()" % port)
    ctx.r.run(["python3", "-c", code], ctx.net.client_ns, ctx.pin, timeout=30)


def five_multiplex_forward(ctx, name, port, *target):
    """`five --multiplex -L` on the client's side: every connection it accepts is
    a new stream of one session it opened before (warm_up)."""
    p = ctx.spawn(name, [ctx.t.five, "--multiplex", *target[:-2], "-L", "127.0.0.1:%d" % port,
                         *target[-2:]], "client")
    wait_listen(p, port)
    warm_up(ctx, port)
    return p


def sys_fived_warm(ctx):
    p, key = start_fived_sealed(ctx, "fived-sealed", FIVED_PORT + 2)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, FIVED_PORT + 2), key=key, warm="bench",
                  procs={"server proxy": [p]})


def sys_fived_detach(ctx):
    rec = sys_fived_warm(ctx)
    rec.via = "-D"
    return rec


def sys_five_L_warm(ctx):
    p, key = start_fived_sealed(ctx, "fived-sealed", FIVED_PORT + 2)
    fl = five_multiplex_forward(ctx, "five-L-multiplex", FIVE_L_PORT, "--key", key, "-p",
                                str(FIVED_PORT + 2), ctx.net.server_ip, "bench")
    return Recipe(addr="127.0.0.1:%d" % FIVE_L_PORT, procs={"server proxy": [p],
                                                            "client proxy": [fl]})


def sys_socat(ctx):
    p = ctx.spawn("socat", ["socat", "TCP4-LISTEN:%d,bind=%s,reuseaddr,fork,backlog=4096"
                            % (SOCAT_PORT, ctx.net.server_ip),
                            "TCP4:127.0.0.1:%d" % BACKEND_PORT], "server")
    wait_listen(p, SOCAT_PORT)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, SOCAT_PORT), procs={"server proxy": [p]})


HAPROXY_CFG = """global
    maxconn {maxconn}
    nbthread {threads}
{pipes}defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    maxconn {maxconn}
{options}frontend fe
    bind {ip}:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{backend}
"""

# HAProxy's variants: (port offset, threads (None: one per CPU), options in defaults).
# HAProxy 2.x starts a thread per CPU unless told: the plain peer is told one, so
# that it is the single event loop fived is; the last one has every core.
HAPROXY_VARIANTS = {
    "haproxy": (0, 1, ""),
    "haproxy-splice-auto": (10, 1, "    option splice-auto\n"),
    "haproxy-splice": (11, 1, "    option splice-request\n    option splice-response\n"),
    "haproxy-nbthread": (12, None, ""),
}


# A splicing HAProxy keeps pipes (two descriptors each) within the same descriptor limit.
HAPROXY_PIPES = 512


def start_haproxy(ctx, name):
    offset, threads, options = HAPROXY_VARIANTS[name]
    port = HAPROXY_PORT + offset
    splicing = "splice" in options
    maxconn = PROXY_MAX_SESSIONS - (HAPROXY_PIPES + PROXY_FDS_SPARE if splicing else 0)
    path = ctx.file(name + ".cfg", HAPROXY_CFG.format(
        ip=ctx.net.server_ip, port=port, backend=BACKEND_PORT, maxconn=maxconn,
        threads=threads or os.cpu_count(), options=options,
        pipes="    maxpipes %d\n" % HAPROXY_PIPES if splicing else ""))
    p = ctx.spawn(name, ["haproxy", "-db", "-f", path], "server")
    wait_listen(p, port)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, port), procs={"server proxy": [p]})


def sys_haproxy(ctx):
    return start_haproxy(ctx, "haproxy")


def sys_haproxy_splice_auto(ctx):
    return start_haproxy(ctx, "haproxy-splice-auto")


def sys_haproxy_splice(ctx):
    return start_haproxy(ctx, "haproxy-splice")


def sys_haproxy_nbthread(ctx):
    return start_haproxy(ctx, "haproxy-nbthread")


STUNNEL_GLOBAL = """foreground = yes
syslog = no
pid =
debug = 3
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
"""

TLS13_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]


def stunnel_pair(ctx, idx):
    suite = TLS13_SUITES[idx]
    k = ctx.t.keys
    server = ctx.file("stunnel-server-%d.conf" % idx, STUNNEL_GLOBAL + """
[server]
accept = {ip}:{port}
connect = 127.0.0.1:{backend}
cert = {k}/tls.crt
key = {k}/tls.key
sslVersionMin = TLSv1.3
ciphersuites = {suite}
""".format(ip=ctx.net.server_ip, port=STUNNEL_SERVER_PORT + idx, backend=BACKEND_PORT, k=k,
           suite=suite))
    client = ctx.file("stunnel-client-%d.conf" % idx, STUNNEL_GLOBAL + """
[client]
client = yes
accept = 127.0.0.1:{cport}
connect = {ip}:{port}
CAfile = {k}/tls.crt
verifyPeer = yes
sessionResume = no
sslVersionMin = TLSv1.3
ciphersuites = {suite}
""".format(ip=ctx.net.server_ip, port=STUNNEL_SERVER_PORT + idx,
           cport=STUNNEL_CLIENT_PORT + idx, k=k, suite=suite))
    ps = ctx.spawn("stunnel-server", [ctx.t.stunnel, server], "server")
    pc = ctx.spawn("stunnel-client", [ctx.t.stunnel, client], "client")
    wait_listen(ps, STUNNEL_SERVER_PORT + idx)
    wait_listen(pc, STUNNEL_CLIENT_PORT + idx)
    return Recipe(addr="127.0.0.1:%d" % (STUNNEL_CLIENT_PORT + idx),
                  procs={"server proxy": [ps], "client proxy": [pc]})


def sys_stunnel_aes(ctx):
    return stunnel_pair(ctx, 0)


def sys_stunnel_chacha(ctx):
    return stunnel_pair(ctx, 1)


def sys_spiped(ctx):
    k = ctx.t.keys + "/spiped.key"
    ps = ctx.spawn("spiped-d", ["spiped", "-F", "-d", "-n", "0", "-s", "[%s]:%d" % (
        ctx.net.server_ip, SPIPED_SERVER_PORT), "-t", "[127.0.0.1]:%d" % BACKEND_PORT, "-k", k],
        "server")
    pc = ctx.spawn("spiped-e", ["spiped", "-F", "-e", "-n", "0", "-s", "[127.0.0.1]:%d" %
                                SPIPED_CLIENT_PORT, "-t", "[%s]:%d" % (ctx.net.server_ip,
                                                                      SPIPED_SERVER_PORT),
                                "-k", k], "client")
    wait_listen(ps, SPIPED_SERVER_PORT)
    wait_listen(pc, SPIPED_CLIENT_PORT)
    return Recipe(addr="127.0.0.1:%d" % SPIPED_CLIENT_PORT,
                  procs={"server proxy": [ps], "client proxy": [pc]})


SSHD_CONFIG = """Port {port}
ListenAddress {ip}
HostKey {k}/ssh_host
PidFile none
AuthorizedKeysFile {k}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
AllowTcpForwarding yes
MaxStartups 1000:30:1000
LogLevel ERROR
"""

SSH_CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"]


def start_sshd(ctx):
    if "sshd" not in ctx.shared:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        path = ctx.file("sshd_config", SSHD_CONFIG.format(port=SSHD_PORT, ip=ctx.net.server_ip,
                                                          k=ctx.t.keys))
        p = ctx.spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", path], "server")
        wait_listen(p, SSHD_PORT)
        ctx.shared["sshd"] = p
    return ctx.shared["sshd"]


def ssh_argv(ctx, cipher):
    return ["ssh", "-F", "/dev/null", "-i", ctx.t.keys + "/ssh_user", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "Ciphers=" + cipher,
            "-p", str(SSHD_PORT)]


def ssh_forward(ctx, idx):
    sshd = start_sshd(ctx)
    port = SSH_FORWARD_PORT + idx
    p = ctx.spawn("ssh-L", ssh_argv(ctx, SSH_CIPHERS[idx]) + [
        "-N", "-o", "ExitOnForwardFailure=yes", "-L",
        "127.0.0.1:%d:127.0.0.1:%d" % (port, BACKEND_PORT), "root@" + ctx.net.server_ip],
        "client")
    wait_listen(p, port)
    return Recipe(addr="127.0.0.1:%d" % port, procs={"server proxy": [sshd],
                                                     "client proxy": [p]})


def sys_ssh_L_chacha(ctx):
    return ssh_forward(ctx, 0)


def sys_ssh_L_aes(ctx):
    return ssh_forward(ctx, 1)


def sys_ssh_W(ctx):
    sshd = start_sshd(ctx)
    return Recipe(argv=ssh_argv(ctx, SSH_CIPHERS[0]) + [
        "-W", "127.0.0.1:%d" % BACKEND_PORT, "root@" + ctx.net.server_ip],
        procs={"server proxy": [sshd]})


PENDING = "not yet available"

WARM_NOTE = ("libfive in the load generator (benchtool -W): one sealed session (IK, its key "
             "authorized) opened before the measurements with `five_session_open`; each "
             "measured session is a new stream of it (`five_session_stream`), its OPEN "
             "carrying the request: no connection, handshake or authentication of its own")

DETACH_NOTE = ("as fived warm, the session detachable (PROTOCOL.md section 12): both sides "
               "count and keep a copy of every frame until the other acknowledges it")

FIVE_L_NOTE = ("the same through `five --multiplex -L` on the client's loopback: a local TCP "
               "connection per measured session, which five makes a stream of the one "
               "session it opened before (the path a user's programs take)")

# Section 1: the paper's experiment across the 28 ms link.
SYSTEMS_WAN = [
    System("direct", "direct TCP", 4, sys_direct),
    System("fived", "fived plain TCPMUX, cold", 5, sys_fived,
           "new TCP connection, service line and request pipelined"),
    System("five", "five command (stdio), cold", 5, sys_five_command,
           "`five --key KEY -p PORT HOST bench` started per request: sealed, its key "
           "authorized, so the request rides in the first message"),
    System("stunnel", "stunnel TLS 1.3 pair", 5, sys_stunnel_aes,
           "client stunnel on the client's loopback, full handshake (sessionResume = no)"),
    System("spiped", "spiped pair", 5, sys_spiped, "spiped -e on the client's loopback"),
    System("ssh-W", "ssh -W, fresh", 5, sys_ssh_W, "a new ssh process per request"),
    System("ssh-L", "ssh -L, existing", 5, sys_ssh_L_chacha,
           "a new connection through an ssh -L opened before"),
    System("fived-sealed", "fived sealed IK 0-RTT, cold", 5, sys_fived_sealed,
           "libfive (in benchtool) with the server's key pinned and its own key in "
           "authorized_clients: Noise IK, authenticated by the handshake, the request and "
           "`G n` in the first message; the service requires authentication"),
    System("fived-cookie", "fived sealed, cookie/PoW forced", 5, sys_fived_cookie,
           "as above with `cookie = always`: every first message is answered with a cookie "
           "and an 8-bit proof of work, and the client connects again"),
    System("fived-warm", "fived warm (MULTIPLEX)", 5, sys_fived_warm, WARM_NOTE),
    System("five-L-warm", "five --multiplex -L, warm", 5, sys_five_L_warm, FIVE_L_NOTE),
]

# Sections 2 and 3: loopback throughput and session rate.
SYSTEMS_LO = [
    System("direct", "direct TCP", 4, sys_direct),
    System("socat", "socat", 4, sys_socat, "TCP4-LISTEN,fork"),
    System("haproxy", "HAProxy (tcp mode), 1 thread", 4, sys_haproxy,
           "`nbthread 1`: HAProxy 2.x otherwise starts a thread per CPU"),
    System("haproxy-splice-auto", "HAProxy, option splice-auto", 4, sys_haproxy_splice_auto,
           "1 thread; splices where its heuristics expect it to pay"),
    System("haproxy-splice", "HAProxy, splicing forced", 4, sys_haproxy_splice,
           "1 thread; `option splice-request` and `option splice-response`"),
    System("haproxy-nbthread", "HAProxy, nbthread %d" % os.cpu_count(), 4, sys_haproxy_nbthread,
           "a thread per CPU (`nbthread` = the CPU count)"),
    System("fived", "fived plain, splice off", 5, sys_fived),
    System("fived-splice", "fived plain, splice on", 5, sys_fived_splice,
           "`splice = yes`: the relay goes socket -> pipe -> socket with splice(2)"),
    System("fived-workers", "fived plain, workers = auto", 5, sys_fived_workers,
           "a worker process a CPU (%d), each connection to the worker its source address "
           "picks; the load comes from many loopback addresses" % os.cpu_count()),
    System("stunnel-aes", "stunnel TLS 1.3 AES-128-GCM", 5, sys_stunnel_aes),
    System("stunnel-chacha", "stunnel TLS 1.3 ChaCha20-Poly1305", 5, sys_stunnel_chacha),
    System("spiped", "spiped", 5, sys_spiped),
    System("ssh-L-chacha", "ssh -L chacha20-poly1305", 5, sys_ssh_L_chacha),
    System("ssh-L-aes", "ssh -L aes128-gcm", 5, sys_ssh_L_aes),
    System("fived-sealed", "fived sealed", 5, sys_fived_sealed,
           "libfive in the load generator (benchtool, a thread per stream) opens and "
           "decrypts the records; its CPU is the load generator's. Noise IK with the "
           "client's key authorized: the request rides in the first message"),
    System("fived-sealed-workers", "fived sealed, workers = auto", 5, sys_fived_sealed_workers,
           "as fived sealed, with a worker process a CPU (%d)" % os.cpu_count()),
    System("fived-xx", "fived sealed XX, first contact", 5, sys_fived_xx,
           "as fived sealed, but the client forgets the server's key after every session, so "
           "each is a first contact: Noise XX, the request in the third message"),
    System("fived-tls", "fived TLS 1.3", 5, sys_fived_tls,
           "implicit TLS (the first byte 0x16) to the same fived, OpenSSL's default suite, "
           "no client certificate and no resumption, through libfive; an open service"),
    System("fived-warm", "fived warm (MULTIPLEX)", 5, sys_fived_warm, WARM_NOTE),
    System("fived-detach", "fived warm, detachable", 5, sys_fived_detach, DETACH_NOTE),
    System("five-L-warm", "five --multiplex -L, warm", 5, sys_five_L_warm, FIVE_L_NOTE),
]


def start_systems(ctx, systems):
    """Starts every available system; returns key -> Recipe."""
    recipes = {}
    for s in systems:
        if s.start is None:
            continue
        r = s.start(ctx)
        if r is not None:
            recipes[s.key] = r
    return recipes


def client_args(recipe):
    args = []
    if recipe.addr:
        args += ["-c", recipe.addr]
    if recipe.pre:
        args += ["-p", recipe.pre]
    if recipe.strip:
        args += ["-s", recipe.strip]
    if recipe.strip_line:
        args += ["-L"]
    if recipe.key:
        args += ["-K", recipe.key]
    if recipe.via:
        args += [recipe.via]
    if recipe.warm:
        args += ["-W", recipe.warm]
    return args


def path_procs(ctx, recipe):
    procs = dict(recipe.procs)
    procs["backend"] = [ctx.shared["backend"]]
    return procs


ROLES = ["server proxy", "client proxy", "backend", "load generator"]


# --- the network ------------------------------------------------------------------


def setup_namespace(r, ns):
    r.netns_add(ns)
    r.sh(["ip", "link", "set", "lo", "up"], ns)
    r.sh(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000",
          "net.ipv4.tcp_tw_reuse=1", "net.core.somaxconn=65535",
          "net.ipv4.tcp_max_syn_backlog=65535", "net.ipv4.tcp_no_metrics_save=1"], ns)


def congestion_control(r, ns):
    rc, out, _ = r.run(["sysctl", "-n", "net.ipv4.tcp_congestion_control"], ns, note=False)
    current = out.strip()
    rc, _, err = r.run(["sysctl", "-w", "net.ipv4.tcp_congestion_control=cubic"], ns,
                       note=False)
    return current, rc == 0, err.strip()


def setup_wan(r, tools, info):
    for ns in (NS_A, NS_B):
        setup_namespace(r, ns)
    dl = r.spawn("delayline", [tools.delayline, "-a", NS_A + ":fb0", "-b", NS_B + ":fb1",
                               "-d", str(WAN_DELAY_MS), "-r"], pin=PIN_CPU,
                 stdout=subprocess.PIPE)
    line = dl.popen.stdout.readline().decode().strip()
    if line != "ready":
        raise RuntimeError("delayline did not start: " + tail(dl.log))
    for ns, dev, here, there in ((NS_A, "fb0", WAN_CLIENT_IP, WAN_SERVER_IP),
                                 (NS_B, "fb1", WAN_SERVER_IP, WAN_CLIENT_IP)):
        r.sh(["ip", "addr", "add", here, "peer", there, "dev", dev], ns)
        r.sh(["ip", "link", "set", dev, "up", "mtu", str(TUN_MTU), "txqueuelen", "10000"], ns)
    info["cc"] = congestion_control(r, NS_A)
    return dl


class DelayStats:
    """Reads the delay line's per-interval reports (SIGUSR1) from its log."""

    def __init__(self, dl):
        self.dl = dl
        self.offset = 0

    def take(self):
        os.kill(self.dl.pid, signal.SIGUSR1)
        time.sleep(0.05)
        with open(self.dl.log, errors="replace") as f:
            f.seek(self.offset)
            text = f.read()
            self.offset = f.tell()
        out = []
        for m in re.finditer(r"(\S+): (\d+) packets, (\d+) bytes, max queue (\d+), late by at "
                             r"most ([\d.]+) ms, ([\d.]+) ms on average", text):
            out.append(dict(dir=m.group(1), packets=int(m.group(2)), max_late=float(m.group(5)),
                            mean_late=float(m.group(6)), max_queue=int(m.group(4))))
        return out


# --- section 1: layer 4 vs layer 5 across 28 ms ----------------------------------


def ttfb_rows(r, tools, ctx, recipe, reps, nbytes, req=None, timeout=20, interval=None):
    args = [tools.benchtool, "ttfb"] + client_args(recipe) + ["-n", str(nbytes), "-r", str(reps),
                                                             "-t", str(timeout)]
    if req is not None:
        args += ["-q", req]
    if interval:
        args += ["-i", str(interval)]
    if recipe.argv:
        args += ["-x", "--"] + recipe.argv
    rc, out, err = r.run(args, ctx.net.client_ns, ctx.pin, timeout=reps * timeout + 60)
    rows = list(csv.DictReader(out.splitlines()))
    if not rows:
        raise RuntimeError("benchtool ttfb gave nothing: " + err)
    return rows


def section_wan(r, tools, cfg, info):
    r.section = "1. layer 4 vs layer 5 across a 28 ms round trip"
    log(r.section)
    dl = setup_wan(r, tools, info)
    stats = DelayStats(dl)
    net = Net("wan", NS_A, NS_B, WAN_SERVER_IP)
    ctx = Ctx(r, tools, net, PIN_CPU)
    start_backend(ctx)
    # the link itself: TCP connects and pings before anything else runs
    check = ttfb_rows(r, tools, ctx, sys_direct(ctx), 50, 1)
    info["wan_connect"] = [float(x["connect_ms"]) for x in check if x["ok"] == "1"]
    stats.take()
    recipes = start_systems(ctx, SYSTEMS_WAN)
    rows, late = [], {}
    t0 = time.monotonic()
    for block in range(0, cfg["wan_reps"], cfg["wan_block"]):
        n = min(cfg["wan_block"], cfg["wan_reps"] - block)
        for s in SYSTEMS_WAN:
            if s.key not in recipes:
                continue
            got = ttfb_rows(r, tools, ctx, recipes[s.key], n, cfg["wan_bytes"])
            for i, row in enumerate(got):
                row.update(system=s.key, rep=block + i)
                rows.append(row)
            for d in stats.take():
                late.setdefault(s.key, []).append(d)
        log("  %d/%d repetitions (%.0f s)" % (block + n, cfg["wan_reps"],
                                               time.monotonic() - t0))
    write_csv("wan_timing.csv", ["system", "rep", "ok", "connect_ms", "first_ms", "b1000_ms",
                                 "last_ms", "error"], rows)
    summary = {}
    for s in SYSTEMS_WAN:
        mine = [x for x in rows if x["system"] == s.key]
        ok = [x for x in mine if x["ok"] == "1"]
        d = dict(n=len(mine), ok=len(ok))
        for col in ("connect_ms", "first_ms", "b1000_ms", "last_ms"):
            vals = [float(x[col]) for x in ok if x[col]]
            d[col] = vals
        lat = late.get(s.key, [])
        d["late_max"] = max([x["max_late"] for x in lat], default=float("nan"))
        pk = sum(x["packets"] for x in lat)
        d["late_mean"] = (sum(x["mean_late"] * x["packets"] for x in lat) / pk) if pk else \
            float("nan")
        summary[s.key] = d
    info["wan"] = summary
    r.stop_all()
    r.netns_del_all()


# --- sections 2 and 3: throughput and session rate on loopback -------------------


def section_loopback(r, tools, cfg, info, pin):
    mode = "pinned" if pin else "unpinned"
    r.section = "2-3. loopback throughput and session rate"
    log("loopback, %s" % mode)
    setup_namespace(r, NS_LO)
    net = Net("lo", NS_LO, NS_LO, "127.0.0.1")
    ctx = Ctx(r, tools, net, pin)
    start_backend(ctx)
    recipes = start_systems(ctx, SYSTEMS_LO)
    tput, rate = [], []
    for rnd in range(cfg["tput_rounds"]):
        for s in SYSTEMS_LO:
            if s.key not in recipes:
                continue
            for streams, per in ((1, cfg["tput_bytes_1"]), (8, cfg["tput_bytes_8"])):
                tput.append(dict(pin=mode, system=s.key, streams=streams, round=rnd,
                                 **measure_tput(r, tools, ctx, recipes[s.key], streams, per)))
        log("  throughput round %d/%d done" % (rnd + 1, cfg["tput_rounds"]))
    for rnd in range(cfg["rate_rounds"]):
        for s in SYSTEMS_LO:
            if s.key not in recipes:
                continue
            rate.append(dict(pin=mode, system=s.key, round=rnd,
                             **measure_rate(r, tools, ctx, recipes[s.key], cfg)))
        log("  session-rate round %d/%d done" % (rnd + 1, cfg["rate_rounds"]))
    if cfg.get("systems_only"):
        r.stop_all()
        r.netns_del_all()
        info.setdefault("tput", []).extend(tput)
        info.setdefault("rate", []).extend(rate)
        return
    # five HOST echo (the command) against direct TCP to an echo server
    r.section = "extra: five HOST echo against direct TCP"
    fc = []
    for name, rec in FIVE_COMMAND_ROWS(tools):
        for row in ttfb_rows(r, tools, ctx, rec, cfg["five_reps"], 1, req="x"):
            row.update(pin=mode, system=name)
            fc.append(row)
    # the USP dialect's flows 1 and 3 against the text dialect and direct TCP
    r.section = "extra: the USP dialect against direct TCP"
    usp = []
    for name, rec in usp_rows(ctx):
        for row in ttfb_rows(r, tools, ctx, rec, cfg["five_reps"], 1):
            row.update(pin=mode, system=name)
            usp.append(row)
    # and one 1 GiB transfer through fived's relay against direct TCP
    big = []
    for rnd in range(cfg["big_rounds"]):
        for key in ("direct", "fived"):
            big.append(dict(pin=mode, system=key, streams=1, round=rnd,
                            **measure_tput(r, tools, ctx, recipes[key], 1, GIB)))
    r.stop_all()
    r.netns_del_all()
    info.setdefault("tput", []).extend(tput)
    info.setdefault("rate", []).extend(rate)
    info.setdefault("five_cmd", []).extend(fc)
    info.setdefault("usp", []).extend(usp)
    info.setdefault("big", []).extend(big)


def FIVE_COMMAND_ROWS(tools):
    """The command against a socket, and two commands for scale: the cost of
    starting any process here (cat, no network at all) and a common
    command-line TCP client (socat) doing the same exchange."""
    return [("direct TCP echo", Recipe(addr="127.0.0.1:%d" % ECHO_PORT)),
            ("five 127.0.0.1 echo", Recipe(argv=[tools.five, "-p", str(FIVED_PORT),
                                                 "127.0.0.1", "echo"])),
            ("cat (process start only, no network)", Recipe(argv=["/bin/cat"])),
            ("socat STDIO TCP:127.0.0.1:ECHO_PORT".replace("ECHO_PORT", str(ECHO_PORT)),
             Recipe(argv=["socat", "STDIO", "TCP:127.0.0.1:%d" % ECHO_PORT]))]


USP_PORT = 65101   # above ip_local_port_range: it starts after the loads
USP_SERVICE = """
[service:benchauth]
backend = tcp:127.0.0.1:{backend}
auth = required
encryption = optional
"""
USP_CONNECT = '{"message":"connect"'


def usp_initialize(app, token=None):
    stream = {"application": app}
    if token:
        stream["token"] = token
    return json.dumps({"message": "initialize", "streams": [stream]},
                      separators=(",", ":")) + "\\n"


def usp_rows(ctx):
    """The USP dialect on a plain connection: flow 1 (an open service, one message each
    way) and flow 3 (a token obtained earlier), beside the text dialect and direct TCP.
    The token comes from `five token` over a sealed session whose key is authorized."""
    key = sealed_server_key(ctx)
    extra = "key_file = %s/fived-sealed.key\nauthorized_clients = %s/authorized_clients\n" % (
        ctx.r.state, ctx.r.state)
    conf = FIVED_CONF.format(ip="127.0.0.1", port=USP_PORT, backend=BACKEND_PORT,
                             extra=extra) + USP_SERVICE.format(backend=BACKEND_PORT)
    p = start_fived(ctx, name="fived-usp", conf=conf, port=USP_PORT)
    rc, out, err = ctx.r.run([ctx.t.five, "--key", key, "-p", str(USP_PORT), "token",
                              "127.0.0.1", "benchauth"], ctx.net.client_ns, ctx.pin)
    if rc != 0 or not out.strip():
        raise RuntimeError("five token: " + err)
    token = out.strip()
    addr = "127.0.0.1:%d" % USP_PORT
    procs = {"server proxy": [p]}
    return [("direct TCP", Recipe(addr="127.0.0.1:%d" % BACKEND_PORT)),
            ("text dialect, open service", Recipe(addr=addr, pre="bench\\r\\n",
                                                  strip="+\\r\\n", procs=procs)),
            ("USP flow 1, open service", Recipe(addr=addr, pre=usp_initialize("bench"),
                                                strip=USP_CONNECT, strip_line=True,
                                                procs=procs)),
            ("USP flow 3, token", Recipe(addr=addr, pre=usp_initialize("benchauth", token),
                                         strip=USP_CONNECT, strip_line=True, procs=procs)),
            ("text dialect, SERVICE TOKEN", Recipe(addr=addr,
                                                   pre="benchauth %s\\r\\n" % token,
                                                   strip="+\\r\\n", procs=procs)),
            ("sealed IK, 0-RTT", Recipe(addr=addr, pre="benchauth\\r\\n", strip="+\\r\\n",
                                        key=key, procs=procs)),
            ("sealed XX, first contact", Recipe(addr=addr, pre="benchauth\\r\\n",
                                                strip="+\\r\\n", via="-X", procs=procs)),
            ("TLS 1.3", Recipe(addr=addr, pre="bench\\r\\n", strip="+\\r\\n", via="-T",
                               procs=procs))]


USP_ROW_NAMES = ["direct TCP", "text dialect, open service", "USP flow 1, open service",
                 "USP flow 3, token", "text dialect, SERVICE TOKEN", "sealed IK, 0-RTT",
                 "sealed XX, first contact", "TLS 1.3"]


def measure_tput(r, tools, ctx, recipe, streams, per_stream):
    procs = path_procs(ctx, recipe)
    before = proc_table()
    cpu0 = {role: cpu_of(ps, before) for role, ps in procs.items()}
    args = [tools.benchtool, "tput"] + client_args(recipe) + ["-n", str(per_stream), "-k",
                                                              str(streams), "-t", "120"]
    faults0 = faults_of(procs.get("server proxy", []), before)
    rc, out, err = r.run(args, ctx.net.client_ns, ctx.pin, timeout=180)
    after = proc_table()
    res = kv(out)
    row = dict(bytes=int(res.get("bytes", 0)), seconds=float(res.get("seconds", "nan")),
               MBps=float(res.get("MBps", "nan")) if rc == 0 else float("nan"),
               failed=res.get("failed", "?"))
    gb = row["bytes"] / 1e9 if row["bytes"] else float("nan")
    row["server_faults_per_GB"] = (faults_of(procs.get("server proxy", []), after) -
                                   faults0) / gb if gb else float("nan")
    for role in ROLES:
        if role == "load generator":
            c = float(res.get("cpu", "nan"))
        elif role in procs:
            c = cpu_of(procs[role], after) - cpu0[role]
        else:
            c = 0.0
        row["cpu_s_per_GB " + role] = c / gb if gb else float("nan")
    if rc != 0:
        log("  tput failed: %s %s" % (out.strip(), err.strip()[-300:]))
    return row


def measure_rate(r, tools, ctx, recipe, cfg):
    procs = path_procs(ctx, recipe)
    before = proc_table()
    cpu0 = {role: cpu_of(ps, before) for role, ps in procs.items()}
    args = [tools.benchtool, "rate"] + client_args(recipe) + [
        "-k", str(cfg["rate_conc"]), "-d", str(cfg["rate_seconds"]), "-m", str(cfg["rate_max"]),
        "-t", "10"]
    rc, out, err = r.run(args, ctx.net.client_ns, ctx.pin, timeout=cfg["rate_seconds"] + 60)
    after = proc_table()
    res = kv(out)
    n = int(res.get("sessions", 0))
    row = dict(sessions=n, failed=int(res.get("failed", 0)),
               seconds=float(res.get("seconds", "nan")), rate=float(res.get("rate", "nan")),
               p50_ms=float(res.get("p50_ms", "nan")), p90_ms=float(res.get("p90_ms", "nan")),
               p99_ms=float(res.get("p99_ms", "nan")))
    for role in ROLES:
        if role == "load generator":
            c = float(res.get("cpu", "nan"))
        elif role in procs:
            c = cpu_of(procs[role], after) - cpu0[role]
        else:
            c = 0.0
        row["cpu_us_per_session " + role] = c / n * 1e6 if n else float("nan")
    # let TIME_WAIT and closing sessions settle before the next system
    time.sleep(0.5)
    return row


# --- where a session's time goes -----------------------------------------------------

# Each sample of perf (CPU time, or a system call's entry) goes to the step of the
# innermost of fived's functions on its stack that one of these names; static names
# that several files use are left out (the step of their caller counts), except those
# whose other copies are off these sessions' path (admin.c, metrics.c, store.c, mux/,
# builtin.c).  libuv's own functions have no symbols here, and libuv reads a socket
# before it calls fived: a stack with none of these names goes by its system call
# (LIBUV_CALLS), else to OTHER_STEP.
SESSION_STEPS = [
    ("accept", r"on_readable|take|shed|session_accept|session_new|note_peer|note_source|make_room|"
               r"reject_now|listener_.*|accept4"),
    ("first read and parse", r"on_client_read|dispatch_client|detect|session_detected|"
                             r"take_input|session_process_input|client_plaintext|text_take|"
                             r"handle_line|line_.*|client_alloc|session_hold_read|early_input|"
                             r"session_note_input|transport_took"),
    ("sealed handshake and records (worker)", r"seal_.*|on_initiation|read_initiation|"
                                             r"noise_.*|open_records|report_opened|"
                                             r"choose_suite|cookie_answer|known_client|"
                                             r"fresh_timestamp|record_.*|aesgcm_.*|"
                                             r"start_transport|next_piece|sealed_.*"),
    ("policy checks", r"command_.*|decide_.*|policy_.*|session_refusal_now|session_set_caller|"
                      r"session_who|who_of|sources_.*|governor_.*|penalty_.*|tokens_.*|"
                      r"earlydata_.*|on_transport_opened|session_start_service|auth_.*|"
                      r"caller_.*|clients_.*|session_audit|auditlog_.*"),
    ("monitor round trips (worker's side)", r"priv_.*|transact.*|read_header|privmsg_.*"),
    ("backend connect", r"on_connected|backend_start|start_tcp|connect_tcp|connect_next|"
                        r"backend_ready|stream_grant|stream_new|backend_init|on_resolved|"
                        r"connect_failed"),
    ("relay setup", r"start_relay|stream_relay|start|on_backend_ready|session_proxy_header|"
                    r"audit_grant|backend_ready_for|begin_splice|splice_pipe_.*|open_end|watch|"
                    r"on_idle_check"),
    ("relay (the echoed byte)", r"on_written|on_read_client|stream_client_data|"
                                r"on_backend_read|forward|pass_on|queue_write|queue_copy|"
                                r"stream_client_write.*|"
                                r"on_client_written|account|pace|chunk_.*|budget_.*|"
                                r"backend_alloc|session_send|fill|drain|pump"),
    ("close", r"session_close|session_free|session_release|session_closed_one|"
              r"session_handle_closed|close_handle|on_connection_closed|stream_close.*|"
              r"stream_free|backend_close|backend_free|on_stream_ended|end_direction|"
              r"on_shutdown|both_done|source_end|destination_end|session_finish.*|"
              r"on_final_shutdown|drop_transport|uv_close|uv__stream_close|uv__finish_close|"
              r"uv__run_closing_handles|stream_reset_backend|close_end|drop_pipe"),
    ("event loop (its wait)", r"epoll_wait|epoll_pwait"),
]
STEP_RES = [(name, re.compile(pat)) for name, pat in SESSION_STEPS]
LIBUV_CALLS = {"getsockopt": "backend connect", "connect": "backend connect",
               "shutdown": "close", "close": "close"}
KERNEL_CALL = re.compile(r"__(?:x64|ia32)_sys_(\w+)")
MONITOR_STEP = "monitor (keys, accounts; its own process)"
OTHER_STEP = "libuv and libc under no step (reads, writes, epoll)"
SESSIONCOST_SECONDS = 3
SESSIONCOST_COUNTED = 300      # sessions one at a time, each system call recorded
SESSIONCOST_BUFFER = 8192      # bytes of stack perf copies per sample, to unwind with DWARF
PERF_START_S = 4.0             # perf attaches to the processes before the load starts


def step_of(symbols, call=None):
    """The step of a stack, innermost frame first (GCC's .part.N and .isra.N dropped);
    call: the system call it made, when known."""
    for sym in symbols:
        name = sym.split("+")[0].split(".")[0]
        m = KERNEL_CALL.fullmatch(name)
        if m and call is None:
            call = m.group(1)
        for step, rx in STEP_RES:
            if rx.fullmatch(name):
                return step
    return LIBUV_CALLS.get(call, OTHER_STEP)


def perf_samples(r, path):
    """perf script of a recording -> [(pid, event, [symbols innermost first])]."""
    rc, out, err = r.run(["perf", "script", "-i", path, "-F", "event,pid,ip,sym",
                          "--no-inline"], note=False, timeout=900)
    samples = []
    for chunk in out.split("\n\n"):
        lines = [x.strip() for x in chunk.strip().splitlines() if x.strip()]
        if not lines:
            continue
        head = lines[0].split()
        syms = [x.split(None, 1)[1] if len(x.split(None, 1)) > 1 else "" for x in lines[1:]]
        samples.append((int(head[0]), head[1].rstrip(":"), syms))
    return samples


def perf_record(r, key, what, pids, events, seconds):
    """perf record of pids for seconds, started PERF_START_S before the caller's load."""
    data = os.path.join(r.state, "perf-%s-%s.data" % (key, what))
    p = r.spawn("perf-%s-%s" % (key, what),
                ["perf", "record", "-q"] + events +
                ["--call-graph", "dwarf,%d" % SESSIONCOST_BUFFER, "-o", data,
                 "-p", ",".join(str(x) for x in pids), "--", "sleep", str(seconds)])
    time.sleep(PERF_START_S)
    return p, data


def session_cost(r, tools, ctx, key, recipe, cfg):
    """One kind of session: CPU per step (perf, cpu-clock), and system calls per step
    (perf, every syscall's entry) over sessions made one at a time."""
    proc = recipe.procs["server proxy"][0]
    pids = sorted(tree(proc_table(), [proc.pid]))
    monitor = {proc.pid} if len(pids) > 1 else set()
    perf, data = perf_record(r, key, "cpu", pids, ["-e", "cpu-clock", "-F", "2000"],
                             SESSIONCOST_SECONDS + 2 * PERF_START_S)
    before = proc_table()
    rc, out, err = r.run([tools.benchtool, "rate"] + client_args(recipe) + [
        "-k", str(cfg["rate_conc"]), "-d", str(SESSIONCOST_SECONDS), "-m", "1000000",
        "-t", "10"], ctx.net.client_ns, ctx.pin, timeout=SESSIONCOST_SECONDS + 60)
    after = proc_table()
    perf.popen.wait()
    sessions = int(kv(out).get("sessions", 0))
    cpu = sum(after[p][1] - before[p][1] for p in pids if p in after and p in before) / CLK_TCK
    cpu_steps = {}
    for pid, _, syms in perf_samples(r, data):
        step = MONITOR_STEP if pid in monitor else step_of(syms)
        cpu_steps[step] = cpu_steps.get(step, 0) + 1
    total = sum(cpu_steps.values()) or 1
    perf, data = perf_record(r, key, "syscalls", pids, ["-e", "syscalls:sys_enter_*"],
                             30 + 2 * PERF_START_S)
    r.run([tools.benchtool, "rate"] + client_args(recipe) + [
        "-k", "1", "-d", "30", "-m", str(SESSIONCOST_COUNTED), "-t", "10"],
        ctx.net.client_ns, ctx.pin, timeout=120)
    r.stop(perf, grace=30)
    calls = {}
    for pid, event, syms in perf_samples(r, data):
        name = event.split("sys_enter_")[-1]
        step = MONITOR_STEP if pid in monitor else step_of(syms, name)
        calls.setdefault(step, {}).setdefault(name, 0)
        calls[step][name] += 1
    # Every session connects to the backend once: that counts the sessions perf saw.
    counted = calls.get("backend connect", {}).get("socket", 0) or 1
    rows = []
    for step in [x for x, _ in SESSION_STEPS] + [OTHER_STEP, MONITOR_STEP]:
        n = cpu_steps.get(step, 0)
        c = calls.get(step, {})
        if not n and not c:
            continue
        rows.append(dict(system=key, step=step, cpu_us=cpu * n / total / sessions * 1e6
                         if sessions else float("nan"), share=n / total,
                         syscalls=sum(c.values()) / counted,
                         which=", ".join("%s %s" % (name, fmt(k / counted, 2)) for name, k in
                                         sorted(c.items(), key=lambda x: -x[1])
                                         if k / counted >= 0.05)))
    return dict(system=key, sessions=sessions, cpu_us=cpu / sessions * 1e6 if sessions else
                float("nan"), samples=total, counted=counted, rows=rows,
                rate=float(kv(out).get("rate", "nan")),
                syscalls=sum(sum(c.values()) for c in calls.values()) / counted)


SESSIONCOST_SYSTEMS = [("fived", "plain session", sys_fived),
                       ("fived-sealed", "sealed session (IK, 0-RTT)", sys_fived_sealed)]
SESSIONCOST_PORT = FIVED_PORT + 20   # + the index of a variant below


def plain_variant(ctx, name, port, extra="", binary=None):
    conf = FIVED_CONF.format(ip=ctx.net.server_ip, port=port, backend=BACKEND_PORT,
                             extra=extra)
    p = start_fived(ctx, name=name, conf=conf, port=port, binary=binary)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, port), pre="bench\\r\\n",
                  strip="+\\r\\n", procs={"server proxy": [p]})


def sealed_variant(ctx, name, port, binary=None):
    p, key = start_fived_sealed(ctx, name, port, binary=binary)
    return Recipe(addr="%s:%d" % (ctx.net.server_ip, port), pre="bench\\r\\n",
                  strip="+\\r\\n", key=key, procs={"server proxy": [p]})


def session_variants(ctx, baseline):
    """(key, label, kind, recipe): fived as built, its listener options, and the
    baseline binary (another build, its defaults) when given."""
    port = SESSIONCOST_PORT
    out = [("plain", "plain", "plain", plain_variant(ctx, "sc-plain", port)),
           ("plain-defer", "plain, defer_accept = 10s", "plain",
            plain_variant(ctx, "sc-defer", port + 1, "defer_accept = 10s\n")),
           ("plain-fastopen", "plain, tcp_fastopen = 256", "plain",
            plain_variant(ctx, "sc-tfo", port + 2, "tcp_fastopen = 256\n")),
           ("sealed", "sealed IK", "sealed", sealed_variant(ctx, "sc-sealed", port + 3))]
    if baseline:
        out += [("plain-before", "plain, baseline binary", "plain",
                 plain_variant(ctx, "sc-plain-before", port + 4, binary=baseline)),
                ("sealed-before", "sealed IK, baseline binary", "sealed",
                 sealed_variant(ctx, "sc-sealed-before", port + 5, binary=baseline))]
    return out


def section_sessioncost(r, tools, cfg, info, baseline=None):
    r.section = "where a session's time goes"
    log("where a session's time goes")
    setup_namespace(r, NS_LO)
    net = Net("lo", NS_LO, NS_LO, "127.0.0.1")
    ctx = Ctx(r, tools, net, PIN_CPU)
    start_backend(ctx)
    # every fived listens before the loads take ephemeral ports
    recipes = [(key, start(ctx)) for key, _, start in SESSIONCOST_SYSTEMS]
    variants = session_variants(ctx, baseline)
    out = []
    for key, recipe in recipes:
        out.append(session_cost(r, tools, ctx, key, recipe, cfg))
        log("  %s: %s us of fived's CPU per session" % (key, fmt(out[-1]["cpu_us"], 0)))
    # before and after, and the listener's options: the same rounds, alternating
    rows = []
    for rnd in range(cfg["rate_rounds"]):
        for key, label, kind, recipe in variants:
            rows.append(dict(variant=key, label=label, kind=kind, round=rnd,
                             **measure_rate(r, tools, ctx, recipe, cfg)))
        log("  variants round %d/%d done" % (rnd + 1, cfg["rate_rounds"]))
    r.stop_all()
    r.netns_del_all()
    info["sessioncost"] = out
    info["variants"] = rows


def report_variants(info):
    rows = []
    by = {}
    for x in info.get("variants", []):
        by.setdefault(x["variant"], []).append(x)
    base = {}
    for key, xs in by.items():
        if xs[0]["kind"] == key:
            base[key] = med([x["rate"] for x in xs])
    for key, xs in by.items():
        rate = med([x["rate"] for x in xs])
        rows.append([xs[0]["label"], fmt(rate, 0), ratio(rate, base.get(xs[0]["kind"])),
                     fmt(med([x["cpu_us_per_session server proxy"] for x in xs]), 0),
                     fmt(med([x["p50_ms"] for x in xs]), 2),
                     "%d/%d" % (sum(x["failed"] for x in xs),
                                sum(x["sessions"] + x["failed"] for x in xs))])
    return ("\nThe same sessions (`benchtool rate`, as in section 3), pinned, %d rounds, every "
            "variant in each round in turn: fived as built with its defaults, with each "
            "listener option, and a baseline binary if one was given (`--baseline`).\n\n"
            % info["cfg"]["rate_rounds"] +
            table(["fived", "sessions/s median", "ratio to the first of its kind",
                   "CPU us/session", "session ms p50", "failed"], rows))


def report_sessioncost(info):
    text = ["## Where a session's time goes\n\n"]
    text.append(
        "fived alone on CPU %s with its load generator and backend (`benchtool rate`, %d "
        "sessions in flight, %d s), sampled by `perf record -e cpu-clock -F 2000 --call-graph "
        "dwarf` (user and kernel time, monitor and worker); each sample goes to the step of "
        "the innermost of fived's functions on its stack (`SESSION_STEPS` in bench.py), and a "
        "step's share of the samples is its share of fived's CPU time (utime+stime from "
        "/proc) per session. System calls: `perf record -e 'syscalls:sys_enter_*'` over %d "
        "sessions one at a time, each call given to a step by its stack in the same way "
        "(counted per backend `socket` call, one a session; calls fewer than 0.05 a session, "
        "such as the loop's timer wakeups, are not listed); "
        "kernel time of a system call counts in the step that made it. Frames of libuv and "
        "libc without symbols, with no function of fived's above them (libuv's reads and "
        "epoll changes), are a row of their own, except system calls that belong to one "
        "step (a connect's getsockopt, shutdown, close).\n\n" % (
            PIN_CPU, info["cfg"]["rate_conc"], SESSIONCOST_SECONDS, SESSIONCOST_COUNTED))
    for res in info["sessioncost"]:
        label = next(lb for k, lb, _ in SESSIONCOST_SYSTEMS if k == res["system"])
        text.append("\n**%s**: %s us of fived's CPU per session (%d sessions, %s/s under "
                    "perf; %d samples), %s system calls per session\n\n" % (
                        label, fmt(res["cpu_us"], 1), res["sessions"], fmt(res["rate"], 0),
                        res["samples"], fmt(res["syscalls"], 1)))
        rows = [[x["step"], fmt(x["cpu_us"], 1), fmt(100 * x["share"], 1),
                 fmt(x["syscalls"], 2), x["which"]] for x in res["rows"]]
        text.append(table(["step", "CPU us/session", "% of fived's CPU",
                           "system calls/session", "which (per session)"], rows))
    if info.get("variants"):
        text.append(report_variants(info))
    return "".join(text)


# --- section 4: memory of idle sessions ---------------------------------------------


# key, label, descriptors the server holds per session
MEMORY_SYSTEMS = [
    ("fived", "fived plain, relayed to a TCP backend", 2),
    ("fived-echo", "fived plain, built-in echo service", 3),  # built-ins run over a socket pair
    ("fived-pre", "fived plain, connections before a request", 1),
    # five --multiplex -L holds the client's side: fived holds one backend socket per stream
    ("fived-mux", "fived plain, idle streams of one MULTIPLEX session", 1),
    ("haproxy", "HAProxy (tcp mode)", 2),
    ("stunnel", "stunnel TLS 1.3 (server side)", 2),
]


def section_memory(r, tools, cfg, info):
    r.section = "4. memory with 10,000 idle sessions"
    log(r.section)
    rows = []
    for key, label, fds in MEMORY_SYSTEMS:
        n = min(cfg["idle_sessions"], (NOFILE - PROXY_FDS_SPARE) // fds)
        setup_namespace(r, NS_LO)
        net = Net("memory", NS_LO, NS_LO, "127.0.0.1")
        ctx = Ctx(r, tools, net, None)
        start_backend(ctx)
        if key.startswith("fived"):
            conf = FIVED_CONF.format(ip="127.0.0.1", port=FIVED_PORT, backend=BACKEND_PORT,
                                     extra="request_timeout = 10m\nidle_timeout = 1h\n")
            start_fived(ctx, conf=conf)
            rec = sys_fived(ctx)
            if key == "fived-echo":
                rec.pre = "echo\\r\\n"
            if key == "fived-mux":
                fl = five_multiplex_forward(ctx, "five-L-multiplex", FIVE_L_PORT, "--plain",
                                            "-p", str(FIVED_PORT), "127.0.0.1", "bench")
                rec = Recipe(addr="127.0.0.1:%d" % FIVE_L_PORT, procs=dict(
                    rec.procs, **{"client proxy": [fl]}))
        elif key == "haproxy":
            rec = sys_haproxy(ctx)
        else:
            rec = sys_stunnel_aes(ctx)
        server = rec.procs["server proxy"]
        time.sleep(0.3)
        rss0 = rss_kib(server)
        client_rss0 = rss_kib(rec.procs.get("client proxy", []))
        t0 = time.monotonic()
        if key == "fived-pre":
            # connections that never send a request, held by a flood client
            args = [tools.benchtool, "flood", "-c", rec.addr, "-M", "idle", "-k", "200",
                    "-m", str(n), "-H", str(n), "-d", "600", "-t", "60"]
            base = fd_count(server[0])
            r.spawn("idle-holder", args, ns=NS_LO)
            deadline = time.monotonic() + 120
            while fd_count(server[0]) < base + n and time.monotonic() < deadline:
                time.sleep(0.2)
            held = fd_count(server[0]) - base
            status = "held=%d" % held
        else:
            args = [tools.benchtool, "idle"] + client_args(rec) + ["-k", str(n), "-C", "200",
                                                                   "-t", "60"]
            holder = r.spawn("idle-holder", args, ns=NS_LO, stdout=subprocess.PIPE,
                             stdin=subprocess.PIPE)
            status = holder.popen.stdout.readline().decode().strip()
            held = int(kv(status).get("held", 0))
        secs = time.monotonic() - t0
        time.sleep(1.0)
        rss1 = rss_kib(server)
        client_rss1 = rss_kib(rec.procs.get("client proxy", []))
        row = dict(system=key, label=label, target=n, sessions=held, rss_before_kib=rss0,
                   rss_after_kib=rss1,
                   bytes_per_session=(rss1 - rss0) * 1024 / held if held else float("nan"),
                   threads=threads_of(server[0]), fds=fd_count(server[0]),
                   client_side_bytes_per_session=((client_rss1 - client_rss0) * 1024 / held)
                   if held and rec.procs.get("client proxy") else float("nan"),
                   setup_seconds=secs, status=status)
        rows.append(row)
        log("  %s: %d sessions, %.0f bytes each" % (key, held, row["bytes_per_session"]))
        r.stop_all()
        r.netns_del_all()
    write_csv("memory.csv", list(rows[0].keys()), rows)
    info["memory"] = rows


# --- section 6: sessions that outlive their connections ---------------------------

RESUME_SECONDS_PER_CUT = 3.0


def cut(r, ns, ip, port):
    """Kills the client's TCP connections to ip:port (ss -K): each side sees its
    connection reset, as when a path breaks and a middlebox says so."""
    r.sh(["ss", "-K", "dst", ip, "dport", "=", ":%d" % port], ns)


def resume_gaps(r, tools, ctx, key, port, cuts):
    """benchtool resume across the 28 ms link, cut every RESUME_SECONDS_PER_CUT
    seconds: every echo round trip, and the cuts' long ones."""
    out = os.path.join(r.state, "resume.csv")
    seconds = RESUME_SECONDS_PER_CUT * (cuts + 1)
    p = r.spawn("resume-client", [tools.benchtool, "resume", "-c", "%s:%d" % (
        ctx.net.server_ip, port), "-K", key, "-W", "echo", "-d", str(seconds), "-t", "60",
        "-o", out], ns=ctx.net.client_ns, pin=ctx.pin)
    for _ in range(cuts):
        time.sleep(RESUME_SECONDS_PER_CUT)
        cut(r, ctx.net.client_ns, ctx.net.server_ip, port)
    rc = p.popen.wait(timeout=seconds + 120)
    rows = [dict(at_ms=float(x["at_ms"]), rtt_ms=float(x["rtt_ms"]))
            for x in csv.DictReader(open(out))]
    typical = med([x["rtt_ms"] for x in rows]) if rows else float("nan")
    # A resume over IK 0-RTT takes about three round trips (TCP, the handshake with
    # ATTACH in it, the echo): anything past two is a cut's pause.
    gaps = [x["rtt_ms"] for x in rows if x["rtt_ms"] > 2 * typical]
    return dict(rc=rc, rounds=len(rows), rtt_ms=typical, gaps_ms=gaps,
                error=tail(p.log, 2) if rc != 0 else "")


def held_memory(r, tools, ctx, server, key, port, n, detachable):
    """fived's RSS per MULTIPLEX session with one stream, n of them held by one
    client; then, for detachable ones, once the client is killed and fived holds
    them detached.  Returns (sessions, bytes attached, bytes detached)."""
    base = rss_kib(server)
    holder = r.spawn("session-holder", [tools.benchtool, "resume", "-c", "%s:%d" % (
        ctx.net.server_ip, port), "-K", key, "-W", "echo", "-k", str(n), "-t", "60"] +
        (["-D"] if detachable else []), ns=ctx.net.client_ns, stdout=subprocess.PIPE)
    held = int(kv(holder.popen.stdout.readline().decode().strip()).get("held", 0))
    time.sleep(1.0)
    attached = rss_kib(server)
    holder.popen.kill()
    holder.popen.wait()
    time.sleep(2.0)
    detached = rss_kib(server)
    per = lambda kib: (kib - base) * 1024 / held if held else float("nan")
    return held, per(attached), per(detached) if detachable else float("nan")


def section_resume(r, tools, cfg, info):
    r.section = "6. sessions that outlive their connections"
    log(r.section)
    setup_wan(r, tools, info)
    net = Net("wan", NS_A, NS_B, WAN_SERVER_IP)
    ctx = Ctx(r, tools, net, PIN_CPU)
    start_backend(ctx)
    port = FIVED_PORT + 2
    server, key = start_fived_sealed(ctx, "fived-sealed", port)
    cold = ttfb_rows(r, tools, ctx, sys_fived_sealed(ctx), 20, 1)
    res = resume_gaps(r, tools, ctx, key, port, cfg["resume_cuts"])
    res["sealed_cold_first_ms"] = med([float(x["first_ms"]) for x in cold if x["ok"] == "1"])
    res["cuts"] = cfg["resume_cuts"]
    # Each count on a fived of its own: memory one run freed would hide the next's.
    n = cfg["detached_sessions"]
    fresh, _ = start_fived_sealed(ctx, "fived-hold", FIVED_PORT + 5)
    held, res["plain_bytes"], _ = held_memory(r, tools, ctx, [fresh], key, FIVED_PORT + 5, n,
                                              False)
    fresh, _ = start_fived_sealed(ctx, "fived-hold-detachable", FIVED_PORT + 6)
    res["sessions"], res["attached_bytes"], res["detached_bytes"] = held_memory(
        r, tools, ctx, [fresh], key, FIVED_PORT + 6, n, True)
    log("  %d cuts: gaps %s ms; a sealed cold session's first byte %.1f ms; %.0f bytes per "
        "detached session" % (res["cuts"], ", ".join("%.1f" % g for g in res["gaps_ms"]),
                              res["sealed_cold_first_ms"], res["detached_bytes"]))
    info["resume"] = res
    r.stop_all()
    r.netns_del_all()


# --- section 7: the shim's cost to a connect ---------------------------------------

SHIM_PORT = FIVE_L_PORT + 1      # five --no-multiplex -L: a session per connection
SHIM_NAME = "bench.shim"


def shim_rows(r, tools, ctx, key, port, reps):
    """benchtool run by `five run`: every session resolves SHIM_NAME (the shim's
    getaddrinfo) and connects (the shim's connect, which opens a sealed session to the
    bench service, waits for the grant and hands the stream over), inside its time."""
    conf = ctx.file("shim.conf", "%s = 127.0.0.1 bench port=%d key=%s\n" % (SHIM_NAME, port,
                                                                          key))
    args = ["env", "FIVE_SHIM_CONFIG=" + conf, tools.five, "run", "--", tools.benchtool,
            "ttfb", "-A", "%s:%d" % (SHIM_NAME, BACKEND_PORT), "-n", "1", "-r", str(reps),
            "-t", "20"]
    rc, out, err = r.run(args, ctx.net.client_ns, ctx.pin, timeout=reps * 20 + 60)
    rows = list(csv.DictReader(out.splitlines()))
    if not rows:
        raise RuntimeError("benchtool ttfb under five run gave nothing: " + err)
    return rows


def section_shim(r, tools, cfg, info):
    """Time to first byte through libfive-shim.so against five -L, on loopback, pinned:
    what a program gets from `five run` against what it gets from a forwarder."""
    r.section = "7. the shim's cost to a connect"
    log(r.section)
    setup_namespace(r, NS_LO)
    net = Net("shim", NS_LO, NS_LO, "127.0.0.1")
    ctx = Ctx(r, tools, net, PIN_CPU)
    start_backend(ctx)
    port = FIVED_PORT + 2
    server, key = start_fived_sealed(ctx, "fived-sealed", port)
    cold = ctx.spawn("five-L-cold", [tools.five, "--no-multiplex", "--key", key, "-p",
                                     str(port), "-L", "127.0.0.1:%d" % SHIM_PORT, "127.0.0.1",
                                     "bench"], "client")
    wait_listen(cold, SHIM_PORT)
    warm = sys_five_L_warm(ctx)
    reps = cfg["five_reps"]
    rows = []
    for name, rec in [("direct TCP", Recipe(addr="127.0.0.1:%d" % BACKEND_PORT)),
                      ("five -L, one warm session", warm),
                      ("five --no-multiplex -L, a session each",
                       Recipe(addr="127.0.0.1:%d" % SHIM_PORT))]:
        for row in ttfb_rows(r, tools, ctx, rec, reps, 1):
            row.update(system=name)
            rows.append(row)
    for row in shim_rows(r, tools, ctx, key, port, reps):
        row.update(system="five run (the shim), a session each")
        rows.append(row)
    info["shim"] = rows
    r.stop_all()
    r.netns_del_all()


SHIM_SYSTEMS = ["direct TCP", "five -L, one warm session", "five --no-multiplex -L, a session each",
                "five run (the shim), a session each"]


def report_shim(info):
    rows, shim = [], info.get("shim", [])
    base = [float(x["first_ms"]) for x in shim if x["system"] == "direct TCP" and x["ok"] == "1"]
    for name in SHIM_SYSTEMS:
        v = [float(x["first_ms"]) for x in shim if x["system"] == name and x["ok"] == "1"]
        n = len([x for x in shim if x["system"] == name])
        if v:
            rows.append([name, "%d/%d" % (len(v), n), fmt(med(v), 3), fmt(pct(v, 90), 3),
                         ratio(med(v), med(base) if base else None)])
    return ("## The shim's cost to a connect\n\n"
            "Time to first byte on loopback, pinned, %d sessions each, to the sealed fived's "
            "authenticated bench service (one byte asked for): from getaddrinfo() of a name "
            "the shim maps, through its connect() (a sealed session opened, granted and "
            "handed over as the program's socket), to the first byte, for benchtool run by "
            "`five run`; from connect() to the first byte for the forwarders `five -L` (its "
            "default: one warm multiplexed session, a stream per connection) and `five "
            "--no-multiplex -L` (a sealed session per connection, as the shim makes), and for "
            "direct TCP to the backend.\n\n" % info["cfg"]["five_reps"] +
            table(["client", "ok", "median ms", "p90 ms", "ratio to direct TCP"], rows))


# --- section 5: fived under attack ------------------------------------------------


# key, description, benchtool flood arguments (None: no flood; "pending": extension point)
ATTACKS = [
    ("none", "no attack", None),
    ("garbage", "1 KiB of random bytes per connection, new connections as fast as they go, "
     "64 at a time, from 1,000 source addresses",
     ["-M", "garbage", "-k", "64", "-m", "1000000", "-B", "127.66", "-S", "1000"]),
    ("idle-one", "connections that send nothing, up to 5,000 held, from one source address",
     ["-M", "idle", "-k", "64", "-m", "200000", "-H", "5000", "-B", "127.67", "-S", "1"]),
    ("idle-many", "connections that send nothing, up to 5,000 held, from 1,000 source "
     "addresses", ["-M", "idle", "-k", "64", "-m", "200000", "-H", "5000", "-B", "127.68",
                   "-S", "1000"]),
    ("longline", "request lines without end (up to 1 MiB each), 64 connections at a time, "
     "from 1,000 source addresses",
     ["-M", "longline", "-k", "64", "-m", "1000000", "-B", "127.69", "-S", "1000"]),
    ("sealed-none", "no attack; the legitimate client is sealed (IK, authorized key, 0-RTT)",
     None),
    ("sealed-forged", "sealed first messages forged with the server's public key (they pass "
     "the MAC; random Noise, a fresh ephemeral each, so fived does the Diffie-Hellman for "
     "nothing), 64 at a time, from 1,000 source addresses; the legitimate client is sealed",
     ["-M", "forged", "-k", "64", "-m", "2000000", "-B", "127.70", "-S", "1000"]),
]

# The sealed rows: fived with a static key and the bench client authorized.  The
# legitimate client's 50 sessions a second from one address would exceed the default
# per-source handshake budget (20/s) on their own; the flood comes from other addresses.
ATTACK_SEALED = """key_file = {state}/fived-sealed.key
authorized_clients = {state}/authorized_clients
handshakes_per_source = 100
"""

ATTACK_CONF = """# fived as deployed: default limits (max_connections 4096, max_per_source 64,
# request_timeout 10s)
[server]
listen = tcp:127.0.0.1:{port}
audit_log = none

[service:bench]
backend = tcp:127.0.0.1:{backend}
"""


def section_attack(r, tools, cfg, info):
    r.section = "5. fived under attack"
    log(r.section)
    rows, raw = [], []
    for key, label, flood in ATTACKS:
        if flood == "pending":
            rows.append(dict(attack=key, label=label, pending=True))
            continue
        setup_namespace(r, NS_LO)
        net = Net("attack", NS_LO, NS_LO, "127.0.0.1")
        ctx = Ctx(r, tools, net, PIN_CPU)
        start_backend(ctx)
        sealed = key.startswith("sealed")
        conf = ATTACK_CONF.format(port=FIVED_PORT, backend=BACKEND_PORT)
        if sealed:
            # The key and authorized_clients first: fived reads them as it starts.
            server_key = sealed_server_key(ctx)
            conf = conf.replace("[service:", ATTACK_SEALED.format(state=r.state) +
                                "\n[service:", 1)
            flood = flood and flood + ["-K", server_key]
        fived = start_fived(ctx, conf=conf)
        rec = sys_fived(ctx)
        if sealed:
            rec.key = server_key
        time.sleep(0.2)
        cpu0, t0 = cpu_of([fived]), time.monotonic()
        attacker = None
        if flood:
            attacker = r.spawn("flood-" + key, [tools.benchtool, "flood", "-c", rec.addr, "-d",
                                                str(cfg["attack_seconds"]), "-t", "30"] + flood,
                               ns=NS_LO, pin=ATTACK_CPU, stdout=subprocess.PIPE)
            time.sleep(1.0)
        legit = ttfb_rows(r, tools, ctx, rec, cfg["attack_legit"], 1, timeout=2, interval=20)
        flood_out = ""
        if attacker:
            left = cfg["attack_seconds"] + 30 - (time.monotonic() - t0)
            try:
                flood_out = attacker.popen.communicate(timeout=max(left, 1))[0].decode()
            except subprocess.TimeoutExpired:
                pass
        wall = time.monotonic() - t0
        cpu = cpu_of([fived]) - cpu0
        ok = [float(x["first_ms"]) for x in legit if x["ok"] == "1"]
        errors = {}
        for x in legit:
            if x["ok"] != "1":
                errors[x["error"]] = errors.get(x["error"], 0) + 1
        for x in legit:
            x.update(attack=key)
            raw.append(x)
        work = [int(m) for m in re.findall(r"work (\d+) bits", open(fived.log).read())]
        row = dict(attack=key, label=label, attempts=len(legit), ok=len(ok),
                   pow_bits_max=max(work, default=0),
                   success_pct=100.0 * len(ok) / len(legit) if legit else float("nan"),
                   p50_ms=med(ok), p99_ms=pct(ok, 99), max_ms=max(ok, default=float("nan")),
                   fived_cpu_pct=100.0 * cpu / wall, wall_s=wall,
                   errors=";".join("%s: %d" % kv_ for kv_ in sorted(errors.items())),
                   flood=flood_out.strip())
        rows.append(row)
        log("  %s: %d/%d ok, p99 %.2f ms, fived CPU %.0f%%" % (
            key, len(ok), len(legit), row["p99_ms"], row["fived_cpu_pct"]))
        r.stop_all()
        r.netns_del_all()
    write_csv("attack_legit.csv", ["attack", "rep", "ok", "connect_ms", "first_ms", "b1000_ms",
                                   "last_ms", "error"], raw)
    info["attack"] = rows


# --- output -----------------------------------------------------------------------


def write_csv(name, columns, rows):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("%.6g" % v if isinstance(v, float) else v) for k, v in row.items()})


def gnuplot(name, script, data):
    os.makedirs(PLOTS, exist_ok=True)
    dat = os.path.join(PLOTS, name + ".dat")
    with open(dat, "w") as f:
        f.write(data)
    gp = os.path.join(PLOTS, name + ".gp")
    with open(gp, "w") as f:
        f.write("set terminal pngcairo size 1100,620 font 'sans,10'\n")
        f.write("set output '%s.png'\n" % name)
        f.write(script.replace("DATA", "'%s.dat'" % name))
    subprocess.run(["gnuplot", name + ".gp"], cwd=PLOTS, check=True)
    return "plots/%s.png" % name


def q(label):
    return '"%s"' % label.replace('"', "'")


BAR_STYLE = """set style data histogram
set style fill solid 0.85 border -1
set grid ytics
set key outside top center horizontal
set xtics rotate by -25 scale 0
set bmargin 10
set rmargin 8
"""


def plots(info):
    out = {}
    wan = info.get("wan")
    if wan:
        lines = []
        for s in SYSTEMS_WAN:
            d = wan[s.key]
            if not d["first_ms"]:
                continue
            lines.append("%s %s" % (q(s.label), " ".join(
                "%.3f %.3f" % (statistics.mean(d[c]), sd(d[c]))
                for c in ("first_ms", "b1000_ms", "last_ms"))))
        out["wan"] = gnuplot("wan_timing", BAR_STYLE + """
set style histogram errorbars gap 1.5 lw 1
set ylabel "ms from connect() (mean, error bar = standard deviation)"
set title "Layer 4 (direct TCP) vs layer 5, 28 ms round trip, pinned to one CPU"
plot DATA using 2:3:xtic(1) title "first byte", \\
     '' using 4:5 title "1,000th byte", \\
     '' using 6:7 title "1,000,000th byte"
""", "\n".join(lines) + "\n")
    tput = info.get("tput")
    if tput:
        lines = []
        for s in SYSTEMS_LO:
            vals = []
            for pin in ("pinned", "unpinned"):
                for streams in (1, 8):
                    v = [x["MBps"] for x in tput if x["system"] == s.key and x["pin"] == pin and
                         x["streams"] == streams and not math.isnan(x["MBps"])]
                    vals.append(med(v) if v else float("nan"))
            if all(math.isnan(v) for v in vals):
                continue
            lines.append("%s %s" % (q(s.label), " ".join("%.1f" % v if not math.isnan(v)
                                                         else "?" for v in vals)))
        out["tput"] = gnuplot("throughput", BAR_STYLE + """
set style histogram clustered gap 1.5
set ylabel "MB/s (median)"
set title "Loopback throughput"
plot DATA using 2:xtic(1) title "1 stream, pinned", '' using 3 title "8 streams, pinned", \\
     '' using 4 title "1 stream, unpinned", '' using 5 title "8 streams, unpinned"
""", "\n".join(lines) + "\n")
    rate = info.get("rate")
    if rate:
        lines = []
        for s in SYSTEMS_LO:
            vals = []
            for pin in ("pinned", "unpinned"):
                v = [x["rate"] for x in rate if x["system"] == s.key and x["pin"] == pin]
                vals.append(med(v) if v else float("nan"))
            if all(math.isnan(v) for v in vals):
                continue
            lines.append("%s %s" % (q(s.label), " ".join("%.1f" % v if not math.isnan(v)
                                                         else "?" for v in vals)))
        out["rate"] = gnuplot("session_rate", BAR_STYLE + """
set style histogram clustered gap 1.5
set logscale y
set ylabel "sessions per second (median, log scale)"
set title "New end-to-end sessions per second on loopback (full handshake, one byte echoed)"
plot DATA using 2:xtic(1) title "pinned", '' using 3 title "unpinned"
""", "\n".join(lines) + "\n")
    mem = info.get("memory")
    if mem:
        lines = ["%s %.0f" % (q(x["label"]), x["bytes_per_session"]) for x in mem
                 if not math.isnan(x["bytes_per_session"])]
        out["memory"] = gnuplot("memory", BAR_STYLE + """
set style histogram clustered gap 1.5
set key off
set ylabel "bytes of RSS per idle session"
set title "Memory per idle session (10,000 sessions)"
plot DATA using 2:xtic(1)
""", "\n".join(lines) + "\n")
    att = [x for x in info.get("attack", []) if not x.get("pending")]
    if att:
        lines = ["%s %.1f %.3f" % (q(x["attack"]), x["success_pct"], x["p99_ms"]
                                   if not math.isnan(x["p99_ms"]) else 0) for x in att]
        out["attack"] = gnuplot("attack", BAR_STYLE + """
set style histogram clustered gap 1.5
set key off
set xtics rotate by -20 scale 0
set multiplot layout 1,2
set title "Legitimate sessions that succeed (%)"
set yrange [0:105]
plot DATA using 2:xtic(1)
set title "p99 time to first byte of legitimate sessions (ms)"
set autoscale y
plot DATA using 3:xtic(1) lc 2
unset multiplot
""", "\n".join(lines) + "\n")
    return out


def versions(r, tools):
    v = {}
    for pkg in ("socat", "stunnel4", "spiped", "openssh-server", "openssh-client", "haproxy",
                "gnuplot-nox", "iproute2", "procps", "util-linux", "python3", "openssl",
                "libssl3", "libuv1", "libsodium23", "libjansson4", "libinih1", "gcc"):
        p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                           text=True)
        v[pkg] = p.stdout.strip() if p.returncode == 0 else "not installed"
    v["fived"] = subprocess.run([tools.fived, "-V"], capture_output=True,
                                text=True).stdout.strip()
    v["five"] = subprocess.run([tools.five, "-V"], capture_output=True,
                               text=True).stdout.strip() or \
        subprocess.run([tools.five, "-V"], capture_output=True, text=True).stderr.strip()
    git = subprocess.run(["git", "-C", tools.repo, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", tools.repo, "status", "--porcelain", "--", "src",
                            "include"], capture_output=True, text=True).stdout.strip()
    v["source"] = "git %s%s" % (git, " with uncommitted changes in src/ or include/"
                                if dirty else "")
    v["ssh"] = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    p = subprocess.run([tools.stunnel, "-version"], capture_output=True, text=True)
    m = re.search(r"stunnel \S+ .*", p.stdout + p.stderr)
    v["stunnel -version"] = m.group(0) if m else "?"
    m = re.search(r"Running\s+with (OpenSSL \S+)", p.stdout + p.stderr)
    v["OpenSSL used by stunnel"] = m.group(1) if m else "?"
    v["haproxy -v"] = subprocess.run(["haproxy", "-v"], capture_output=True,
                                     text=True).stdout.splitlines()[0]
    p = subprocess.run(["spiped", "-v"], capture_output=True, text=True)
    v["spiped -v"] = (p.stdout + p.stderr).strip()
    v["cc"] = subprocess.run(["cc", "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    return v


def machine():
    m = {}
    with open("/proc/cpuinfo") as f:
        names = re.findall(r"model name\s*:\s*(.*)", f.read())
    m["CPU model"] = names[0] if names else "?"
    m["CPUs"] = str(os.cpu_count())
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    for key in ("Hypervisor vendor", "Virtualization type", "L3 cache", "CPU MHz",
                "Model name", "Thread(s) per core"):
        mm = re.search(r"^%s:\s*(.*)$" % re.escape(key), lscpu, re.M)
        if mm:
            m[key] = mm.group(1).strip()
    m["kernel"] = platform.release() + " " + platform.version()
    with open("/proc/meminfo") as f:
        mm = re.search(r"MemTotal:\s*(\d+)", f.read())
    m["memory"] = "%.1f GiB" % (int(mm.group(1)) / 1048576) if mm else "?"
    with open("/etc/os-release") as f:
        mm = re.search(r'PRETTY_NAME="(.*)"', f.read())
    m["distribution"] = mm.group(1) if mm else "?"
    return m


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out) + "\n"


def label_of(systems, key):
    for s in systems:
        if s.key == key:
            return s.label
    return key


def report_wan(info, pics):
    wan = info["wan"]
    base = wan["direct"]
    conn = info.get("wan_connect", [])
    cc = info.get("cc", ("?", False, ""))
    late_max = max((d["late_max"] for d in wan.values() if not math.isnan(d["late_max"])),
                   default=float("nan"))
    late_means = [d["late_mean"] for d in wan.values() if not math.isnan(d["late_mean"])]
    late_mean = statistics.mean(late_means) if late_means else float("nan")
    text = ["## 1. Layer 4 vs layer 5 across a 28 ms round trip\n\n"]
    text.append(
        "Two network namespaces (`%s`, client, %s; `%s`, server, %s) joined by a point-to-point "
        "TUN link through `bench/delayline`, which holds every IP packet %d ms in each direction "
        "(first in, first out, no loss). The kernel here has no `netem` qdisc, hence the "
        "delay line. Every process (delay line included, at SCHED_FIFO) is pinned to CPU %s. "
        "The backend (`benchtool serve`) answers at once; it runs in the server namespace, and "
        "layer-5 servers reach it over the server's loopback.\n\n" % (
            NS_A, WAN_CLIENT_IP, NS_B, WAN_SERVER_IP, WAN_DELAY_MS, PIN_CPU))
    text.append(
        "**The link, checked:** a TCP connect() across it took %s ms (median of %d; p90 %s ms, "
        "min %s ms). The delay line was late (beyond its %d ms) by at most %s ms over all "
        "runs and by %s ms on average per packet (per system in the last column below; the "
        "worst cases come while a burst of a 1 MB transfer or an ssh key exchange has the "
        "one CPU).\n\n" % (
            fmt(med(conn), 2), len(conn), fmt(pct(conn, 90), 2), fmt(min(conn, default=float(
                "nan")), 2), WAN_DELAY_MS, fmt(late_max, 2), fmt(late_mean, 3)))
    text.append(
        "**Congestion control:** the namespaces use `%s`. It is the host's choice and cannot "
        "be changed inside a namespace (`sysctl -w net.ipv4.tcp_congestion_control=cubic` "
        "there: %s). `tcp_no_metrics_save = 1` so that no run inherits the previous one's "
        "window.\n\n" % (cc[0], "refused, " + cc[2] if not cc[1] else "accepted"))
    text.append(
        "**Definitions.** For each repetition the client (`benchtool ttfb`) takes a monotonic "
        "time t0 just before its connect() call (for a system reached through a command, "
        "`ssh -W` or `five`, just before fork()), and as soon as the connection is up sends "
        "at once, in one write, the session-layer preamble if any (`bench\\r\\n` for fived) "
        "followed by the request `G 1000000\\n`; the backend answers with 1,000,000 bytes. "
        "*Time to first byte* is from t0 to the return of the read() that delivers the first "
        "byte of the backend's answer (fived's own `+\\r\\n` reply is not part of the "
        "answer); the 1,000th and 1,000,000th byte times are the reads that complete those "
        "counts in the same transfer. %d repetitions per system, interleaved in blocks of %d "
        "so that every system sees the same conditions. Bars: mean with standard deviation; "
        "tables: median, p90 and ratio of medians to direct TCP.\n\n" % (
            info["cfg"]["wan_reps"], info["cfg"]["wan_block"]))
    rows = []
    for s in SYSTEMS_WAN:
        d = wan.get(s.key)
        if s.note == PENDING or d is None or not d["first_ms"]:
            rows.append([s.label, s.layer, PENDING if s.note == PENDING else "failed"] +
                        [""] * 10)
            continue
        row = [s.label, s.layer, "%d/%d" % (d["ok"], d["n"])]
        for col in ("first_ms", "b1000_ms", "last_ms"):
            v = d[col]
            row += [fmt(med(v)), fmt(pct(v, 90)), fmt(sd(v)), ratio(med(v), med(base[col]))]
        row.append("%s / %s" % (fmt(d["late_max"], 2), fmt(d["late_mean"], 3)))
        rows.append(row)
    text.append(table(["system", "layer", "ok", "1st byte median ms", "p90", "sd", "ratio",
                       "1,000th median ms", "p90", "sd", "ratio", "1,000,000th median ms", "p90",
                       "sd", "ratio", "delay line late max / mean ms"][:16], rows))
    text.append("\n![layer 4 vs layer 5](%s)\n" % pics.get("wan", ""))
    rtt = 2 * WAN_DELAY_MS
    text.append("\nIn round trips of %d ms (median first byte / %d):\n\n" % (rtt, rtt))
    for s in SYSTEMS_WAN:
        d = wan.get(s.key)
        if d and d["first_ms"]:
            text.append("- %s: %.2f round trips to the first byte\n" % (
                s.label, med(d["first_ms"]) / rtt))
    notes = [s for s in SYSTEMS_WAN if s.note and s.note != PENDING]
    text.append("\nNotes on the systems:\n\n")
    for s in notes:
        text.append("- %s: %s.\n" % (s.label, s.note))
    text.append("- %s: %s; a clearly marked function in `bench/bench.py` (`%s`) is where "
                "it plugs in.\n" % (", ".join(s.label for s in SYSTEMS_WAN
                                               if s.note == PENDING), PENDING,
                                     "`, `".join(s.start.__name__ for s in SYSTEMS_WAN
                                                 if s.note == PENDING)))
    return "".join(text)


def tput_stats(tput, key, pin, streams):
    v = [x for x in tput if x["system"] == key and x["pin"] == pin and x["streams"] == streams
         and not math.isnan(x["MBps"])]
    if not v:
        return None
    mbps = [x["MBps"] for x in v]
    secs = [x["seconds"] for x in v]
    d = dict(n=len(v), median=med(mbps), p90=(v[0]["bytes"] / MB) / pct(secs, 90),
             faults=med([x.get("server_faults_per_GB", float("nan")) for x in v]))
    for role in ROLES:
        d[role] = med([x["cpu_s_per_GB " + role] for x in v])
    d["total"] = sum(d[role] for role in ROLES)
    return d


def report_tput(info, pics):
    tput = info["tput"]
    cfg = info["cfg"]
    text = ["## 2. Throughput on loopback\n\n"]
    text.append(
        "All processes in the namespace `%s` on 127.0.0.1. One stream moves %d MiB from the "
        "backend to the client; 8 parallel streams move %d MiB each. %d rounds, systems "
        "interleaved. MB/s = 10^6 bytes per second of payload, from the first connect() to "
        "the last byte. `p90` is the rate of the 90th-percentile (slow) transfer time. CPU is "
        "utime+stime from /proc/PID/stat (children and threads included) of every process on "
        "the path, before and after, in CPU seconds per GB (10^9 bytes) moved; the load "
        "generator is `benchtool tput` (getrusage). Page faults: minor faults (minflt + "
        "cminflt) of the server-side processes per GB. Pinned: every process on CPU %s.\n\n" % (
            NS_LO, cfg["tput_bytes_1"] // MIB, cfg["tput_bytes_8"] // MIB,
            cfg["tput_rounds"], PIN_CPU))
    for pin in ("pinned", "unpinned"):
        for streams in (1, 8):
            base = tput_stats(tput, "direct", pin, streams)
            rows = []
            for s in SYSTEMS_LO:
                d = tput_stats(tput, s.key, pin, streams)
                if d is None:
                    rows.append([s.label, s.layer, PENDING if s.note == PENDING else "failed"]
                                + [""] * 9)
                    continue
                rows.append([s.label, s.layer, fmt(d["median"], 0), fmt(d["p90"], 0),
                             ratio(d["median"], base["median"] if base else None)] +
                            [fmt(d[role], 2) for role in ROLES] + [fmt(d["total"], 2),
                                                                   fmt(d["faults"], 0)])
            text.append("\n**%s, %d stream%s**\n\n" % (pin.capitalize(), streams,
                                                       "s" if streams > 1 else ""))
            text.append(table(["system", "layer", "MB/s median", "p90", "ratio to direct",
                               "CPU s/GB server side", "client side", "backend",
                               "load generator", "total", "server-side page faults/GB"],
                              rows))
    text.append("\n![throughput](%s)\n" % pics.get("tput", ""))
    notes = [s for s in SYSTEMS_LO if s.note and s.note != PENDING]
    if notes:
        text.append("\nNotes on the systems:\n\n")
        for s in notes:
            text.append("- %s: %s.\n" % (s.label, s.note))
    return "".join(text)


def rate_stats(rate, key, pin):
    v = [x for x in rate if x["system"] == key and x["pin"] == pin]
    if not v:
        return None
    d = dict(n=len(v), median=med([x["rate"] for x in v]), p90=pct([x["rate"] for x in v], 10),
             sessions=sum(x["sessions"] for x in v), failed=sum(x["failed"] for x in v),
             lat50=med([x["p50_ms"] for x in v]), lat90=med([x["p90_ms"] for x in v]))
    for role in ROLES:
        d[role] = med([x["cpu_us_per_session " + role] for x in v])
    return d


def report_rate(info, pics):
    rate = info["rate"]
    cfg = info["cfg"]
    text = ["## 3. Session rate on loopback\n\n"]
    text.append(
        "`benchtool rate` keeps %d sessions in flight; each is a new TCP connection to the "
        "system's entry point, the full handshake of that system (TLS 1.3 without resumption "
        "for stunnel, spiped's key exchange, a new channel inside the running `ssh -L`, the "
        "service line for fived), then `E\\n` and one byte that the backend echoes; the "
        "session ends when that byte is back. Each round runs %g s or %d sessions, "
        "whichever comes first; %d rounds. `p90` is the 10th-percentile rate over rounds "
        "(the slow side). CPU per session in microseconds (server side = the server proxy "
        "and its children). Latency: median over rounds of each round's per-session p50/p90.\n\n"
        % (cfg["rate_conc"], cfg["rate_seconds"], cfg["rate_max"], cfg["rate_rounds"]))
    for pin in ("pinned", "unpinned"):
        base = rate_stats(rate, "direct", pin)
        rows = []
        for s in SYSTEMS_LO:
            d = rate_stats(rate, s.key, pin)
            if d is None:
                rows.append([s.label, s.layer, PENDING if s.note == PENDING else "failed"] +
                            [""] * 9)
                continue
            rows.append([s.label, s.layer, fmt(d["median"], 0), fmt(d["p90"], 0),
                         ratio(d["median"], base["median"] if base else None),
                         "%d/%d" % (d["failed"], d["sessions"] + d["failed"]),
                         fmt(d["lat50"], 2), fmt(d["lat90"], 2)] +
                        [fmt(d[role], 0) for role in ROLES[:3]])
        text.append("\n**%s**\n\n" % pin.capitalize())
        text.append(table(["system", "layer", "sessions/s median", "p90", "ratio to direct",
                           "failed", "session ms p50", "p90", "CPU us/session server side",
                           "client side", "backend"], rows))
    text.append("\n![session rate](%s)\n" % pics.get("rate", ""))
    return "".join(text)


# The issue's plain goals: (what, pin, streams or None for sessions/s, fived's systems, peers).
PEER_GOALS = [
    ("plain relay, 1 stream", "pinned", 1, ["haproxy-splice-auto", "haproxy-splice"]),
    ("plain relay, 1 stream", "unpinned", 1, ["haproxy-splice-auto", "haproxy-splice"]),
    ("plain relay, 8 streams", "unpinned", 8, ["haproxy-nbthread", "haproxy"]),
    ("plain sessions per second", "pinned", None, ["haproxy", "haproxy-nbthread"]),
    ("plain sessions per second", "unpinned", None, ["haproxy", "haproxy-nbthread"]),
]
FIVED_PLAIN = ["fived", "fived-splice", "fived-workers"]


def report_peers(info):
    """fived plain, splice off and on, as a ratio to each HAProxy peer of the same run."""
    tput, rate = info.get("tput", []), info.get("rate", [])
    rows = []
    for what, pin, streams, peers in PEER_GOALS:
        for key in FIVED_PLAIN:
            if streams is None:
                mine = rate_stats(rate, key, pin)
            else:
                mine = tput_stats(tput, key, pin, streams)
            if mine is None:
                continue
            cells = []
            for peer in peers:
                d = rate_stats(rate, peer, pin) if streams is None else \
                    tput_stats(tput, peer, pin, streams)
                cells.append("%s: %s (%s)" % (label_of(SYSTEMS_LO, peer),
                                              ratio(mine["median"], d["median"]) if d else "-",
                                              fmt(d["median"], 0) if d else "failed"))
            rows.append([what, pin, label_of(SYSTEMS_LO, key), fmt(mine["median"], 0),
                         fmt(mine["server proxy"], 2 if streams else 0)] + cells)
    if not rows:
        return ""
    return ("## Against HAProxy, plain\n\nfived without encryption, its relay copying "
            "(`splice = no`) and moved by the kernel (`splice = yes`), as a ratio to the "
            "HAProxy peers measured in the same rounds (their MB/s or sessions/s in "
            "brackets); CPU is fived's, s/GB or us/session.\n\n" +
            table(["measurement", "", "fived", "MB/s or sessions/s", "CPU", "ratio to",
                   "ratio to"], rows))


def report_memory(info, pics):
    mem = info["memory"]
    text = ["## 4. Memory with %d idle sessions\n\n" % info["cfg"]["idle_sessions"]]
    text.append(
        "Each idle session is fully established end to end (`benchtool idle`: connect, "
        "the system's handshake, `E\\n` and one byte echoed by the backend) and then left "
        "idle; for \"before a request\" the connections send nothing at all. RSS is VmRSS of "
        "the server-side process (and its children), read before and one second after the "
        "sessions are up; kernel socket buffers are not in RSS. fived runs with "
        "`max_connections` and `max_per_source` at 100000, `request_timeout = 10m`; HAProxy "
        "with `maxconn` as high as the descriptor limit allows; stunnel with its defaults (a "
        "thread per connection). Unpinned. `bench/run.sh` raises RLIMIT_NOFILE as far as it "
        "may: here to %d%s. A proxy holds two descriptors per relayed session, so where %d "
        "sessions do not fit the count is the most that does (column \"idle sessions\"); "
        "connections before a request need one, fived's built-in echo service three (it "
        "runs over an in-process socket pair).\n\n" % (
            NOFILE, " (the hard limit: the bench runs without CAP_SYS_RESOURCE, so it cannot "
            "raise it)" if not has_cap(CAP_SYS_RESOURCE) else "",
            info["cfg"]["idle_sessions"]))
    rows = []
    for x in mem:
        rows.append([x["label"], x["sessions"], fmt(x["rss_before_kib"] / 1024, 1),
                     fmt(x["rss_after_kib"] / 1024, 1), fmt(x["bytes_per_session"], 0),
                     x["threads"], fmt(x["client_side_bytes_per_session"], 0)])
    fived = next((x for x in mem if x["system"] == "fived"), None)
    text.append(table(["system", "idle sessions", "RSS before MiB", "RSS after MiB",
                       "bytes per session", "threads", "client-side proxy bytes/session"],
                      rows))
    if fived:
        for x in mem:
            if x is not fived and not math.isnan(x["bytes_per_session"]) and \
                    fived["bytes_per_session"] > 0:
                text.append("- %s: %.2f times fived's bytes per relayed session\n" % (
                    x["label"], x["bytes_per_session"] / fived["bytes_per_session"]))
    text.append("\n![memory](%s)\n" % pics.get("memory", ""))
    return "".join(text)


def report_attack(info, pics):
    att = info["attack"]
    cfg = info["cfg"]
    text = ["## 5. fived under attack\n\n"]
    text.append(
        "fived plain with its default limits (`max_connections` 4096, `max_per_source` 64, "
        "`request_timeout` 10 s), fived, the backend and the legitimate client pinned to "
        "CPU %s, the flood (`benchtool flood`) on CPU %s as if from another machine, from "
        "source addresses of its own (127.66-69.x.y) while legitimate clients come from "
        "127.0.0.1. Each flood runs %d s and is bounded in connections; one second into it, "
        "the legitimate client makes %d sessions one after another, 20 ms apart, each a new "
        "connection with the service line and a 1-byte request, 2 s timeout. Success = the "
        "byte arrived; a refusal from fived counts as failure. fived's CPU is utime+stime over "
        "the whole window, in percent of one CPU.\n\n" % (
            PIN_CPU, ATTACK_CPU, cfg["attack_seconds"], cfg["attack_legit"]))
    rows = []
    for x in att:
        if x.get("pending"):
            rows.append(["%s: %s" % (x["attack"], x["label"]), PENDING, "", "", "", "", "", "",
                         ""])
            continue
        rows.append(["%s: %s" % (x["attack"], x["label"]), "%d/%d" % (x["ok"], x["attempts"]),
                     fmt(x["success_pct"], 1),
                     fmt(x["p50_ms"], 2), fmt(x["p99_ms"], 2), fmt(x["fived_cpu_pct"], 0),
                     str(x.get("pow_bits_max", 0)), x["errors"] or "-", "`%s`" % x["flood"] if x["flood"] else "-"])
    text.append(table(["flood", "legitimate ok", "success %", "TTFB p50 ms", "TTFB p99 ms",
                       "fived CPU %", "proof of work reached, bits", "failures",
                       "flood client's count"], rows))
    text.append(
        "\nThe sealed rows run fived with a static key and the legitimate client's key in "
        "`authorized_clients`, otherwise the same defaults (`cookie = auto`, "
        "`handshake_cpu_high` 50 %, `handshake_cpu_low` 25 %, proof of work 8 to 22 bits) "
        "but `handshakes_per_source` 100/s instead of 20/s: the legitimate client's own 50 "
        "sessions a second from one address would exceed the default budget (a flood from "
        "one address is dropped by it, before any Diffie-Hellman). The forged first messages cost fived one keyed "
        "BLAKE2b each for the MAC, then, while it is not loaded, the X25519 operations; once "
        "loaded it answers them with cookies instead (stateless), and the column says how "
        "much work it ended up demanding. fived's own log, with the load, the demand and "
        "what it dropped, is in the run's logs.\n")
    text.append("\n![attack](%s)\n" % pics.get("attack", ""))
    return "".join(text)


def report_extra(info):
    text = ["## `five HOST echo` and the plain relay against direct TCP\n\n"]
    fc = info.get("five_cmd", [])
    text.append(
        "Time to first byte of the command `five -p %d 127.0.0.1 echo` (fived's built-in echo "
        "service), from fork() to the first byte on its standard output after one byte was "
        "written to its standard input, against a direct TCP connection to an echo server "
        "(connect(), send one byte, first byte back), %d each, on loopback. For scale, two "
        "more commands timed the same way: `cat` (what starting any process costs here, no "
        "network) and `socat` as a command-line TCP client to the same echo server.\n\n" % (
            FIVED_PORT, info["cfg"]["five_reps"]))
    rows = []
    for pin in ("pinned", "unpinned"):
        base = [float(x["first_ms"]) for x in fc if x["pin"] == pin and
                x["system"] == "direct TCP echo" and x["ok"] == "1"]
        for name in [n for n, _ in FIVE_COMMAND_ROWS_NAMES()]:
            v = [float(x["first_ms"]) for x in fc if x["pin"] == pin and x["system"] == name
                 and x["ok"] == "1"]
            n = len([x for x in fc if x["pin"] == pin and x["system"] == name])
            if v:
                rows.append([pin, name, "%d/%d" % (len(v), n), fmt(med(v), 3),
                             fmt(pct(v, 90), 3), ratio(med(v), med(base) if base else None)])
    text.append(table(["", "client", "ok", "median ms", "p90 ms", "ratio to direct TCP"],
                      rows))
    big = info.get("big", [])
    rows = []
    for pin in ("pinned", "unpinned"):
        b, f = tput_stats(big, "direct", pin, 1), tput_stats(big, "fived", pin, 1)
        if b and f:
            rows.append([pin, b["n"], fmt(b["median"], 0), fmt(f["median"], 0),
                         ratio(f["median"], b["median"]), fmt(f["server proxy"], 2),
                         fmt(f["total"], 2), fmt(b["total"], 2)])
    text.append("\nOne 1 GiB transfer (backend to client, one stream) through fived's plain "
                "relay against direct TCP, median of the transfers:\n\n")
    text.append(table(["", "transfers each", "direct MB/s", "through fived MB/s", "ratio",
                       "fived CPU s/GB", "path CPU s/GB via fived", "path CPU s/GB direct"],
                      rows))
    return "".join(text)


def report_usp(info):
    rows_in = info.get("usp", [])
    text = ["## Dialects, tokens and handshakes: time to first byte on loopback\n\n"
            "Connections to one fived (`fived-usp`), %d each: a new TCP connection, the "
            "session layer's request and the backend's request `G 1` in one write, to the "
            "first byte of the backend's answer (fived's own reply, `+` or USP's `connect` "
            "message, not counted). USP flow 1 asks for an open service; flow 3 presents a "
            "token (`v4.public`, obtained before the run with `five token` over a sealed "
            "session) for a service with `auth = required`: fived verifies its Ed25519 "
            "signature and claims on every connection. The text dialect's `SERVICE TOKEN` "
            "does the same in a line. The last three rows go through libfive in benchtool: "
            "the sealed handshake with the client's key authorized (IK, the request in the "
            "first message, cold: no state kept between sessions), the same as a first "
            "contact every time (XX, the request in the third message), and implicit TLS "
            "1.3 without a client certificate to an open service.\n\n"
            % info["cfg"]["five_reps"]]
    rows = []
    for pin in ("pinned", "unpinned"):
        base = [float(x["first_ms"]) for x in rows_in if x["pin"] == pin and
                x["system"] == "direct TCP" and x["ok"] == "1"]
        for name in USP_ROW_NAMES:
            v = [float(x["first_ms"]) for x in rows_in if x["pin"] == pin and
                 x["system"] == name and x["ok"] == "1"]
            n = len([x for x in rows_in if x["pin"] == pin and x["system"] == name])
            if n:
                rows.append([pin, name, "%d/%d" % (len(v), n), fmt(med(v), 3) if v else "-",
                             fmt(pct(v, 90), 3) if v else "-",
                             ratio(med(v), med(base)) if v and base else "-"])
    text.append(table(["", "client", "ok", "median ms", "p90 ms", "ratio to direct TCP"],
                      rows))
    return "".join(text)


def FIVE_COMMAND_ROWS_NAMES():
    return FIVE_COMMAND_ROWS(Tools("/nonexistent", "/nonexistent", "/nonexistent"))


def headline(info):
    out = []
    wan = info.get("wan")
    if wan and wan["direct"]["first_ms"] and wan["fived"]["first_ms"]:
        b = wan["direct"]
        f = wan["fived"]
        out.append("- 28 ms round trip, time to first byte: fived plain cold %s ms vs direct "
                   "TCP %s ms (ratio %s); 1,000,000th byte ratio %s." % (
                       fmt(med(f["first_ms"])), fmt(med(b["first_ms"])),
                       ratio(med(f["first_ms"]), med(b["first_ms"])),
                       ratio(med(f["last_ms"]), med(b["last_ms"]))))
        others = []
        for key in ("stunnel", "spiped", "ssh-W", "ssh-L", "five"):
            d = wan.get(key)
            if d and d["first_ms"]:
                others.append("%s %s" % (label_of(SYSTEMS_WAN, key),
                                         ratio(med(d["first_ms"]), med(b["first_ms"]))))
        out.append("- Same, other layer-5 choices (first-byte ratio to direct): " +
                   ", ".join(others) + ".")
        w, s = wan.get("fived-warm"), wan.get("ssh-L")
        if w and w["first_ms"]:
            out.append("- Same, a new stream on a warm MULTIPLEX session: first byte ratio %s, "
                       "1,000,000th byte ratio %s (ssh -L through an existing connection: %s "
                       "and %s)." % (
                           ratio(med(w["first_ms"]), med(b["first_ms"])),
                           ratio(med(w["last_ms"]), med(b["last_ms"])),
                           ratio(med(s["first_ms"]), med(b["first_ms"])) if s else "-",
                           ratio(med(s["last_ms"]), med(b["last_ms"])) if s else "-"))
    tput = info.get("tput")
    if tput:
        for streams in (1, 8):
            b, f = tput_stats(tput, "direct", "pinned", streams), \
                tput_stats(tput, "fived", "pinned", streams)
            if b and f:
                out.append("- Loopback throughput, %d stream%s, pinned: fived %s MB/s vs direct "
                           "%s MB/s (ratio %s), fived %s CPU s/GB." % (
                               streams, "s" if streams > 1 else "", fmt(f["median"], 0),
                               fmt(b["median"], 0), ratio(f["median"], b["median"]),
                               fmt(f["server proxy"], 2)))
    if tput:
        for streams in (1, 8):
            w, s = tput_stats(tput, "fived-warm", "pinned", streams), \
                tput_stats(tput, "fived-sealed", "pinned", streams)
            if w and s:
                out.append("- Loopback, %d stream%s on one warm MULTIPLEX session (libfive), "
                           "pinned: %s MB/s vs %s MB/s for as many sealed sessions of their "
                           "own (ratio %s)." % (
                               streams, "s" if streams > 1 else "", fmt(w["median"], 0),
                               fmt(s["median"], 0), ratio(w["median"], s["median"])))
    if tput:
        d, w = tput_stats(tput, "fived-detach", "pinned", 1), \
            tput_stats(tput, "fived-warm", "pinned", 1)
        if d and w:
            out.append("- Loopback, 1 stream on a detachable MULTIPLEX session, pinned: %s MB/s "
                       "vs %s MB/s on one that is not (ratio %s; goal: within 5 %%)." % (
                           fmt(d["median"], 0), fmt(w["median"], 0),
                           ratio(d["median"], w["median"])))
    res = info.get("resume")
    if res:
        out.append("- 28 ms round trip, a detachable session cut %d times: the echo paused "
                   "%s ms at each cut (median; a sealed session's first byte from cold: %s "
                   "ms, ratio %s); bytes lost or repeated: %s." % (
                       res["cuts"], fmt(med(res["gaps_ms"])) if res["gaps_ms"] else "-",
                       fmt(res["sealed_cold_first_ms"]),
                       ratio(med(res["gaps_ms"]), res["sealed_cold_first_ms"])
                       if res["gaps_ms"] else "-", "none" if res["rc"] == 0 else
                       "the run failed (%s)" % res["error"]))
        out.append("- Memory: %s bytes of fived RSS per detached session (%d sealed MULTIPLEX "
                   "sessions, one stream each; %s bytes each while attached, %s for sessions "
                   "that are not detachable)." % (
                       fmt(res["detached_bytes"], 0), res["sessions"],
                       fmt(res["attached_bytes"], 0), fmt(res["plain_bytes"], 0)))
    rate = info.get("rate")
    if rate:
        w, f = rate_stats(rate, "fived-warm", "pinned"), rate_stats(rate, "fived", "pinned")
        if w and f:
            out.append("- New streams on a warm MULTIPLEX session, pinned: %s/s vs %s/s plain "
                       "cold sessions (ratio %s)." % (fmt(w["median"], 0), fmt(f["median"], 0),
                                                      ratio(w["median"], f["median"])))
    if rate:
        b, f = rate_stats(rate, "direct", "pinned"), rate_stats(rate, "fived", "pinned")
        if b and f:
            out.append("- Session rate, pinned: fived %s/s vs direct %s/s (ratio %s), %s us "
                       "of fived CPU per session." % (fmt(f["median"], 0), fmt(b["median"], 0),
                                                      ratio(f["median"], b["median"]),
                                                      fmt(f["server proxy"], 0)))
    if rate:
        parts = []
        for key in ("fived-sealed", "fived-sealed-workers", "fived-xx", "fived-tls",
                    "stunnel-aes", "spiped"):
            d = rate_stats(rate, key, "pinned")
            if d:
                parts.append("%s %s/s (%s us of its server's CPU each)" % (
                    label_of(SYSTEMS_LO, key), fmt(d["median"], 0), fmt(d["server proxy"], 0)))
        if parts:
            out.append("- Sessions with a full handshake, pinned: " + ", ".join(parts) + ".")
    mem = info.get("memory")
    if mem:
        f = next((x for x in mem if x["system"] == "fived"), None)
        if f:
            out.append("- Memory: %s bytes of fived RSS per idle relayed session (%d sessions)."
                       % (fmt(f["bytes_per_session"], 0), f["sessions"]))
        m = next((x for x in mem if x["system"] == "fived-mux"), None)
        if m:
            out.append("- Memory: %s bytes of fived RSS per idle stream of one MULTIPLEX "
                       "session (%d streams)." % (fmt(m["bytes_per_session"], 0), m["sessions"]))
    att = info.get("attack")
    if att:
        parts = ["%s %s%%" % (x["attack"], fmt(x["success_pct"], 0)) for x in att
                 if not x.get("pending")]
        out.append("- Under attack, legitimate success: " + ", ".join(parts) + ".")
    fc = info.get("five_cmd", [])
    d = [float(x["first_ms"]) for x in fc if x["pin"] == "pinned" and
         x["system"] == "direct TCP echo" and x["ok"] == "1"]
    f = [float(x["first_ms"]) for x in fc if x["pin"] == "pinned" and
         x["system"] == "five 127.0.0.1 echo" and x["ok"] == "1"]
    c = [float(x["first_ms"]) for x in fc if x["pin"] == "pinned" and
         x["system"].startswith("cat ") and x["ok"] == "1"]
    if d and f:
        out.append("- `five 127.0.0.1 echo` time to first byte, pinned: %s ms vs direct TCP "
                   "%s ms (ratio %s); starting a process that does nothing (`cat`) takes %s ms "
                   "here." % (fmt(med(f), 3), fmt(med(d), 3), ratio(med(f), med(d)),
                              fmt(med(c), 3)))
    usp = {}
    for x in info.get("usp", []):
        if x["pin"] == "pinned" and x["ok"] == "1":
            usp.setdefault(x["system"], []).append(float(x["first_ms"]))
    if "direct TCP" in usp and "USP flow 1, open service" in usp and "USP flow 3, token" in usp:
        base = med(usp["direct TCP"])
        out.append("- USP on loopback, time to first byte, pinned: flow 1 %s ms (ratio %s), "
                   "flow 3 with a token %s ms (ratio %s), direct TCP %s ms." % (
                       fmt(med(usp["USP flow 1, open service"]), 3),
                       ratio(med(usp["USP flow 1, open service"]), base),
                       fmt(med(usp["USP flow 3, token"]), 3),
                       ratio(med(usp["USP flow 3, token"]), base), fmt(base, 3)))
    big = info.get("big", [])
    b, f = tput_stats(big, "direct", "pinned", 1), tput_stats(big, "fived", "pinned", 1)
    if b and f:
        out.append("- One 1 GiB transfer, pinned: through fived %s MB/s vs direct %s MB/s "
                   "(ratio %s)." % (fmt(f["median"], 0), fmt(b["median"], 0),
                                    ratio(f["median"], b["median"])))
    return "\n".join(out) + "\n"


def report_resume(info):
    res = info["resume"]
    rows = [("cuts", res["cuts"]), ("echo round trips", res["rounds"]),
            ("typical round trip, ms", fmt(res["rtt_ms"])),
            ("pause at each cut, ms", ", ".join(fmt(g) for g in res["gaps_ms"]) or "-"),
            ("a sealed session's first byte from cold, ms", fmt(res["sealed_cold_first_ms"])),
            ("bytes lost, repeated or reordered", "none" if res["rc"] == 0 else res["error"]),
            ("detached sessions held", res["sessions"]),
            ("fived RSS per session, not detachable, bytes", fmt(res["plain_bytes"], 0)),
            ("fived RSS per session, detachable, attached, bytes",
             fmt(res["attached_bytes"], 0)),
            ("fived RSS per session, detachable, detached, bytes",
             fmt(res["detached_bytes"], 0))]
    return ("## 6. Sessions that outlive their connections\n\n"
            "Across the 28 ms link, `benchtool resume` holds one detachable MULTIPLEX "
            "session (libfive, sealed IK) with a stream to fived's echo service and echoes "
            "8-byte counters one at a time, checking each; every %.0f s the bench kills the "
            "client's connection (`ss -K`, both ends see a reset). libfive notices, connects "
            "again, makes a new sealed handshake and ATTACHes, and both sides send what the "
            "other missed. A cut shows as one long round trip: from the last echo before it "
            "to the first after, so it includes the echo's own round trip. The goal is one "
            "sealed handshake and one round trip, about a cold sealed session's first "
            "byte. Then %d sessions that are not detachable are opened and held, their "
            "client is killed, and as many detachable ones are opened, held, and their "
            "client killed: fived holds them detached.\n\n" % (RESUME_SECONDS_PER_CUT, res["sessions"]) +
            table(["", ""], rows))


def write_report(r, info, pics, started, finished):
    cfg = info["cfg"]
    parts = ["# fived benchmarks\n\n"]
    parts.append(
        "Generated by `make bench` (`bench/run.sh`, `bench/bench.py`) on %s; the run took "
        "%.1f minutes%s. Every figure is also given as a ratio to direct TCP measured in the "
        "same run. This is a %s-CPU virtual machine on which waking a process on the other "
        "CPU can cost up to a millisecond, so loopback measurements were made both unpinned "
        "and with every process pinned to CPU %s (`taskset -c %s`); comparisons quote the "
        "pinned numbers.\n\n" % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            (finished - started) / 60, " (--quick: reduced counts)" if info.get("quick") else "",
            os.cpu_count(), PIN_CPU, PIN_CPU))
    parts.append("## Headline (pinned)\n\n" + headline(info) + "\n")
    parts.append("## Machine\n\n" + table(["", ""], list(info["machine"].items())) + "\n")
    parts.append("## Versions measured\n\n" + table(["component", "version"],
                                                    list(info["versions"].items())) + "\n")
    parts.append(
        "## Method\n\n"
        "- Root, network namespaces of the bench's own (`fivebench-*`, deleted at the end): "
        "`%s` for every loopback measurement, `%s` and `%s` for section 1. In each: `lo` up, "
        "`ip_local_port_range` 1024-65000, `tcp_tw_reuse` 1, `somaxconn` and "
        "`tcp_max_syn_backlog` 65535, `tcp_no_metrics_save` 1. Nothing touches the host's "
        "own network settings.\n"
        "- The backend and every load generator is `bench/benchtool.c`, built by "
        "`bench/run.sh` with `cc -O2`. The backend is one epoll thread that answers `G n` "
        "with n bytes, `E` with an echo, and holds anything else.\n"
        "- Every peer runs with its packaged defaults except what the measurement needs: "
        "listen/connect addresses, TLS 1.3 only and one cipher suite for stunnel, connection "
        "limits raised, logging lowered; configuration files are listed at the end.\n"
        "- fived runs with `audit_log = none` except where stated.\n"
        "- Medians and p90 use linear interpolation between order statistics.\n\n" % (
            NS_LO, NS_A, NS_B))
    if "wan" in info:
        parts.append(report_wan(info, pics) + "\n")
    if "tput" in info:
        parts.append(report_tput(info, pics) + "\n")
    if "rate" in info:
        parts.append(report_rate(info, pics) + "\n")
    if "tput" in info or "rate" in info:
        parts.append(report_peers(info) + "\n")
    if "memory" in info:
        parts.append(report_memory(info, pics) + "\n")
    if "attack" in info:
        parts.append(report_attack(info, pics) + "\n")
    if "five_cmd" in info:
        parts.append(report_extra(info) + "\n")
    if info.get("usp"):
        parts.append(report_usp(info) + "\n")
    if "resume" in info:
        parts.append(report_resume(info) + "\n")
    if "shim" in info:
        parts.append(report_shim(info) + "\n")
    if "cluster" in info:
        parts.append(report_cluster(info) + "\n")
    if "sessioncost" in info:
        parts.append(report_sessioncost(info) + "\n")
    parts.append("## Raw data\n\n")
    for name in sorted(os.listdir(RESULTS)):
        parts.append("- [`results/%s`](results/%s)\n" % (name, name))
    parts.append("\nPlots are made by gnuplot from `plots/*.gp` and `plots/*.dat`.\n\n")
    parts.append("## Exact commands\n\n`$WORK` is the run's scratch directory (keys, "
                 "configuration files, logs), removed at the end.\n\n")
    section = None
    for sec, cmd in r.commands:
        if sec != section:
            parts.append("\n**%s**\n\n" % sec)
            section = sec
        parts.append("    %s\n" % cmd)
    parts.append("\n## Configuration files\n\n")
    for name in sorted(os.listdir(r.state)):
        path = os.path.join(r.state, name)
        if os.path.isfile(path) and re.search(r"\.(conf|cfg)$|_config$", name):
            with open(path) as f:
                body = f.read().replace(r.state, "$WORK")
            parts.append("`%s`:\n\n```\n%s```\n\n" % (name, body))
    with open(REPORT, "w") as f:
        f.write("".join(parts))


def write_summaries(info):
    if "tput" in info:
        write_csv("throughput.csv", list(info["tput"][0].keys()), info["tput"])
    if "rate" in info:
        write_csv("session_rate.csv", list(info["rate"][0].keys()), info["rate"])
    if info.get("sessioncost"):
        rows = [x for res in info["sessioncost"] for x in res["rows"]]
        write_csv("session_cost.csv", list(rows[0].keys()), rows)
    if info.get("big"):
        write_csv("throughput_1gib.csv", list(info["big"][0].keys()), info["big"])
    if "five_cmd" in info:
        write_csv("five_command.csv", ["pin", "system", "rep", "ok", "connect_ms", "first_ms",
                                       "error"], info["five_cmd"])
    if info.get("usp"):
        write_csv("usp.csv", ["pin", "system", "rep", "ok", "connect_ms", "first_ms", "error"],
                  info["usp"])
    if "shim" in info:
        write_csv("shim.csv", ["system", "rep", "ok", "connect_ms", "first_ms", "error"],
                  info["shim"])
    if "cluster" in info:
        write_csv("cluster_store.csv", list(info["cluster"]["store"][0].keys()),
                  info["cluster"]["store"])
        write_csv("cluster_nodes.csv", list(info["cluster"]["nodes"][0].keys()),
                  info["cluster"]["nodes"])
    if "attack" in info:
        rows = [x for x in info["attack"] if not x.get("pending")]
        if rows:
            write_csv("attack.csv", list(rows[0].keys()), rows)
    if "wan" in info:
        rows = []
        for s in SYSTEMS_WAN:
            d = info["wan"].get(s.key)
            row = dict(system=s.key, label=s.label, layer=s.layer,
                       status=s.note if s.note == PENDING else "measured")
            if d and d["first_ms"]:
                for col in ("connect_ms", "first_ms", "b1000_ms", "last_ms"):
                    v = d[col]
                    if v:
                        row.update({col + "_median": med(v), col + "_p90": pct(v, 90),
                                    col + "_mean": statistics.mean(v), col + "_sd": sd(v)})
                row.update(ok=d["ok"], n=d["n"], late_max_ms=d["late_max"],
                           late_mean_ms=d["late_mean"])
            rows.append(row)
        cols = ["system", "label", "layer", "status", "ok", "n"]
        for col in ("connect_ms", "first_ms", "b1000_ms", "last_ms"):
            cols += [col + s for s in ("_median", "_p90", "_mean", "_sd")]
        write_csv("wan_summary.csv", cols + ["late_max_ms", "late_mean_ms"], rows)


# --- section 8: several nodes ----------------------------------------------------------

# Above ip_local_port_range: fiveds started after a load ran must find their port free.
REDIS_PORT = 65100
STORE_FIVED_PORT = 65110     # + 0 without the store, + 1 with it
NODE_PORT = 65120            # + the node's index
CLUSTER_PORT = 65130         # HAProxy in front of the nodes

CLUSTER_HAPROXY_CFG = """global
    maxconn {maxconn}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    maxconn {maxconn}
frontend fe
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance roundrobin
{servers}"""


def sealed_fived_of_its_own(ctx, name, port, extra):
    """A fived whose bench service requires authentication, with a key of its own (and
    so a 0-RTT floor of its own) and the bench client's key authorized for it."""
    keyfile = os.path.join(ctx.r.state, name + ".key")
    conf = ctx.file(name + "-print-key.conf", "[server]\nlisten = tcp:127.0.0.1:1\n"
                    "key_file = %s\n" % keyfile)
    key = subprocess.run([ctx.t.fived, "--print-key", "-c", conf], capture_output=True,
                         text=True, check=True).stdout.split()[0]
    client = subprocess.run([ctx.t.benchtool, "clientkey", "-K", key], capture_output=True,
                            text=True, check=True).stdout.strip()
    clients = ctx.file(name + "-authorized_clients", "%s bench\n" % client)
    text = FIVED_CONF.format(ip="127.0.0.1", port=port, backend=BACKEND_PORT,
                             extra="key_file = %s\nauthorized_clients = %s\n%s" % (
                                 keyfile, clients, extra)).replace(
        "backend = tcp:127.0.0.1:%d\n" % BACKEND_PORT,
        "backend = tcp:127.0.0.1:%d%s" % (BACKEND_PORT, SEALED_SERVICE), 1)
    return start_fived(ctx, name=name, conf=text, port=port), key


def section_cluster(r, tools, cfg, info):
    """The store's cost on a 0-RTT sealed session, and the session rate of one, two and
    three nodes behind HAProxy (send-proxy-v2)."""
    r.section = "7. several nodes: the store's cost, nodes behind HAProxy"
    log(r.section)
    setup_namespace(r, NS_LO)
    net = Net("lo", NS_LO, NS_LO, "127.0.0.1")
    ctx = Ctx(r, tools, net, None)
    start_backend(ctx)
    redis = ctx.spawn("redis", ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"], "server")
    wait_listen(redis, REDIS_PORT)
    res = dict(store=[], nodes=[])
    store_line = "store = tcp:127.0.0.1:%d\n" % REDIS_PORT
    for i, (label, extra) in enumerate((("without a store", ""), ("with a store", store_line))):
        p, key = sealed_fived_of_its_own(ctx, "fived-store%d" % i, STORE_FIVED_PORT + i, extra)
        rec = Recipe(addr="127.0.0.1:%d" % (STORE_FIVED_PORT + i), pre="bench\\r\\n",
                     strip="+\\r\\n", key=key, procs={"server proxy": [p]})
        time.sleep(2)  # past the store's epoch (a second after the node first reached it)
        first = [float(x["first_ms"]) for x in ttfb_rows(r, tools, ctx, rec, cfg["five_reps"], 1)
                 if x["ok"] == "1"]
        store0 = cpu_of([redis])
        rate = measure_rate(r, tools, ctx, rec, cfg)
        store_cpu = (cpu_of([redis]) - store0) / rate["sessions"] * 1e6 if rate["sessions"] else 0
        # Each session acted on at once is one claim: none fell back to the 1-RTT path.
        rc, out, err = r.run(["redis-cli", "-p", str(REDIS_PORT), "eval",
                              "return #redis.call('keys', 'fived:0rtt:*')", "0"], NS_LO)
        claims = int(out.strip() or 0)
        res["store"].append(dict(system=label, first_ms=med(first) if first else float("nan"),
                                 first_p90_ms=pct(first, 90) if first else float("nan"),
                                 rate=rate["rate"], failed=rate["failed"],
                                 fived_us=rate["cpu_us_per_session server proxy"],
                                 store_us=store_cpu if extra else 0.0,
                                 sessions=len(first) + rate["sessions"],
                                 claims=claims - sum(x["claims"] for x in res["store"])))
        r.stop(p)
        del ctx.shared["fived-store%d" % i]
    for n in (1, 2, 3):
        nodes = []
        for i in range(n):
            name = "node%d" % i
            text = FIVED_CONF.format(ip="127.0.0.1", port=NODE_PORT + i, backend=BACKEND_PORT,
                                     extra="key_file = %s/%s.key\nproxy_from = 127.0.0.1\n%s" % (
                                         r.state, name, store_line))
            nodes.append(start_fived(ctx, name=name, conf=text, port=NODE_PORT + i))
        servers = "".join("    server n%d 127.0.0.1:%d send-proxy-v2\n" % (i, NODE_PORT + i)
                          for i in range(n))
        path = ctx.file("cluster-haproxy.cfg", CLUSTER_HAPROXY_CFG.format(
            port=CLUSTER_PORT, servers=servers, maxconn=PROXY_MAX_SESSIONS))
        lb = ctx.spawn("haproxy-cluster", ["haproxy", "-db", "-f", path], "server")
        wait_listen(lb, CLUSTER_PORT)
        rec = Recipe(addr="127.0.0.1:%d" % CLUSTER_PORT, pre="bench\\r\\n", strip="+\\r\\n",
                     procs={"server proxy": nodes, "client proxy": [lb]})
        rate = measure_rate(r, tools, ctx, rec, cfg)
        res["nodes"].append(dict(nodes=n, rate=rate["rate"], failed=rate["failed"],
                                 p50_ms=rate["p50_ms"], p99_ms=rate["p99_ms"],
                                 fived_us=rate["cpu_us_per_session server proxy"],
                                 haproxy_us=rate["cpu_us_per_session client proxy"],
                                 backend_us=rate["cpu_us_per_session backend"],
                                 loadgen_us=rate["cpu_us_per_session load generator"]))
        r.stop(lb)
        for i, p in enumerate(nodes):
            r.stop(p)
            del ctx.shared["node%d" % i]
    r.stop_all()
    r.netns_del_all()
    info["cluster"] = res


def report_cluster(info):
    res = info["cluster"]
    rows = [(x["system"], fmt(x["first_ms"], 3), fmt(x["first_p90_ms"], 3), fmt(x["rate"], 0),
             x["failed"], fmt(x["fived_us"], 0), fmt(x["store_us"], 0),
             "%d of %d" % (x["claims"], x["sessions"]) if x["store_us"] else "-")
            for x in res["store"]]
    nodes = [(x["nodes"], fmt(x["rate"], 0), x["failed"], fmt(x["p50_ms"], 2),
              fmt(x["p99_ms"], 2), fmt(x["fived_us"], 0), fmt(x["haproxy_us"], 0),
              fmt(x["backend_us"], 0), fmt(x["loadgen_us"], 0)) for x in res["nodes"]]
    return ("## 7. Several nodes (docs/CLUSTER.md)\n\n"
            "On loopback, unpinned. First, a sealed IK session whose request rides in the "
            "first message (0-RTT, libfive through benchtool, the client key in "
            "`authorized_clients`) to a fived without a store and to one whose 0-RTT claims "
            "go to a local `redis-server` (`SET NX`, one round trip on loopback before the "
            "answer): time to the backend's first byte, then the session rate, with the CPU "
            "of fived and of the store per session. The claims the store holds afterwards "
            "count the sessions whose early data was acted on (the others took the 1-RTT "
            "path).\n\n" +
            table(["", "first byte, median ms", "p90 ms", "sessions/s", "failed",
                   "fived CPU us/session", "store CPU us/session", "0-RTT claims"], rows) +
            "\nThen one, two and three fived nodes behind HAProxy (tcp mode, `send-proxy-v2`, "
            "round robin), each with the store configured, plain text-dialect sessions, "
            "the load generator on the same machine. This machine has %s CPUs: the load "
            "generator, HAProxy, the backend and the nodes share them, so the rate stops at "
            "what the CPUs give, not at what the nodes could do; the CPU per session says "
            "what each part costs.\n\n" % os.cpu_count() +
            table(["nodes", "sessions/s", "failed", "p50 ms", "p99 ms", "fived CPU us/session "
                   "(all nodes)", "HAProxy", "backend", "load generator"], nodes))


SECTIONS = ["wan", "loopback", "memory", "attack", "resume", "shim", "cluster", "sessioncost"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", required=True, help="scratch directory (made by run.sh)")
    ap.add_argument("--repo", required=True)
    ap.add_argument("--build", required=True, help="where benchtool and delayline are")
    ap.add_argument("--quick", action="store_true", help="reduced counts, for development")
    ap.add_argument("--only", action="append", choices=SECTIONS,
                    help="run only this section (repeatable)")
    ap.add_argument("--baseline", help="sessioncost: another fived binary, measured beside "
                    "this one in the same rounds")
    ap.add_argument("--systems", help="loopback: only these systems' throughput and session "
                    "rate (comma-separated keys, direct TCP always), for development")
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    only = args.only or SECTIONS
    if args.systems:
        keep = args.systems.split(",")
        SYSTEMS_LO[:] = [x for x in SYSTEMS_LO if x.key in keep or x.key == "direct"]
        cfg["systems_only"] = True
    r = Runner(args.state, args.repo)
    tools = Tools(args.state, args.repo, args.build)
    info = dict(cfg=cfg, quick=args.quick)

    def on_term(sig, frame):
        raise SystemExit(128 + sig)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.time()
    # five and libfive keep their pinned keys and master secret in the bench's state.
    os.environ["FIVE_KNOWN_HOSTS"] = os.path.join(args.state, "known_hosts")
    os.environ["FIVE_IDENTITY_FILE"] = os.path.join(args.state, "identity")
    try:
        info["machine"] = machine()
        info["versions"] = versions(r, tools)
        r.section = "setup"
        tools.make_keys(r)
        if os.path.isdir(RESULTS):
            for name in os.listdir(RESULTS):
                if name.endswith(".csv"):
                    os.remove(os.path.join(RESULTS, name))
        if "wan" in only:
            section_wan(r, tools, cfg, info)
        if "loopback" in only:
            section_loopback(r, tools, cfg, info, PIN_CPU)
            section_loopback(r, tools, cfg, info, None)
        if "memory" in only:
            section_memory(r, tools, cfg, info)
        if "attack" in only:
            section_attack(r, tools, cfg, info)
        if "resume" in only:
            section_resume(r, tools, cfg, info)
        if "shim" in only:
            section_shim(r, tools, cfg, info)
        if "cluster" in only:
            section_cluster(r, tools, cfg, info)
        if "sessioncost" in only:
            section_sessioncost(r, tools, cfg, info, args.baseline)
        write_summaries(info)
        pics = plots(info)
        finished = time.time()
        write_report(r, info, pics, started, finished)
        log("wrote %s in %.1f minutes" % (REPORT, (finished - started) / 60))
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        r.stop_all()
        r.netns_del_all()


if __name__ == "__main__":
    sys.exit(main())
