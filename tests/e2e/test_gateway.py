"""five gateway between network namespaces: an unmodified computer, whose resolver and
default route are the gateway, reaches services behind fived on a third namespace with plain
curl and ssh; names the gateway does not map get NXDOMAIN or the upstream's answer, and a
refused service's backend sees no byte."""

import ctypes
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import BUILD, SLOW, free_port, wait_for
from test_interop import need

GATEWAY = os.path.join(BUILD, "five-gateway")
CLONE_NEWNET = 0x40000000
# The three computers' links: client 10.77.1.2 -> gateway 10.77.1.1, gateway 10.77.2.1 ->
# server 10.77.2.2; the gateway's pool, routed to it by the client's default route.
CLIENT, GW_IN, GW_OUT, SERVER = "10.77.1.2", "10.77.1.1", "10.77.2.1", "10.77.2.2"
POOL = "100.95.0.0/16"
LISTEN_PORT = 5502

# five-gateway(8)'s example: the pool's TCP connections to the gateway's listener.
NFT_RULES = """table ip fivegw {
    chain prerouting {
        type nat hook prerouting priority dstnat;
        ip daddr %s meta l4proto tcp redirect to :%d
    }
}
""" % (POOL, LISTEN_PORT)

# A DNS server for the gateway's upstream: one fixed A record for every question (the test's
# own, so the bytes are built by hand here; the gateway reads them with ldns).
UPSTREAM = textwrap.dedent("""
    import socket, struct, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(sys.argv[2])))
    while True:
        q, peer = s.recvfrom(512)
        end = 12
        while q[end]:
            end += q[end] + 1
        question = q[12:end + 5]
        answer = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + bytes([192, 0, 2, 7])
        s.sendto(q[:2] + b"\\x81\\x80" + struct.pack(">HHHH", 1, 1, 0, 0) + question + answer,
                 peer)
""")

# A backend that writes down every connection and every byte it is sent.
SPY = textwrap.dedent("""
    import socket, sys
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen()
    while True:
        c, _ = s.accept()
        with open(sys.argv[2], "ab") as f:
            f.write(b"connection\\n")
            while True:
                data = c.recv(4096)
                if not data:
                    break
                f.write(data)
        c.close()
""")


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


def netns_usable():
    if os.geteuid() != 0:
        return "network namespaces need root"
    for program in ("ip", "nft"):
        if shutil.which(program) is None:
            return "%s is not installed (make deps installs it)" % program
    probe = "fgw-probe-%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return "ip netns add: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def entering(ns):
    """A preexec_fn that moves the child into network namespace ns."""
    libc = ctypes.CDLL(None, use_errno=True)

    def enter():
        fd = os.open("/run/netns/" + ns, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)
        os.close(fd)
    return enter


@pytest.fixture
def net():
    """Three namespaces, linked client - gateway - server; the client's resolver is the
    gateway, and the gateway's firewall redirects the pool's TCP to its listener."""
    why = netns_usable()
    if why:
        pytest.skip(why)
    tag = "%d" % os.getpid()
    ns = {"client": "fgw-c-" + tag, "gateway": "fgw-g-" + tag, "server": "fgw-s-" + tag}
    etc = "/etc/netns/" + ns["client"]
    try:
        for name in ns.values():
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        for a, b, left, right, prefix in [("client", "gateway", CLIENT, GW_IN, "1"),
                                          ("gateway", "server", GW_OUT, SERVER, "2")]:
            la, lb = "fgw%s%s" % (a[0], prefix), "fgw%s%s" % (b[0], prefix)
            sh("ip", "link", "add", la, "netns", ns[a], "type", "veth", "peer", "name", lb,
               "netns", ns[b])
            sh("ip", "-n", ns[a], "addr", "add", left + "/24", "dev", la)
            sh("ip", "-n", ns[b], "addr", "add", right + "/24", "dev", lb)
            sh("ip", "-n", ns[a], "link", "set", la, "up")
            sh("ip", "-n", ns[b], "link", "set", lb, "up")
        sh("ip", "-n", ns["client"], "route", "add", "default", "via", GW_IN)
        subprocess.run(["ip", "netns", "exec", ns["gateway"], "nft", "-f", "-"], check=True,
                       capture_output=True, timeout=10, input=NFT_RULES.encode())
        os.makedirs(etc, exist_ok=True)
        with open(etc + "/resolv.conf", "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:1\n" % GW_IN)
        yield ns
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def in_ns(ns, argv, timeout=20, **kw):
    """A program run as on that computer: ip netns exec gives it the namespace's resolv.conf."""
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True,
                          timeout=timeout * SLOW, **kw)


def listening(ns, *ports):
    out = in_ns(ns, ["ss", "-Hltn"]).stdout.decode()
    return all(re.search(r":%d\s" % p, out) for p in ports)


