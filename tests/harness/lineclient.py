"""A raw CRLF line client for POP3/SMTP protocol tests (implicit TLS or plain + upgrade)."""
import socket
import ssl


class Closed(Exception):
    pass


class LineClient:
    def __init__(self, port, tls=True, ca_file=None, host="127.0.0.1", timeout=20):
        self.ca_file = ca_file
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        if tls:
            self.wrap()
        self.greeting = self.readline()

    def wrap(self):
        """TLS on the current socket (after STLS/STARTTLS was answered); nothing buffered."""
        assert not self.buf, f"plaintext after the TLS go-ahead: {self.buf!r}"
        ctx = ssl.create_default_context(cafile=self.ca_file)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Closed(f"connection closed; pending {self.buf[:200]!r}")
        self.buf += chunk

    def readline_bytes(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def readline(self):
        return self.readline_bytes().decode("utf-8", "backslashreplace")

    def cmd(self, line):
        """Sends one command line, returns the first answer line."""
        self.send(line + "\r\n")
        return self.readline()

    def smtp_reply(self):
        """All lines of one SMTP reply (multi-line 250-...)."""
        lines = [self.readline()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.readline())
        return lines

    def smtp(self, line):
        self.send(line + "\r\n")
        return self.smtp_reply()

    def pop3_multiline(self):
        """The body of a POP3 multi-line answer (after +OK), dot-unstuffed, CRLF line ends."""
        out = []
        while True:
            line = self.readline_bytes()
            if line == b".":
                return b"".join(out)
            out.append((line[1:] if line.startswith(b".") else line) + b"\r\n")

    def closed(self, timeout=10):
        """True when the peer closes (EOF or reset) within timeout; drains anything sent."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
