"""The README's tour, run as it is written: as root and as an ordinary user, each in a
network namespace of its own, against fived's built-in configuration."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, FIVED, SLOW

README = os.path.join(os.path.dirname(__file__), "../../README.md")


def tour():
    """The whole tour, its text up to the SSH part, and that part's shell blocks."""
    with open(README) as f:
        text = f.read()
    whole = text[text.index("## A five-minute tour"):text.index("## What is here")]
    part = whole[:whole.index("Now put an SSH server")]
    return whole, part, re.findall(r"```sh\n(.*?)```", part, re.S)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a network namespace, and nobody")
@pytest.mark.parametrize("user,port", [("root", 1), ("nobody", 5501)])
def test_the_tour_as_written(tmp_path, user, port):
    """The tour's first part, verbatim but for make run (build/fived, as make run starts
    it): fived binds port 1 as root and 5501 otherwise, and every line says what
    happens either way."""
    whole, text, blocks = tour()
    assert blocks[0].strip() == "make run" and len(blocks) == 3, blocks
    assert "sudo" not in whole                  # not there on a fresh Debian, as root
    # What the first session prints, as the text says it, for this port.
    said = re.search(r"The first session prints (.*?): five met", " ".join(text.split()))
    assert re.search(r"127\.0\.0\.1:%d\b" % port, said.group(1)), said.group(1)
    os.symlink(os.path.abspath(BUILD), tmp_path / "build")     # the tour's build/
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "fived.out").touch()
    for path in (home, tmp_path / "fived.out"):
        shutil.chown(path, user)
    (tmp_path / "tour.sh").write_text(
        "%s >fived.out 2>&1 &\n"
        "until grep -q started fived.out; do sleep 0.05; done\n"
        "%s%s"
        "kill $!\n" % (FIVED, blocks[1], blocks[2]))
    as_user = "" if user == "root" else "runuser -u nobody --"
    r = subprocess.run(["unshare", "-n", "sh", "-c",
                        "ip link set lo up && exec %s env HOME=%s bash tour.sh"
                        % (as_user, home)],
                       cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30 * SLOW, env={k: v for k, v in os.environ.items()
                                               if not k.startswith("FIVE_")})
    log = (tmp_path / "fived.out").read_text()
    assert "listening on tcp:127.0.0.1:%d" % port in log, log
    key = re.search(r"key (SHA256:\S+),", r.stderr.decode())
    assert key, (r.stderr, r.stdout, log)
    assert r.stderr.decode().splitlines() == [
        "five: new host 127.0.0.1:%d, key %s, pinned in %s/.config/five/known_hosts"
        % (port, key.group(1), home),
        "five: 127.0.0.1 nosuch: refused: unknown service"], r.stderr
    assert re.fullmatch(
        rb"hello\necho\ndiscard\ndaytime\nchargen\n[^\n]+-UTC\r\n5\n"   # the first block
        rb"hi\n\+\r\nhi\n"                                            # --plain, nc
        rb'\{"message":"connect","application":"echo","server_session_id":"[0-9a-f]{32}"\}'
        rb"\nhi\n"
        rb'\{"application_menu":\{"0":\[[^\n]*\],"1":\{"name":"echo","requires":\[\],'  # the menu
        rb'"expected_request_body":\{\}\}[^\n]*\},"server_session_id":"[0-9a-f]{32}",'
        rb'"client_session_id":"c1"\}\n', r.stdout), r.stdout