def start_sshd(tmp_path, ns, process):
    need("/usr/sbin/sshd", "ssh", "ssh-keygen")
    os.makedirs("/run/sshd", exist_ok=True)
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("host", "user"):
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name))
    (keys / "authorized").write_text((keys / "user.pub").read_text())
    os.chmod(keys / "authorized", 0o600)
    port = free_port()
    conf = tmp_path / "sshd_config"
    conf.write_text("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
                    "PidFile none\n" % (port, keys / "host", keys / "authorized"))
    process(["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)], preexec_fn=entering(ns))
    return port, keys


def test_an_unmodified_computer_through_the_gateway(net, fived, world, tmp_path, process):
    need("curl", "ssh")
    server, gateway, client = net["server"], net["gateway"], net["client"]
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("the wiki, behind fived\n")
    http_port, spy_port, upstream_port = free_port(), free_port(), free_port()
    spied = tmp_path / "spied"
    process([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(http_port),
             "--directory", str(web)], preexec_fn=entering(server))
    process([sys.executable, "-c", SPY, str(spy_port), str(spied)], preexec_fn=entering(server))
    process([sys.executable, "-c", UPSTREAM, SERVER, str(upstream_port)],
            preexec_fn=entering(server))
    sshd_port, keys = start_sshd(tmp_path, server, process)
    # The wiki wants an authenticated caller: the gateway proves alice's key, its own.
    keys_file = world.global_keys(['principals="alice" ' + world.public("alice")])
    f = fived("[server]\nlisten = tcp:%s:0\naudit_log = %s\nauthorized_keys = %s\n"
              "[service:http]\nbackend = tcp:127.0.0.1:%d\nauth = required\n"
              "[service:ssh]\nbackend = tcp:127.0.0.1:%d\n"
              "[service:secret]\nbackend = tcp:127.0.0.1:%d\nencryption = required\n"
              % (SERVER, tmp_path / "fived.audit", keys_file, http_port, sshd_port, spy_port),
              env=world.fived_env(), preexec_fn=entering(server))
    port = int(f.addresses[0].rsplit(":", 1)[1])
    wait_for(lambda: listening(server, http_port, spy_port, sshd_port), what="the backends")
    mapping = tmp_path / "gateway.conf"
    mapping.write_text(textwrap.dedent("""\
        wiki.corp:80 = {s} http port={p} auth=pubkey identity={k} user=alice
        box.corp:22 = {s} ssh port={p}
        secret.corp = {s} secret plain port={p}
        """.format(s=SERVER, p=port, k=world.keys["alice"])))
    log = tmp_path / "gateway.log"
    with open(log, "wb") as err:
        process([GATEWAY, "--dns", GW_IN + ":53", "--listen", "0.0.0.0:%d" % LISTEN_PORT,
                 "--pool", POOL, "--zone", "corp", "--upstream",
                 "%s:%d" % (SERVER, upstream_port), str(mapping)],
                stderr=err, preexec_fn=entering(gateway))
    wait_for(lambda: "ready" in log.read_text(), what="the gateway")

    r = in_ns(client, ["curl", "-sS", "--max-time", "10", "-w", "\n%{remote_ip}",
                       "http://wiki.corp/"])
    assert r.returncode == 0, r.stderr + log.read_bytes()
    body, _, address = r.stdout.decode().rpartition("\n")
    assert body == "the wiki, behind fived\n"
    assert address.startswith("100.95.")

    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    r = in_ns(client, ["ssh", "-F", "/dev/null", "-i", str(keys / "user"), "-o", "BatchMode=yes",
                       "-o", "StrictHostKeyChecking=no",
                       "-o", "UserKnownHostsFile=%s" % (tmp_path / "kh"),
                       "-o", "ConnectTimeout=10", "%s@box.corp" % user,
                       "echo logged in through the gateway"], timeout=30)
    assert r.returncode == 0, r.stderr + log.read_bytes()
    assert r.stdout == b"logged in through the gateway\n"

    # Names the mapping does not have: NXDOMAIN in the zone, the upstream's answer outside.
    r = in_ns(client, [sys.executable, "-c", textwrap.dedent("""
        import socket
        for name in ("nosuch.corp", "elsewhere.example"):
            try:
                print(name, socket.gethostbyname(name))
            except socket.gaierror as e:
                print(name, e.errno == socket.EAI_NONAME)
        """)])
    assert r.stdout == b"nosuch.corp True\nelsewhere.example 192.0.2.7\n", r.stderr

    # A refused service: the client's bytes never reach its backend, and the client is reset.
    r = in_ns(client, ["curl", "-sS", "--max-time", "10", "-d", "leak", "http://secret.corp/"])
    assert r.returncode != 0
    assert re.search(r"secret\.corp:80: %s secret: refused: encryption required" % SERVER,
                     log.read_text()), log.read_text()
    # A port the mapping does not name: reset at once, no session.
    r = in_ns(client, ["curl", "-sS", "--max-time", "10", "http://wiki.corp:8080/"])
    assert r.returncode != 0
    assert "wiki.corp:8080 is not mapped" in log.read_text()
    # The listener itself, not through the firewall: no address of the pool, no session.
    r = in_ns(client, ["curl", "-sS", "--max-time", "10", "http://%s:%d/" % (GW_IN,
                                                                          LISTEN_PORT)])
    assert r.returncode != 0
    assert "%s: refused: not to an address the gateway gave out" % CLIENT in log.read_text()
    # fived knows the gateway's identity, never the computer's: alice for the wiki, as
    # the rule says; for ssh, the gateway's own sealed key and no user.
    granted = f.events("granted")
    assert [(e["service"], e.get("identity")) for e in granted][:1] == [("http", "alice")]
    assert [e["service"] for e in granted] == ["http", "ssh"]
    assert "alice" not in str(granted[1])
    assert not spied.exists()
    text = log.read_text()
    assert "AddressSanitizer" not in text and "runtime error" not in text, text
