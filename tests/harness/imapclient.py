"""A raw IMAP client for byte-exact protocol tests (implicit TLS or plain + STARTTLS)."""
import socket
import ssl


class ConnectionClosed(Exception):
    pass


class RawImap:
    """Line-oriented, with its own buffer so STARTTLS can swap the socket safely."""

    def __init__(self, port, tls=True, ca_file=None, host="127.0.0.1", timeout=15):
        self.ca_file = ca_file
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        if tls:
            self._wrap()
        self.greeting = self.readline()

    def _wrap(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed(f"connection closed; pending {self.buf[:200]!r}")
        self.buf += chunk

    def readline(self):
        """One line without CRLF, as text (undecodable bytes escaped)."""
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "backslashreplace")

    def read_bytes(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

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
        self._wrap()
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

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def capabilities(line):
    """The capability words of a CAPABILITY response or an OK [CAPABILITY ...] line."""
    if "[CAPABILITY " in line:
        return line.split("[CAPABILITY ", 1)[1].split("]", 1)[0].split()
    if line.startswith("* CAPABILITY "):
        return line[len("* CAPABILITY "):].split()
    return []


def imap_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
