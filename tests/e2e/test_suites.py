"""The record suites of sealed sessions (docs/PROTOCOL.md sections 6.2, 6.3 and 6.7):
the client offers, fived chooses by seal_suites, and the records are XChaCha20-Poly1305
secretstream or AES-256-GCM; spoken by sealwire (written from the document) and by
five."""

import base64
import os

import pytest

from conftest import SLOW, run_five, wait_for
from sealwire import (AES256GCM, REJECT, XCHACHA, Handshake, Rejected, SealedClient,
                      exchange_raw, offer)

T = 5 * SLOW
ECHO = "[service:echo]\nbackend = builtin:echo\n"
BOTH = offer(XCHACHA, AES256GCM)
NAMES = {XCHACHA: "xchacha20poly1305", AES256GCM: "aes256gcm"}


def cpu_has_aes():
    with open("/proc/cpuinfo") as f:
        flags = f.read().split()
    return "aes" in flags and "pclmulqdq" in flags


def suites_server(fived, *suites):
    return fived(ECHO, server="seal_suites = %s\n" % " ".join(NAMES[s] for s in suites))


def echo_round_trip(f, suites):
    """A sealed echo session offering `suites`; returns the suite fived chose."""
    with SealedClient(f.port, f.server_key(), early=b"echo\r\n", timeout=T, suites=suites) as c:
        assert c.recv_until(b"+\r\n") == b"+\r\n"
        data = os.urandom(50000)
        c.send(data[:1], record_size=1)
        c.send(data[1:], record_size=1000)
        assert c.recv_until(lambda got: len(got) >= len(data)) == data
        c.close_write()
        assert c.recv_all() == b""
        return c.suite


@pytest.mark.parametrize("prefs", [(AES256GCM, XCHACHA), (XCHACHA, AES256GCM)])
def test_the_server_chooses_by_its_preference(fived, prefs):
    """Each offer meets each order of preference: the first preferred suite offered
    wins; an empty offer (a client from before suites) is XChaCha20's."""
    f = suites_server(fived, *prefs)
    assert echo_round_trip(f, BOTH) == prefs[0]
    assert echo_round_trip(f, offer(XCHACHA)) == XCHACHA
    assert echo_round_trip(f, offer(AES256GCM)) == AES256GCM
    assert echo_round_trip(f, 0) == XCHACHA
    assert echo_round_trip(f, BOTH | 0x8000) == prefs[0]    # unknown bits are ignored
    wait_for(lambda: len(f.events("closed")) == 5)
    assert [e["reason"] for e in f.events("closed")] == ["done"] * 5


@pytest.mark.parametrize("allowed,offered", [(AES256GCM, XCHACHA), (XCHACHA, AES256GCM)])
def test_a_server_allowing_one_suite_refuses_the_other(fived, allowed, offered):
    f = suites_server(fived, allowed)
    with pytest.raises(Rejected) as e:
        SealedClient(f.port, f.server_key(), early=b"echo\r\n", timeout=T,
                     suites=offer(offered))
    assert e.value.code == 2
    assert exchange_raw(f.port, Handshake(f.server_key(), suites=offer(offered)).initiation,
                        timeout=T) == bytes([REJECT, 1, 2])
    if allowed == AES256GCM:    # an empty offer is XChaCha20's
        assert exchange_raw(f.port, Handshake(f.server_key(), suites=0).initiation,
                            timeout=T) == bytes([REJECT, 1, 2])
    assert "no common suite" in f.log()
    # A reload that allows the other suite too applies to the next session.
    f.server = "seal_suites = %s %s\n" % (NAMES[allowed], NAMES[offered])
    f.reload(ECHO)
    assert echo_round_trip(f, offer(offered)) == offered


def test_aes_records_rekey_after_65536(fived):
    """70000 AES-256-GCM records of one byte from the client: both ends of that
    direction take Noise's Rekey after the 65536th, and the record numbers (the
    nonces) go on."""
    f = suites_server(fived, AES256GCM)
    with SealedClient(f.port, f.server_key(), early=b"echo\r\n", timeout=T,
                      suites=offer(AES256GCM)) as c:
        assert c.suite == AES256GCM
        assert c.recv_until(b"+\r\n") == b"+\r\n"
        data = os.urandom(70000)
        c.send(data, record_size=1)
        assert c.sender.count == 1 + 70000     # the request sent again, then the data
        assert c.recv_until(lambda got: len(got) >= len(data)) == data
        c.close_write()
        assert c.recv_all() == b""


@pytest.mark.parametrize("suite", [XCHACHA, AES256GCM])
def test_five_with_each_suite(fived, suite):
    """five offers AES-256-GCM where its CPU has AES-NI, XChaCha20 always; a server
    that allows one suite gets it, which fived's log names."""
    f = suites_server(fived, suite)
    key = base64.b64encode(f.server_key()).decode()
    data = os.urandom(300000)
    r = run_five("--key", key, "-p", str(f.port), "127.0.0.1", "echo", input=data)
    if suite == AES256GCM and not cpu_has_aes():
        assert r.returncode != 0 and b"refused: cipher suite" in r.stderr, r.stderr
        return
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout == data
    assert "sealed records: %s" % NAMES[suite] in f.log()
