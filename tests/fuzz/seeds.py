#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets whose inputs are structured
(a mode byte, length-prefixed chunks, plans of records): handshake,
client_seal, client_mux and client_replies.  Run from the top of the tree;
the seeds are committed, so this only needs running when a format changes.

    python3 tests/fuzz/seeds.py
"""
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# TAI64N of 2023-11-14 22:13:20 UTC, as the client puts in IK message 1.
TAI64N = struct.pack(">QI", (1 << 62) + 1700000000, 123456789)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def chunk(b):
    return struct.pack(">H", len(b)) + b


def early(b):
    return struct.pack(">H", len(b)) + b


# --- handshake: mode, then chunks (msg1, msg2, msg3 payloads, two plans) ---------------

def message(b):
    """A plan's MESSAGE record of b (1 to 256 bytes)."""
    return bytes([0, len(b) - 1]) + b


FINAL = bytes([1])


def raw(b):
    return bytes([2, len(b) - 1]) + b


def flip(bit):
    return bytes([3 | (bit << 2)])


def handshake():
    ik1 = TAI64N + early(b"echo\r\nhello")
    resp = bytes([1, 1])
    resp_late = bytes([1, 0])
    fin = early(b"echo\r\n")
    up = message(b"hello") + message(b"world") + FINAL
    down = message(b"+\r\n") + message(b"hello") + FINAL
    write("handshake", "ik", bytes([0]) + chunk(ik1) + chunk(resp) + chunk(b"") +
          chunk(up) + chunk(down))
    write("handshake", "ik_empty", bytes([0]) + chunk(TAI64N + early(b"")) +
          chunk(resp_late) + chunk(b"") + chunk(FINAL) + chunk(FINAL))
    write("handshake", "xx", bytes([1]) + chunk(b"") + chunk(resp) + chunk(fin) +
          chunk(up) + chunk(down))
    # A rekey after the second record each way (mode bits 1-7: records before it, minus one).
    many = b"".join(message(bytes([i]) * (i + 1)) for i in range(6)) + FINAL
    write("handshake", "ik_rekey", bytes([1 << 1]) + chunk(ik1) + chunk(resp) +
          chunk(b"") + chunk(many) + chunk(many))
    write("handshake", "xx_rekey", bytes([1 | 1 << 1]) + chunk(b"") + chunk(resp) +
          chunk(fin) + chunk(many) + chunk(many))
    write("handshake", "tampered", bytes([1]) + chunk(b"") + chunk(resp) + chunk(fin) +
          chunk(message(b"abc") + flip(40) + message(b"def")) +
          chunk(message(b"x") + FINAL + raw(b"after")))
    write("handshake", "ik_bad_payload", bytes([0]) + chunk(b"\x00" * 14) + chunk(resp))


if __name__ == "__main__":
    handshake()
