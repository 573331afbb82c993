"""An independent implementation of fived's wire formats, written from
docs/PROTOCOL.md: tests speak the protocol byte by byte with it, not
through five or libfive."""

import base64
import ipaddress
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

CONTEXT = b"fived-auth-pubkey-v2"


def ssh_string(b):
    return struct.pack("!I", len(b)) + b


def key_blob(pk):
    return ssh_string(b"ssh-ed25519") + ssh_string(pk)


def load_key(path):
    """An OpenSSH Ed25519 private key file: (private key object, 32-byte public key)."""
    with open(path, "rb") as f:
        sk = serialization.load_ssh_private_key(f.read(), password=None)
    pk = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                      serialization.PublicFormat.Raw)
    return sk, pk


def new_key():
    sk = Ed25519PrivateKey.generate()
    pk = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                      serialization.PublicFormat.Raw)
    return sk, pk


def user_line(user, pk=None):
    if pk is None:
        return b"USER %s\r\n" % user.encode()
    return b"USER %s ssh-ed25519 %s\r\n" % (user.encode(), base64.b64encode(key_blob(pk)))


def parse_challenge(line):
    """b"+ CHALLENGE <session id> <nonce>" -> (session id bytes, nonce bytes)."""
    words = line.strip().split(b" ")
    assert words[:2] == [b"+", b"CHALLENGE"], line
    return words[2], base64.b64decode(words[3], validate=True)


def signed_data(session_id, nonce, user, pk, binding=b"", server_key=b""):
    """PROTOCOL.md 4.2: server_key is the server's static key, b"" when not known."""
    return (ssh_string(CONTEXT) + ssh_string(session_id) + ssh_string(nonce)
            + ssh_string(user.encode()) + ssh_string(key_blob(pk)) + ssh_string(server_key)
            + ssh_string(binding))


def signature_line(sk, data):
    sig = sk.sign(data)
    blob = ssh_string(b"ssh-ed25519") + ssh_string(sig)
    return b"SIGNATURE %s\r\n" % base64.b64encode(blob)


def parse_proxy_v2(data):
    """(src, dst, tlvs, rest) from bytes that start with a PROXY v2 header."""
    assert data[:12] == b"\r\n\r\n\x00\r\nQUIT\n", data[:16]
    ver_cmd, fam, length = struct.unpack("!BBH", data[12:16])
    body = data[16:16 + length]
    assert ver_cmd == 0x21
    src = dst = None
    if fam == 0x11:
        src = (str(ipaddress.ip_address(body[0:4])), struct.unpack("!H", body[8:10])[0])
        dst = (str(ipaddress.ip_address(body[4:8])), struct.unpack("!H", body[10:12])[0])
        body = body[12:]
    elif fam == 0x21:
        src = (str(ipaddress.ip_address(body[0:16])), struct.unpack("!H", body[32:34])[0])
        dst = (str(ipaddress.ip_address(body[16:32])), struct.unpack("!H", body[34:36])[0])
        body = body[36:]
    else:
        assert fam == 0x00
    tlvs = {}
    while body:
        t, n = body[0], struct.unpack("!H", body[1:3])[0]
        tlvs[t] = body[3:3 + n]
        body = body[3 + n:]
    return src, dst, tlvs, data[16 + length:]
