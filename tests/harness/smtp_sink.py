#!/usr/bin/python3
"""An SMTP sink: accepts every message and writes it to a directory, one message per file pair.

python3 tests/harness/smtp_sink.py --port P --dir D
Dovecot's submission service relays to it (submission_relay_host/port). Each accepted message
becomes D/NNNNNN.eml (the exact DATA bytes, dot-unstuffed, or the BDAT chunks concatenated)
and then D/NNNNNN.json (envelope: helo, xclient, mail_from, rcpt_to, method); the .json is
renamed into place last, so its presence means the message is complete. Supports EHLO, HELO,
XCLIENT (accepted, answered with a new greeting as Postfix does), MAIL, RCPT, DATA, BDAT, RSET,
NOOP, QUIT. Runs as a subprocess stopped by its PID (SmtpSink below).
"""
import argparse
import itertools
import json
import os
import socketserver
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EHLO_KEYWORDS = ["PIPELINING", "SIZE 104857600", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                 "CHUNKING", "DSN", "XCLIENT ADDR NAME PORT PROTO HELO LOGIN TTL DESTADDR "
                 "DESTPORT"]
_counter = itertools.count(1)
_lock = threading.Lock()


class Handler(socketserver.StreamRequestHandler):
    def send(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.env = {"helo": None, "xclient": []}
        self.reset()
        self.send("220 sink.test ESMTP harness sink")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd, _, arg = line.rstrip(b"\r\n").decode("utf-8", "replace").partition(" ")
            verb = cmd.upper()
            if verb == "EHLO":
                self.env["helo"] = arg
                self.reset()
                lines = ["sink.test"] + EHLO_KEYWORDS
                for i, text in enumerate(lines):
                    self.send(("250 " if i == len(lines) - 1 else "250-") + text)
            elif verb == "HELO":
                self.env["helo"] = arg
                self.send("250 sink.test")
            elif verb == "XCLIENT":
                self.env["xclient"].append(arg)
                self.send("220 sink.test ESMTP harness sink")
            elif verb == "MAIL":
                self.reset()
                self.txn["mail_from"] = arg
                self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                self.txn["rcpt_to"].append(arg)
                self.send("250 2.1.5 Ok")
            elif verb == "DATA":
                self.send("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while True:
                    chunk = self.rfile.readline()
                    if not chunk:
                        return
                    if chunk == b".\r\n":
                        break
                    data += chunk[1:] if chunk.startswith(b".") else chunk
                self.store(bytes(data), "DATA")
            elif verb == "BDAT":
                parts = arg.split()
                size = int(parts[0])
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    return
                self.txn["bdat"] += chunk
                if len(parts) > 1 and parts[1].upper() == "LAST":
                    self.store(bytes(self.txn["bdat"]), "BDAT")
                else:
                    self.send(f"250 2.0.0 {size} octets received")
            elif verb == "RSET":
                self.reset()
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")

    def reset(self):
        self.txn = {"mail_from": None, "rcpt_to": [], "bdat": bytearray()}

    def store(self, data, method):
        with _lock:
            n = next(_counter)
        base = os.path.join(self.server.directory, f"{n:06d}")
        with open(base + ".eml", "wb") as f:
            f.write(data)
        meta = {"helo": self.env["helo"], "xclient": self.env["xclient"],
                "mail_from": self.txn["mail_from"], "rcpt_to": self.txn["rcpt_to"],
                "method": method, "size": len(data)}
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        self.reset()
        self.send(f"250 2.0.0 Ok: queued as SINK{n:06d}")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    """The sink as a subprocess, plus reading what it stored."""

    def __init__(self, directory, port=None):
        from .procs import free_port
        self.dir = os.path.abspath(directory)
        self.port = port or free_port()
        self.proc = None

    def start(self):
        from .procs import port_accepts, wait_until
        from .stack import PYTHON
        os.makedirs(self.dir, exist_ok=True)
        self._log = open(self.dir + ".log", "ab")
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "smtp_sink.py"), "--port",
                                      str(self.port), "--dir", self.dir], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is None and port_accepts(self.port), timeout=15,
                   what="SMTP sink")
        return self

    def stop(self):
        from .procs import stop_process
        stop_process(self.proc)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def count(self):
        return sum(1 for n in os.listdir(self.dir) if n.endswith(".json"))

    def messages(self):
        """Stored messages in arrival order: dicts (envelope) with 'data' (bytes) and 'id'."""
        out = []
        for name in sorted(os.listdir(self.dir)):
            if not name.endswith(".json"):
                continue
            base = os.path.join(self.dir, name[:-5])
            with open(base + ".json") as f:
                meta = json.load(f)
            with open(base + ".eml", "rb") as f:
                meta["data"] = f.read()
            meta["id"] = name[:-5]
            out.append(meta)
        return out

    def wait_for(self, n, since=0, timeout=30):
        """Waits until at least `since + n` messages are stored; returns the new ones."""
        deadline = time.monotonic() + timeout
        while self.count() < since + n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"SMTP sink: {self.count() - since} of {n} messages arrived")
            time.sleep(0.05)
        return self.messages()[since:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    existing = [int(n[:6]) for n in os.listdir(args.dir) if n.endswith(".json")]
    global _counter
    _counter = itertools.count(max(existing, default=0) + 1)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.directory = args.dir
    print(f"smtp sink on 127.0.0.1:{args.port} -> {args.dir}", file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
