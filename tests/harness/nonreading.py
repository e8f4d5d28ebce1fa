"""A TLS client that pipelines without reading: TLS in memory (ssl.MemoryBIO) over a
non-blocking socket, so sending never blocks the test and reading happens only when asked."""
import select
import socket
import ssl
import time


class NonReadingTls:
    def __init__(self, port, ca_file, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setblocking(False)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = ssl.create_default_context(cafile=ca_file)
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.pending = b""  # TLS bytes the kernel did not take yet
        self.received = bytearray()  # decrypted bytes read so far
        self.closed = False  # the server closed the connection
        self._run(self._handshake_done, 10, "TLS handshake")

    def _handshake_done(self):
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def write(self, data):
        """Queues data (encrypted now, sent by push())."""
        self.tls.write(data)
        self.pending += self.outgoing.read()

    def push(self):
        """Sends what the kernel takes now; returns the number of bytes sent."""
        self.pending += self.outgoing.read()
        if not self.pending:
            return 0
        try:
            n = self.sock.send(self.pending)
        except BlockingIOError:
            return 0
        self.pending = self.pending[n:]
        return n

    def _pull(self, wait):
        """Receives and decrypts what has arrived (waiting up to wait seconds for it)."""
        self.push()
        want_write = [self.sock] if self.pending else []
        readable, _, _ = select.select([self.sock], want_write, [], wait)
        if readable:
            data = self.sock.recv(1 << 20)
            if not data:
                self.closed = True
                return
            self.incoming.write(data)
        while True:
            try:
                chunk = self.tls.read(1 << 20)
            except ssl.SSLWantReadError:
                return
            if not chunk:  # close_notify
                self.closed = True
                return
            self.received += chunk

    def _run(self, done, timeout, what):
        deadline = time.monotonic() + timeout
        while not done():
            last = bytes(self.received[-300:])
            if self.closed:
                raise ConnectionError(f"{what}: closed by the server; got {last!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: got {last!r}")
            self._pull(0.05)

    def read_until(self, done, timeout=60, what="reply"):
        """Reads (and sends what is pending) until done(received) is true."""
        self._run(lambda: done(self.received), timeout, what)

    def take(self):
        data, self.received = bytes(self.received), bytearray()
        return data

    def close(self):
        self.sock.close()
