"""Interoperability with software not written here."""

import os
import shutil
import socket
import subprocess

import pytest

from conftest import FIVE, SLOW, connect as socket_connect, free_port, recv_all, run_five, \
    wait_for, wait_port


def need(*programs):
    for p in programs:
        if shutil.which(p) is None and not os.path.exists(p):
            pytest.fail("%s is not installed (make deps installs it)" % p)


def test_socat_speaks_raw_tcpmux(fived):
    need("socat")
    f = fived("[service:echo]\nbackend = builtin:echo\n")
    r = subprocess.run(["socat", "-t", "2", "-", "TCP:127.0.0.1:%d" % f.port],
                       input=b"echo\r\nfrom socat\n", capture_output=True, timeout=10)
    assert r.stdout == b"+\r\nfrom socat\n"
    r = subprocess.run(["socat", "-", "TCP:127.0.0.1:%d" % f.port], input=b"HELP\r\n",
                       capture_output=True, timeout=10)
    assert r.stdout == b"echo\r\n"


def test_netcat_speaks_raw_tcpmux(fived):
    need("nc")
    f = fived("[service:daytime]\nbackend = builtin:daytime\n")
    r = subprocess.run(["nc", "-N", "127.0.0.1", str(f.port)], input=b"daytime\r\n",
                       capture_output=True, timeout=10)
    assert r.stdout.startswith(b"+\r\n") and r.stdout.endswith(b"-UTC\r\n")


def test_five_speaks_rfc1078_to_xinetd(tmp_path, process):
    """xinetd is a third-party TCPMUX server: five reaches its services by name."""
    need("/usr/sbin/xinetd")
    port = free_port()
    conf = tmp_path / "xinetd.conf"
    conf.write_text("""
service tcpmux
{
	type = INTERNAL UNLISTED
	id = tcpmux
	socket_type = stream
	protocol = tcp
	user = root
	wait = no
	port = %d
	bind = 127.0.0.1
}
service fiveecho
{
	type = TCPMUXPLUS UNLISTED
	disable = no
	socket_type = stream
	protocol = tcp
	wait = no
	user = root
	server = /bin/cat
}
""" % port)
    process(["/usr/sbin/xinetd", "-dontfork", "-stayalive", "-f", str(conf),
             "-pidfile", str(tmp_path / "pid"), "-filelog", str(tmp_path / "log")])
    wait_port(port)
    # xinetd drops bytes sent before its "+": five -w waits for the grant.
    r = run_five("--plain", "-w", "-p", str(port), "127.0.0.1", "fiveecho",
                 input=b"through xinetd\n")
    assert r.returncode == 0
    # xinetd's reply is "+Go\r\n" followed by a NUL byte, which is service data to five.
    assert r.stdout.replace(b"\0", b"") == b"through xinetd\n"
    r = run_five("--plain", "-w", "-p", str(port), "127.0.0.1", "nosuch")
    assert r.returncode == 5
    assert r.stderr == b"five: 127.0.0.1 nosuch: refused: Service name not found\n"


