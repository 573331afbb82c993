"""libfive-shim.so through five run: unmodified programs (curl, ssh, Python) reach
services behind fived by the names shim.conf maps, and nothing else changes."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import (BUILD, FIVE, SANITIZED, SLOW, answer_then_reset, free_port, stop_listening,
                      wait_for, wait_port)
from test_interop import need, start_sshd
from test_mux_client import agent, sessions_of  # noqa: F401 (agent is a fixture)

SHIM = os.path.join(BUILD, "libfive-shim.so")



def asan_runtime():
    """The ASan runtime the sanitized shim links: it must be loaded before anything else
    in the (uninstrumented) programs it is preloaded into."""
    out = subprocess.run(["ldd", SHIM], capture_output=True, text=True).stdout
    found = [line.split("=>")[1].split()[0] for line in out.splitlines()
             if "libasan.so" in line and "=>" in line]
    return found[0] if found else None


def write_conf(tmp_path, text):
    path = tmp_path / "shim.conf"
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def shim_env(tmp_path, text, **extra):
    env = dict(os.environ)
    env["FIVE_SHIM_CONFIG"] = str(write_conf(tmp_path, text))
    env.pop("FIVE_AGENT_SOCK", None)
    if SANITIZED:
        # five run puts the shim after what LD_PRELOAD holds.  curl's, ssh's and Python's
        # own leaks at exit are theirs, not the shim's.
        runtime = asan_runtime()
        if runtime is None:
            pytest.skip("the sanitized libfive-shim.so names no ASan runtime to preload")
        env["LD_PRELOAD"] = runtime
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    env.update(extra)
    return env


def run(argv, env, input=None, timeout=20):
    return subprocess.run([FIVE, "run", "--", *argv], env=env, input=input,
                          capture_output=True, timeout=timeout * SLOW)


def python(script, env, timeout=20):
    return run([sys.executable, "-c", textwrap.dedent(script)], env, timeout=timeout)


ECHO = "[service:echo]\nbackend = builtin:echo\n"


@pytest.mark.skipif(SANITIZED, reason="curl with the ASan runtime and the sanitized shim "
                    "preloaded hangs at its start, in a lock, before any hook of the shim's runs "
                    "a session; Python and ssh are run under ASan instead")
def test_curl_to_http_behind_fived(fived, tmp_path, process):
    need("curl")
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("served by python behind fived\n")
    http_port = free_port()
    process(["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", str(http_port),
             "--directory", str(web)])
    wait_port(http_port)
    f = fived("[service:http]\nbackend = tcp:127.0.0.1:%d\n" % http_port)
    env = shim_env(tmp_path, "web.shim-test:8080 = 127.0.0.1 http port=%d\n" % f.port)
    # curl connects without blocking, and resolves on a thread of its own.
    r = run(["curl", "-sS", "--max-time", "10", "-w", "\n%{remote_ip}",
             "http://web.shim-test:8080/"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"served by python behind fived\n\n127.95.0.1"
    assert [e["service"] for e in f.events("granted")] == ["http"]
    # A first contact pins the server's key, and says so, as five does.
    assert b"five-shim: new host 127.0.0.1:%d" % f.port in r.stderr
    assert (tmp_path / "known_hosts").exists()


def test_ssh_through_the_shim(fived, tmp_path, process):
    sshd_port, keys = start_sshd(tmp_path, process)
    f = fived("[service:ssh]\nbackend = tcp:127.0.0.1:%d\n" % sshd_port)
    env = shim_env(tmp_path, "*.shim-test:22 = 127.0.0.1 ssh port=%d\n" % f.port)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    r = run(["ssh", "-F", "/dev/null", "-i", str(keys / "user"), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=%s" % (tmp_path / "kh"), "-o", "ConnectTimeout=10",
             "%s@box.shim-test" % user, "echo logged in through the shim"], env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"logged in through the shim\n"
    assert [e["service"] for e in f.events("granted")] == ["ssh"]


def test_python_client(fived, tmp_path):
    f = fived(ECHO)
    env = shim_env(tmp_path, "echo.shim-test = 127.0.0.1 echo port=%d\n" % f.port)
    r = python("""
        import errno, select, socket
        s = socket.create_connection(("echo.shim-test", 7), timeout=10)
        print(s.getpeername())
        s.sendall(b"blocking")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        print(data.decode())
        # A non-blocking connect: EINPROGRESS, then writable, then SO_ERROR 0.
        n = socket.socket()
        n.setblocking(False)
        print(errno.errorcode[n.connect_ex(("echo.shim-test", 7))])
        select.select([], [n], [], 10)
        print(n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
        print(n.connect_ex(("echo.shim-test", 7)) == errno.EISCONN)
        n.setblocking(True)
        n.sendall(b"non-blocking")
        print(n.recv(100).decode())
        print(socket.getaddrinfo("echo.shim-test", "7", socket.AF_INET6)[0][4][:2])
        print(socket.gethostbyname("ECHO.shim-test."))
    """, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n") == [
        "('127.95.0.1', 7)", "blocking", "EINPROGRESS", "0", "True", "non-blocking",
        "('::ffff:127.95.0.1', 7)", "127.95.0.1", ""]
    assert len(f.events("granted")) == 2
    # Sealed, as the rule did not say plain.
    assert all(e.get("transport") == "sealed" for e in f.events("granted")), f.events()


@pytest.mark.parametrize("how", ["", " tls"])
def test_a_cut_stream_reads_as_a_reset_not_an_end(fived, tmp_path, how):
    """A sealed or TLS stream whose backend resets after sending reaches the program as
    TCP would: the bytes sent before, then ECONNRESET, never an end of file that would
    make a truncated transfer look whole (five(1), five.h).  Its socket reads back its
    TCP options too."""
    sent = bytes(range(256)) * 256
    backend = answer_then_reset(sent, pause=0.3)
    f = fived("[service:cut]\nbackend = tcp:127.0.0.1:%d\n" % backend.getsockname()[1])
    env = shim_env(tmp_path, "cut.shim-test = 127.0.0.1 cut%s port=%d\n" % (how, f.port))
    r = python("""
        import socket
        s = socket.create_connection(("cut.shim-test", 7), timeout=10)
        print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
        s.sendall(b"go")
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    print("end of file")
                    break
                got += chunk
        except ConnectionResetError:
            print("reset")
        print(len(got))
    """, env)
    stop_listening(backend)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n") == ["True", "reset", str(len(sent)), ""], r.stdout


def test_a_program_reads_a_changed_identity_again(fived, tmp_path):
    """libfive keeps the static key it derived for a server and its Diffie-Hellman with
    the server's key, so that a program that opens many sealed sessions (here through
    the shim) does neither each time; while the identity file is the same file,
    unchanged.  A new identity file is read for the next session, and one whose mode no
    longer keeps it private is refused."""
    identity = os.environ["FIVE_IDENTITY_FILE"]
    clients = tmp_path / "authorized_clients"
    clients.write_text("")
    config = "[service:who]\nbackend = builtin:echo\nauth = required\n"
    f = fived(config, server="authorized_clients = %s\n" % clients)
    keys = []
    for name in ("alice", "bob"):
        if keys:
            os.rename(identity, identity + ".alice")
        r = subprocess.run([FIVE, "-p", str(f.port), "id", "127.0.0.1"], capture_output=True,
                           timeout=10 * SLOW)
        keys.append(r.stdout.decode().strip())
    clients.write_text("%s alice\n%s bob\n" % tuple(keys))
    os.rename(identity, identity + ".bob")
    os.rename(identity + ".alice", identity)
    f.reload(config)
    env = shim_env(tmp_path, "who.shim-test = 127.0.0.1 who port=%d\n" % f.port)
    r = python("""
        import os, socket
        identity = os.environ["FIVE_IDENTITY_FILE"]
        def once():
            try:
                with socket.create_connection(("who.shim-test", 7), timeout=10) as s:
                    s.sendall(b"x")
                    print(s.recv(1).decode())
            except OSError:
                print("refused")
        once()
        once()
        os.replace(identity + ".bob", identity)
        once()
        os.chmod(identity, 0o644)
        once()
    """, env)
    assert r.stdout.decode().split() == ["x", "x", "x", "refused"], r.stderr
    assert [e["identity"] for e in f.events("authenticated")] == ["alice", "alice", "bob"]


def test_fork_after_connect(fived, tmp_path):
    f = fived(ECHO)
    env = shim_env(tmp_path, "echo.shim-test = 127.0.0.1 echo port=%d\n" % f.port)
    r = python("""
        import os, socket
        s = socket.create_connection(("echo.shim-test", 7), timeout=10)
        pid = os.fork()
        if pid == 0:
            s.sendall(b"from the child\\n")
            print(s.recv(100).decode(), end="", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        s.sendall(b"from the parent\\n")
        print(s.recv(100).decode(), end="")
        print(s.getpeername())
    """, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"from the child\nfrom the parent\n('127.95.0.1', 7)\n"


def test_through_the_agent(fived, tmp_path, agent):  # noqa: F811
    """With an agent, a connection is a stream of its session, and the socket is the agent's
    connection: it outlives the process that connected."""
    f = fived(ECHO)
    env = shim_env(tmp_path, "echo.shim-test = 127.0.0.1 echo port=%d\n" % f.port)
    connect_and_fork = """
        import os, socket, time
        s = socket.create_connection(("echo.shim-test", 7), timeout=10)
        if os.fork() != 0:
            os._exit(0)
        time.sleep(0.2 * %d)
        s.sendall(b"after the parent\\n")
        print(s.recv(100).decode(), end="")
    """ % SLOW
    # The first contact pins the server's key, direct, as five makes it.
    r = python("import socket; socket.create_connection(('echo.shim-test', 7)).close()", env)
    assert r.returncode == 0, r.stderr
    agent()
    env["FIVE_AGENT_SOCK"] = os.environ["FIVE_AGENT_SOCK"]
    for _ in range(2):
        r = python(connect_and_fork, env)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"after the parent\n", b"")
    granted = wait_for(lambda: len(f.events("stream_granted")) >= 2 and
                       f.events("stream_granted"), what="two streams")
    assert len(sessions_of(granted)) == 1


def test_unmapped_names_go_straight_through(fived, tmp_path, sentinel):
    f = fived(ECHO)
    s = sentinel("count")
    env = shim_env(tmp_path, "*.shim-test = 127.0.0.1 echo port=%d\n" % f.port)
    r = python("""
        import socket
        print(socket.getaddrinfo("localhost", %d, socket.AF_INET)[0][4])
        c = socket.create_connection(("localhost", %d), timeout=10)
        print(c.getpeername())
        c.sendall(b"straight")
        c.shutdown(socket.SHUT_WR)
        print(c.recv(100).decode(), end="")
        # The suffix's own name is not under it.
        try:
            socket.getaddrinfo("shim-test", 80)
        except socket.gaierror as e:
            print("not mapped")
    """ % (s.port, s.port), env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"('127.0.0.1', %d)\n('127.0.0.1', %d)\ngot 8\nnot mapped\n" % (
        s.port, s.port)
    assert f.events("granted") == []
    assert r.stderr == b""


def test_refusals_give_an_errno_and_fived_reason(fived, tmp_path, sentinel):
    s = sentinel("count")
    f = fived("[service:secret]\nbackend = tcp:127.0.0.1:%d\nencryption = required\n"
              % s.port)
    env = shim_env(tmp_path, """
        nosuch.shim-test = 127.0.0.1 nosuch port={p}
        clear.shim-test = 127.0.0.1 secret plain port={p}
        closed.shim-test = 127.0.0.1 secret port={c} timeout=5
        sealed.shim-test:443 = 127.0.0.1 secret port={p}
        """.format(p=f.port, c=free_port()))
    r = python("""
        import socket
        for host, port in [("nosuch.shim-test", 1), ("clear.shim-test", 2),
                           ("closed.shim-test", 3), ("sealed.shim-test", 80)]:
            try:
                socket.create_connection((host, port), timeout=10).sendall(b"leak")
                print(host, "connected")
            except OSError as e:
                print(host, e.errno)
    """, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n") == [
        "nosuch.shim-test %d" % errno.ECONNREFUSED, "clear.shim-test %d" % errno.EACCES,
        "closed.shim-test %d" % errno.ECONNREFUSED, "sealed.shim-test %d" % errno.ECONNREFUSED,
        ""]
    err = r.stderr.decode()
    assert "five-shim: nosuch.shim-test:1: 127.0.0.1 nosuch: refused: unknown service\n" in err
    assert "five-shim: clear.shim-test:2: 127.0.0.1 secret: refused: encryption required\n" \
        in err
    assert "five-shim: closed.shim-test:3: 127.0.0.1 secret: connect: Connection refused" in err
    assert "five-shim: sealed.shim-test:80: no rule in shim.conf for this port\n" in err
    # Nothing reached the service behind the refusals.
    assert s.connections == 0 and s.bytes == 0


def test_log_file_and_a_broken_configuration(fived, tmp_path):
    f = fived(ECHO)
    log = tmp_path / "shim.log"
    env = shim_env(tmp_path, "x.shim-test = 127.0.0.1 nosuch port=%d\n" % f.port,
                   FIVE_SHIM_LOG=str(log))
    r = python("""
        import socket
        try:
            socket.create_connection(("x.shim-test", 1), timeout=10)
        except ConnectionRefusedError:
            print("refused")
    """, env)
    assert r.stdout == b"refused\n" and r.stderr == b""
    assert "refused: unknown service" in log.read_text()
    # A configuration with an error resolves nothing at all, and says where the error is.
    env = shim_env(tmp_path, "ok.shim-test = 127.0.0.1 echo\nbad.shim-test = 127.0.0.1 echo "
                   "sealed\n")
    r = python("""
        import socket
        try:
            socket.getaddrinfo("localhost", 80)
        except socket.gaierror as e:
            print(e.errno == socket.EAI_FAIL)
    """, env)
    assert r.stdout == b"True\n", r.stderr
    assert b"five-shim: %s: line 2: unknown option sealed; no host name is resolved until " \
        b"it is fixed\n" % env["FIVE_SHIM_CONFIG"].encode() in r.stderr


def test_five_run_usage(tmp_path):
    r = subprocess.run([FIVE, "run"], capture_output=True)
    assert r.returncode == 2 and r.stderr == b"five: run: no command given\n"
    r = subprocess.run([FIVE, "run", "--", "/nonexistent/program"], capture_output=True)
    assert r.returncode == 127
    assert r.stderr == b"five: run: /nonexistent/program: No such file or directory\n"
    # The shim goes after what LD_PRELOAD held (under ASan, the ASan runtime).
    before = asan_runtime() if SANITIZED else ""
    env = dict(os.environ, LD_PRELOAD=before, ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run([FIVE, "run", "sh", "-c", "echo $LD_PRELOAD"], capture_output=True,
                       env=env)
    assert r.stdout.decode().strip() == (before + ":" if before else "") + os.path.abspath(SHIM)
