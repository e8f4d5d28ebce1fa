"""The bench's IMAP client: one way to log in to any endpoint, one login cycle, one FETCH.

Built on the harness's raw IMAP client, with one TLS context shared by every connection of a
process (loading the CA file per connection would make the client the bottleneck) and a
literal reader that discards into a reused buffer, so one Python process can keep up with a
fast relay.
"""
import base64
import hashlib
import re
import ssl
from dataclasses import dataclass

from harness.imapclient import RawImap

LITERAL_AT_END = re.compile(rb"\{(\d+)\}$")
_CONTEXTS = {}


def shared_context(ca_file):
    if ca_file not in _CONTEXTS:
        _CONTEXTS[ca_file] = ssl.create_default_context(cafile=ca_file)
    return _CONTEXTS[ca_file]


@dataclass(frozen=True)
class Endpoint:
    """Where and how to log in: kind "xoauth2" (secret: a token; direct and through haproxy)
    or "login" (secret: the gateway password). Picklable, for the load processes."""
    name: str
    port: int
    ca_file: str
    kind: str
    user: str
    secret: str


class BenchImap(RawImap):
    def wrap(self):
        self.sock = shared_context(self.ca_file).wrap_socket(self.sock,
                                                             server_hostname="localhost")

    def expect_ok(self, tag, text):
        lines, done = self.command(tag, text)
        if not done.startswith(f"{tag} OK"):
            raise RuntimeError(f"{text.split(' ', 1)[0]} refused: {done}")
        return lines

    def skip_bytes(self, n, scratch):
        """Reads and drops n bytes; returns them hashed when scratch is None (a check)."""
        digest = hashlib.sha256() if scratch is None else None
        head = self.buf[:n]
        self.buf = self.buf[n:]
        if digest:
            digest.update(head)
        left = n - len(head)
        view = memoryview(scratch if scratch is not None else bytearray(1 << 20))
        while left:
            got = self.sock.recv_into(view, min(left, len(view)))
            if not got:
                raise ConnectionError(f"connection closed {left} bytes before the end")
            if digest:
                digest.update(view[:got])
            left -= got
        return digest.hexdigest() if digest else None


def xoauth2(user, token):
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


def open_session(ep, timeout=120):
    """A connected, logged-in client."""
    c = BenchImap(ep.port, ca_file=ep.ca_file, timeout=timeout)
    if not c.greeting.startswith("* OK"):
        raise RuntimeError(f"{ep.name}: greeting {c.greeting!r}")
    if ep.kind == "xoauth2":
        c.expect_ok("a", f"AUTHENTICATE XOAUTH2 {xoauth2(ep.user, ep.secret)}")
    else:
        c.expect_ok("a", f'LOGIN "{ep.user}" "{ep.secret}"')
    return c


def logout(c):
    try:
        c.command("z", "LOGOUT")
    finally:
        c.close()


def login_cycle(ep, select=None):
    """Connect, log in, optionally SELECT, LOGOUT: one fresh TLS connection each time."""
    c = open_session(ep)
    if select:
        c.expect_ok("b", f"EXAMINE {select}")
    logout(c)


def fetch_message(c, uid, scratch=None):
    """UID FETCH uid BODY.PEEK[] on a selected session; returns (size, sha256 or None)."""
    c.send(f"f UID FETCH {uid} (BODY.PEEK[])\r\n".encode())
    size = digest = None
    while True:
        line = c.readline_bytes()
        if line.startswith(b"f "):
            if not line.startswith(b"f OK") or size is None:
                raise RuntimeError(f"FETCH failed: {line!r}")
            return size, digest
        literal = LITERAL_AT_END.search(line)
        if literal:
            size = int(literal.group(1))
            digest = c.skip_bytes(size, scratch)