def start_sshd(tmp_path, process):
    need("/usr/sbin/sshd", "ssh", "ssh-keygen")
    os.makedirs("/run/sshd", exist_ok=True)
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host")],
                   check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "user")],
                   check=True)
    (keys / "authorized").write_text((keys / "user.pub").read_text())
    os.chmod(keys / "authorized", 0o600)
    port = free_port()
    conf = tmp_path / "sshd_config"
    conf.write_text("""Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile none
""" % (port, keys / "host", keys / "authorized"))
    process(["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)])
    wait_port(port)
    return port, keys


def ssh_args(keys, proxy, tmp_path):
    return ["ssh", "-F", "/dev/null", "-i", str(keys / "user"), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=%s" % (tmp_path / "kh"),
            "-o", "ProxyCommand=%s" % proxy]


def test_openssh_through_proxycommand(fived, tmp_path, process):
    sshd_port, keys = start_sshd(tmp_path, process)
    f = fived("[service:ssh]\nbackend = tcp:127.0.0.1:%d\n" % sshd_port)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    r = subprocess.run(ssh_args(keys, "%s -p %d %%h ssh" % (FIVE, f.port), tmp_path)
                       + ["%s@127.0.0.1" % user, "echo logged in through fived; id -un"],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "logged in through fived\n%s\n" % user
    granted = f.events("granted")
    assert [e["service"] for e in granted] == ["ssh"]
    # ssh closes five's standard input and output, then sends it SIGHUP: five's stream
    # had ended, and the session ends as one that did.
    wait_for(lambda: f.events("closed"), what="the session's end")
    assert [e["reason"] for e in f.events("closed")] == ["done"]


def test_curl_through_local_forwarder(fived, tmp_path, process):
    need("curl")
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("served by python behind fived\n")
    http_port = free_port()
    process(["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", str(http_port),
             "--directory", str(web)])
    wait_port(http_port)
    f = fived("[service:http]\nbackend = tcp:127.0.0.1:%d\n" % http_port)
    local = free_port()
    process([FIVE, "-p", str(f.port), "-L", str(local), "127.0.0.1", "http"])
    wait_port(local)
    for _ in range(3):
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:%d/" % local],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "served by python behind fived\n"
    # Each request a stream of the one session five -L shares.
    wait_for(lambda: len(f.events("stream_granted")) >= 3)
    assert len({e["session"] for e in f.events("stream_granted")}) == 1


def test_openssh_only_after_fived_pubkey(fived, tmp_path, process):
    """sshd sits behind a service that needs authentication: ssh reaches it only
    through five -i, which authenticates to fived with an OpenSSH key first."""
    sshd_port, keys = start_sshd(tmp_path, process)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    authorized = tmp_path / "fived_keys"
    authorized.write_text('principals="%s" %s' % (user, (keys / "user.pub").read_text()))
    authorized.chmod(0o644)
    f = fived("[server]\nlisten = tcp:127.0.0.1:0\naudit_log = @AUDIT@\nauthorized_keys = %s\n"
              "[service:ssh]\nbackend = tcp:127.0.0.1:%d\nauth = required\n"
              % (authorized, sshd_port))
    target = ["%s@127.0.0.1" % user, "echo through fived with its key"]
    plain = subprocess.run(ssh_args(keys, "%s -p %d %%h ssh" % (FIVE, f.port), tmp_path)
                           + target, capture_output=True, text=True, timeout=30 * SLOW)
    assert plain.returncode != 0 and "unknown service" in plain.stderr
    r = subprocess.run(ssh_args(keys, "%s -i %s -p %d %%h ssh" % (FIVE, keys / "user", f.port),
                                tmp_path) + target,
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "through fived with its key\n"
    assert f.events("authenticated")[0]["identity"] == user


def test_haproxy_reads_the_proxy_v2_header(fived, tmp_path, process, sentinel):
    """HAProxy, a PROXY-protocol server not written here, accepts fived's v2 header
    (TLVs included) and sees the client's address, the vhost and the session id.
    (Debian 12's HAProxy 2.6 cannot fetch application TLVs: fc_pp_tlv came in 2.9.)"""
    need("/usr/sbin/haproxy")
    backend = sentinel("echo")
    front = free_port()
    log = tmp_path / "haproxy.log"
    conf = tmp_path / "haproxy.cfg"
    conf.write_text("""global
    log stdout format raw local0
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fived_in
    bind 127.0.0.1:%d accept-proxy
    log global
    log-format "client=%%ci:%%cp vhost=%%[fc_pp_authority] session=%%[fc_pp_unique_id]"
    default_backend app
backend app
    server s 127.0.0.1:%d
""" % (front, backend.port))
    with open(log, "wb") as fh:
        process(["/usr/sbin/haproxy", "-db", "-f", str(conf)], stdout=fh, stderr=fh)
        wait_port(front)
    f = fived("[service:web]\nbackend = tcp:127.0.0.1:%d\nproxy_protocol = v2\n"
              "[vhost:shop.example]\nservices = web\n" % front)
    with socket_connect(f.port) as c:
        c.sendall(b"HOST shop.example\r\nweb\r\nthrough haproxy")
        c.shutdown(socket.SHUT_WR)
        out = recv_all(c)
        client = c.getsockname()
    assert out == b"+ shop.example\r\n+\r\nthrough haproxy"
    session = f.events("granted")[0]["session"]
    line = "client=%s:%d vhost=shop.example session=%s" % (client[0], client[1], session)
    wait_for(lambda: line in log.read_text(), what="HAProxy's log line")
