"""fived out of something: a backend that is down, descriptors.  Clients
are answered, the log says so without flooding, and fived recovers."""

import re

from conftest import exchange, free_port, wait_for


def test_backend_down_warnings_are_rate_limited(fived):
    f = fived("[service:down]\nbackend = tcp:127.0.0.1:%d\n" % free_port())
    for _ in range(500):
        assert exchange(f.port, b"down\r\n") == b"- service unavailable\r\n"

    def said():
        lines = f.log().splitlines()
        warned = [ln for ln in lines if " warning: " in ln and "service down: backend" in ln]
        counts = [int(n) for ln in lines
                  for n in re.findall(r" warning: backend failure warnings: (\d+) suppressed", ln)]
        return warned, counts

    # Every failure is either a line of its own or counted in a summary.
    wait_for(lambda: len(said()[0]) + sum(said()[1]) == 500, timeout=5,
             what="500 failures to be accounted for")
    warned, counts = said()
    assert 0 < len(warned) <= 20 * 10, len(warned)
    assert counts and sum(counts) >= 500 - len(warned)
