#!/usr/bin/python3
"""An IMAPS server whose certificate is NOT signed by the test CA (bad-certificate upstream).

python3 tests/harness/rogue_imap.py --port P --cert rogue.pem --key rogue.key
It greets like an IMAP server and answers every command with NO; a verifying client must
give up during the TLS handshake. Counts handshakes in its stderr ("handshake ok").
"""
import argparse
import socket
import ssl
import sys
import threading


def serve_client(conn, ctx):
    try:
        with ctx.wrap_socket(conn, server_side=True) as s:
            print("handshake ok", file=sys.stderr, flush=True)
            s.sendall(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] rogue ready\r\n")
            f = s.makefile("rb")
            for line in f:
                tag = line.split(b" ", 1)[0]
                s.sendall(tag + b" NO rogue server\r\n")
    except (ssl.SSLError, OSError) as e:
        print(f"handshake failed: {e}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    while True:
        conn, _ = srv.accept()
        conn.settimeout(30)
        threading.Thread(target=serve_client, args=(conn, ctx), daemon=True).start()


if __name__ == "__main__":
    main()
