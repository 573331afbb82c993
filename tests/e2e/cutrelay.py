"""A TCP relay between five and fived that cuts connections on command.

It listens on 127.0.0.1 (a port the OS chose) and connects each client to
fived: from 127.0.0.1 at first, from 127.0.0.2 after its first cut, so
that a session attached again comes from another address.  cut() resets
every connection it carries, both sides (SO_LINGER 0, then close), as a
network that drops a path does to both ends; cut_at(n) does it once n
bytes (both ways together) have passed since the last cut.  While it is
down (down(), up()), new connections are reset as they come.
"""

import socket
import struct
import threading

from conftest import stop_listening

CHUNK = 65536
RESET = struct.pack("ii", 1, 0)


def reset(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class CutRelay:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.cuts = 0
        self.connections = 0
        self.sources = []  # the source address of each connection to fived
        self.passed = 0  # bytes since the last cut
        self.total = 0
        self.thresholds = []
        self.is_down = False
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                down = self.is_down
                source = "127.0.0.2" if self.cuts > 0 else "127.0.0.1"
            if down:
                reset(client)
                continue
            server = socket.socket()
            try:
                server.bind((source, 0))
                server.connect(self.target)
            except OSError:
                reset(client)
                reset(server)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, server)
            with self.lock:
                self.pairs.append(pair)
                self.connections += 1
                self.sources.append(source)
            threading.Thread(target=self._pump, args=(client, server, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, pair), daemon=True).start()

    def _pump(self, src, dst, pair):
        while True:
            try:
                data = src.recv(CHUNK)
            except OSError:
                break
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:
                if pair not in self.pairs:
                    return
                self.passed += len(data)
                self.total += len(data)
                due = bool(self.thresholds) and self.passed >= self.thresholds[0]
            if due:
                self.cut()
                return
            try:
                dst.sendall(data)
            except OSError:
                break
        self._drop(pair)

    def _drop(self, pair):
        with self.lock:
            if pair not in self.pairs:
                return
            self.pairs.remove(pair)
        for s in pair:
            reset(s)

    def cut(self):
        """Resets every connection carried now, both sides."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            self.cuts += 1
            self.passed = 0
            if self.thresholds:
                self.thresholds.pop(0)
        for pair in pairs:
            for s in pair:
                reset(s)

    def cut_at(self, *counts):
        """Cuts once each count of bytes has passed since the cut before."""
        with self.lock:
            self.thresholds = list(counts)
            self.passed = 0

    def down(self):
        """Cuts, and resets every connection that comes until up()."""
        with self.lock:
            self.is_down = True
        self.cut()

    def up(self):
        with self.lock:
            self.is_down = False

    def close(self):
        self.running = False
        stop_listening(self.sock)
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                reset(s)
