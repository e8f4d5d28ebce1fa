"""A raw IMAP client for byte-exact protocol tests (implicit TLS or plain + STARTTLS)."""
import socket
import ssl

from .lineclient import Closed as ConnectionClosed
from .lineclient import LineClient

__all__ = ["ConnectionClosed", "RawImap", "capabilities", "imap_quote"]


class RawImap(LineClient):
    """IMAP on top of the shared line client (its own buffer, so STARTTLS can swap the socket
    safely): tagged commands, literal bytes, STARTTLS."""

    def __init__(self, port, tls=True, ca_file=None, host="127.0.0.1", timeout=15):
        super().__init__(port, tls=tls, ca_file=ca_file, host=host, timeout=timeout)

    def read_bytes(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_into(self, digest, n):
        """Feeds the next n bytes to digest.update() as they come: a 100 MB literal is neither
        held nor copied (read_bytes grows the buffer one recv at a time)."""
        digest.update(self.buf[:n])
        left = n - min(n, len(self.buf))
        self.buf = self.buf[n:]
        while left:
            chunk = self.sock.recv(min(left, 1 << 20))
            if not chunk:
                raise ConnectionClosed(f"connection closed {left} bytes before the end")
            digest.update(chunk)
            left -= len(chunk)

    def read_until_tagged(self, tag):
        """(untagged/continuation lines, tagged completion line)."""
        lines = []
        while True:
            line = self.readline()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)

    def command(self, tag, text):
        self.send(f"{tag} {text}\r\n".encode() if isinstance(text, str)
                  else tag.encode() + b" " + text + b"\r\n")
        return self.read_until_tagged(tag)

    def starttls(self, tag="s1"):
        _, done = self.command(tag, "STARTTLS")
        if not done.startswith(f"{tag} OK"):
            raise AssertionError(f"STARTTLS refused: {done}")
        leftover = self.buf
        self.buf = b""
        self.wrap()
        return done, leftover

    def closed_by_peer(self, timeout=5):
        """True when the server closes the connection (after reading what is pending)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                self._fill()
        except ConnectionClosed:
            return True
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def capabilities(line):
    """The capability words of a CAPABILITY response or an OK [CAPABILITY ...] line."""
    if "[CAPABILITY " in line:
        return line.split("[CAPABILITY ", 1)[1].split("]", 1)[0].split()
    if line.startswith("* CAPABILITY "):
        return line[len("* CAPABILITY "):].split()
    return []


def imap_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
