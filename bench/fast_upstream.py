#!/usr/bin/python3
"""The bench's fast fake upstream: an asyncio IMAPS server that is never the bottleneck.

It accepts any AUTHENTICATE XOAUTH2 (and any LOGIN) without checking, answers SELECT of any
folder with one message, streams `UID FETCH ... BODY.PEEK[]` as one literal of --message-bytes
straight from memory in large writes, holds IDLE until DONE, and says goodbye to LOGOUT. Every
other command gets a plain OK. TLS with the harness certificate (server.pem: localhost and
127.0.0.1, signed by the test CA), so mailgate verifies it as it would a real provider.

Several processes (--processes) share the port with SO_REUSEPORT, so 50 parallel TLS handshakes
are spread over both cores like the gateway's workers. Run as a script; stopped by PID (SIGTERM).
"""
import argparse
import asyncio
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys

CAPABILITIES = b"IMAP4rev1 AUTH=XOAUTH2 AUTH=PLAIN SASL-IR IDLE LITERAL+ UIDPLUS"
WRITE_CHUNK = 1 << 20  # one write per MiB: the kernel and TLS layer see big records


def message_body(size):
    """size bytes of a plain RFC 5322 message (headers, then 76-column lines), built once."""
    head = b"From: bench@example.test\r\nSubject: bench\r\n\r\n"
    line = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2)[:76] + b"\r\n"
    body = head + line * ((size - len(head)) // len(line) + 1)
    return body[:size - 2] + b"\r\n"


class Session:
    def __init__(self, reader, writer, message):
        self.reader, self.writer, self.message = reader, writer, message

    def send(self, text):
        self.writer.write(text if isinstance(text, bytes) else text.encode())

    async def run(self):
        self.send(b"* OK [CAPABILITY " + CAPABILITIES + b"] fast upstream ready\r\n")
        while True:
            line = await self.reader.readline()
            if not line or len(line) > 8192:  # (longer: readline raises ValueError)
                return
            parts = line.rstrip(b"\r\n").split(b" ")
            if len(parts) < 2:
                self.send(b"* BAD no command\r\n")
                continue
            tag, verb = parts[0], parts[1].upper()
            if not await self.answer(tag, verb, parts[2:]):
                return
            await self.writer.drain()

    async def answer(self, tag, verb, args):
        """Answers one command; False when the session ends."""
        if verb == b"AUTHENTICATE" and len(args) == 1:  # no initial response: ask for it
            self.send(b"+ \r\n")
            await self.writer.drain()
            await self.reader.readline()
        if verb == b"CAPABILITY":
            self.send(b"* CAPABILITY " + CAPABILITIES + b"\r\n")
        elif verb in (b"SELECT", b"EXAMINE"):
            self.send(b"* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n"
                      b"* OK [UIDNEXT 2] next\r\n* FLAGS (\\Seen)\r\n")
        elif verb == b"UID" and args and args[0].upper() == b"FETCH":
            await self.fetch()
        elif verb == b"IDLE":
            self.send(b"+ idling\r\n")
            await self.writer.drain()
            await self.reader.readline()  # DONE (or EOF)
        elif verb == b"LOGOUT":
            self.send(b"* BYE fast upstream logging out\r\n" + tag + b" OK LOGOUT completed\r\n")
            await self.writer.drain()
            return False
        self.send(tag + b" OK " + verb + b" completed\r\n")
        return True

    async def fetch(self):
        size = len(self.message)
        self.send(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % size)
        view = memoryview(self.message)
        for offset in range(0, size, WRITE_CHUNK):
            self.writer.write(view[offset:offset + WRITE_CHUNK])
            await self.writer.drain()
        self.send(b")\r\n")


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def listening_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4096)
    return s


async def serve(args):
    message = message_body(args.message_bytes)
    ctx = tls_context(args.cert, args.key)

    async def handle(reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await Session(reader, writer, message).run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, sock=listening_socket(args.port), ssl=ctx,
                                        limit=1 << 16, ssl_handshake_timeout=60)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class FastUpstream:
    """This server as a subprocess of the bench, on a free port; stopped by PID."""

    def __init__(self, workdir, certs, message_bytes, processes=2):
        from harness.procs import free_port
        self.port, self.certs = free_port(), certs
        self.message_bytes, self.processes = message_bytes, processes
        self.log_path = os.path.join(workdir, "fast-upstream.log")
        self.proc = None

    def start(self):
        from harness.procs import port_accepts, wait_until
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--port", str(self.port),
                 "--cert", self.certs.fullchain, "--key", self.certs.key, "--message-bytes",
                 str(self.message_bytes), "--processes", str(self.processes)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is None and port_accepts(self.port), timeout=15,
                   what="fast upstream")
        return self

    def pids(self):
        from harness.procs import child_pids
        return [self.proc.pid] + child_pids(self.proc.pid) if self.proc else []

    def stop(self):
        from harness.procs import stop_process
        stop_process(self.proc)
        self.proc = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--message-bytes", type=int, default=20 << 20)
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    raise_fd_limit()
    children = []
    for _ in range(args.processes - 1):  # the parent is the last server process
        pid = os.fork()
        if pid == 0:
            asyncio.run(serve(args))
            os._exit(0)
        children.append(pid)
    try:
        asyncio.run(serve(args))
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
