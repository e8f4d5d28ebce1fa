#!/usr/bin/python3
"""A misbehaving SMTP upstream: STARTTLS (test CA certificate), AUTH XOAUTH2 accepting any token.

python3 tests/harness/rogue_smtp.py --port P --cert fullchain.pem --key key.pem --mode drop|451
MAIL/RCPT are accepted. On DATA (or BDAT) it answers 354, then
  drop: reads part of the message (--read bytes) and closes the connection abruptly;
  451:  reads the whole message and answers `451 4.3.0 Rogue upstream: try again later`.
Events go to stderr ("auth ok", "data started", "dropped after N bytes", "answered 451").
Runs as a subprocess stopped by its PID (RogueSmtp below).
"""
import argparse
import os
import socket
import ssl
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPLY_451 = "451 4.3.0 Rogue upstream: try again later"


def log(text):
    print(text, file=sys.stderr, flush=True)


class Conn:
    def __init__(self, sock, ctx, args):
        self.sock, self.ctx, self.args = sock, ctx, args
        self.buf = b""
        self.tls = False

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def read_some(self, limit):
        """Up to `limit` bytes of message (what is buffered counts)."""
        got = len(self.buf)
        while got < limit:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        return got

    def drop(self, got):
        log(f"dropped after {got} bytes")
        try:  # RST rather than FIN: as abrupt as it gets
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        except OSError:
            pass
        self.sock.close()

    def ehlo(self):
        caps = ["rogue.test", "PIPELINING", "SIZE 104857600", "8BITMIME", "ENHANCEDSTATUSCODES",
                "CHUNKING"]
        caps.append("AUTH XOAUTH2" if self.tls else "STARTTLS")
        for i, c in enumerate(caps):
            self.send(("250 " if i == len(caps) - 1 else "250-") + c)

    def run(self):
        self.send("220 rogue.test ESMTP rogue upstream")
        while True:
            line = self.readline()
            if line is None:
                return
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self.ehlo()
            elif verb == "STARTTLS" and not self.tls:
                self.send("220 2.0.0 Ready to start TLS")
                self.sock = self.ctx.wrap_socket(self.sock, server_side=True)
                self.tls, self.buf = True, b""
            elif verb == "AUTH" and self.tls:
                if len(arg.split()) < 2:
                    self.send("334 ")
                    if self.readline() is None:
                        return
                log("auth ok")
                self.send("235 2.7.0 Authentication successful")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.send("250 2.0.0 Ok")
            elif verb == "DATA":
                self.send("354 go ahead")
                log("data started")
                if self.args.mode == "drop":
                    return self.drop(self.read_some(self.args.read))
                while True:
                    chunk = self.readline()
                    if chunk is None:
                        return
                    if chunk == ".":
                        break
                log("answered 451")
                self.send(REPLY_451)
            elif verb == "BDAT":
                log("data started")
                if self.args.mode == "drop":
                    return self.drop(self.read_some(min(self.args.read, int(arg.split()[0]))))
                size = int(arg.split()[0])
                while len(self.buf) < size:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    self.buf += chunk
                self.buf = self.buf[size:]
                if "LAST" in arg.upper():
                    log("answered 451")
                    self.send(REPLY_451)
                else:
                    self.send("250 2.0.0 chunk ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 unknown command")


def serve(conn, ctx, args):
    try:
        Conn(conn, ctx, args).run()
    except (OSError, ssl.SSLError, ValueError) as e:
        log(f"connection error: {e}")
    finally:
        try:
            conn.close()
        except OSError:
            pass


class RogueSmtp:
    """The rogue server as a subprocess (stopped by its PID)."""

    def __init__(self, workdir, certset, mode="drop", read=64 * 1024):
        from .procs import free_port
        self.port = free_port()
        self.certs, self.mode, self.read = certset, mode, read
        self.log_path = os.path.join(workdir, f"rogue-smtp-{mode}-{self.port}.log")
        self.proc = None

    def start(self):
        from .procs import port_accepts, wait_until
        from .stack import PYTHON
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "rogue_smtp.py"), "--port", str(self.port), "--cert",
             self.certs.fullchain, "--key", self.certs.key, "--mode", self.mode, "--read",
             str(self.read)], stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is None and port_accepts(self.port), timeout=15,
                   what="rogue SMTP server")
        return self

    def stop(self):
        from .procs import stop_process
        stop_process(self.proc)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--mode", choices=("drop", "451"), default="drop")
    ap.add_argument("--read", type=int, default=64 * 1024)
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    while True:
        conn, _ = srv.accept()
        conn.settimeout(60)
        threading.Thread(target=serve, args=(conn, ctx, args), daemon=True).start()


if __name__ == "__main__":
    main()
