#!/usr/bin/python3
"""`make demo`: a local stand-in for Entra ID, a private Dovecot as "Exchange Online" and the
gateway in front of it (IMAP, POP3 and SMTP submission), all on 127.0.0.1. Runs one real IMAP
session through the gateway, prints how to connect with any client, and keeps running until
Ctrl-C (then stops everything by PID).
"""
import argparse
import imaplib
import os
import secrets
import signal
import socket
import ssl
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.gateway import Gateway  # noqa: E402
from harness.procs import free_port  # noqa: E402
from harness.stack import ALICE, start_stack  # noqa: E402

DEMO_USER = "demo"


def port_or_free(preferred):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def client_session(gw, password):
    """One real client session, printed as it goes."""
    ctx = ssl.create_default_context(cafile=gw.certs.ca)
    print(f"\n--- python imaplib session: IMAP4_SSL(localhost, {gw.imaps_port}) ---")
    with imaplib.IMAP4_SSL("localhost", gw.imaps_port, ssl_context=ctx, timeout=30) as m:
        print(f"server greeting: {m.welcome.decode()}")
        typ, data = m.login(DEMO_USER, password)
        print(f"LOGIN {DEMO_USER} ******** -> {typ} {data[0].decode()}")
        typ, folders = m.list()
        print("LIST: " + ", ".join(f.decode().rsplit(" ", 1)[-1] for f in folders))
        typ, data = m.select("INBOX", readonly=True)
        print(f"SELECT INBOX -> {int(data[0])} messages")
        typ, data = m.fetch("2", "(BODY.PEEK[])")
        header, _, body = data[0][1].decode("utf-8", "replace").partition("\r\n\r\n")
        print("FETCH 2:")
        for line in header.splitlines():
            if line.split(":")[0] in ("From", "To", "Subject", "Date"):
                print("    " + line)
        for line in body.splitlines()[:4]:
            print("    | " + line)
        m.logout()
        print("LOGOUT -> OK")


def write_demo_message(workdir):
    """A small message for the SMTP example (curl --upload-file)."""
    path = os.path.join(workdir, "msg.eml")
    with open(path, "w", newline="\r\n") as f:
        f.write("From: alice@example.test\nTo: bob@example.test\nSubject: mailgate demo\n\n"
                "Sent through mailgate's submission listener.\n")
    return path


def instructions(gw, password, message):
    ca = gw.certs.ca
    pop3s, submission = gw.port("pop3s"), gw.port("submission")
    print(f"""
=== mailgate demo is running ===
  IMAPS (implicit TLS): 127.0.0.1:{gw.imaps_port}   IMAP + STARTTLS: 127.0.0.1:{gw.imap_port}
  POP3S (implicit TLS): 127.0.0.1:{pop3s}   SMTP submission + STARTTLS: 127.0.0.1:{submission}
  user: {DEMO_USER}    password: {password}    (mailbox {ALICE} on the local Dovecot)
  CA certificate to trust: {ca}    (server name: localhost)

  IMAP:
  curl --cacert {ca} --user '{DEMO_USER}:{password}' 'imaps://localhost:{gw.imaps_port}/INBOX;UID=1'
  openssl s_client -quiet -CAfile {ca} -connect localhost:{gw.imaps_port}
  openssl s_client -quiet -CAfile {ca} -starttls imap -connect localhost:{gw.imap_port}
      then type:  a LOGIN {DEMO_USER} {password}   /   b SELECT INBOX   /   c LOGOUT
  POP3 (message 1):
  curl --cacert {ca} --user '{DEMO_USER}:{password}' pop3s://localhost:{pop3s}/1
  SMTP submission (Dovecot hands the message to a local sink):
  curl --cacert {ca} --ssl-reqd --user '{DEMO_USER}:{password}' --mail-from alice@example.test \\
      --mail-rcpt bob@example.test --upload-file {message} smtp://localhost:{submission}
  Any mail client: server localhost, normal password, trust the CA above;
      IMAP {gw.imaps_port} (SSL/TLS) or {gw.imap_port} (STARTTLS), POP3 {pop3s} (SSL/TLS),
      SMTP {submission} (STARTTLS).

  gateway log: {gw.log_path}
  state dir:   {os.path.dirname(gw.dir)}
Press Ctrl-C to stop everything.""", flush=True)


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # same cleanup path as Ctrl-C


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailgate", default="build/mailgate")
    ap.add_argument("--workdir", help="state directory (default: a new temp dir)")
    args = ap.parse_args()
    os.environ["MAILGATE_BIN"] = os.path.abspath(args.mailgate)
    if not os.access(os.environ["MAILGATE_BIN"], os.X_OK):
        sys.exit(f"demo: {args.mailgate} is not built (run make)")
    workdir = args.workdir or tempfile.mkdtemp(prefix="mailgate-demo-")

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    stack = gw = None
    try:
        print("demo: starting the fake Entra ID and a private Dovecot ...", flush=True)
        stack = start_stack(os.path.join(workdir, "stack"))
        gw = Gateway(workdir, stack.certs, stack.idp, stack.dovecot, name="gateway",
                     protocols=("imap", "pop3", "smtp"), log_level="info", workers="auto",
                     auth_failure_delay="2s")
        gw.listeners = {"imaps": ("implicit", port_or_free(9993)),
                        "imap": ("starttls", port_or_free(9143)),
                        "pop3s": ("implicit", port_or_free(9995)),
                        "submission": ("starttls", port_or_free(9587))}
        gw.write_config()
        password = secrets.token_urlsafe(12)
        gw.add_user(DEMO_USER, password, mailbox=ALICE)
        print(f"demo: created user {DEMO_USER!r} (mailbox {ALICE}); starting mailgate ...",
              flush=True)
        gw.start()
        client_session(gw, password)
        instructions(gw, password, write_demo_message(workdir))
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("\ndemo: stopping ...", flush=True)
    finally:
        if gw:
            gw.stop()
        if stack:
            stack.stop()
    print(f"demo: stopped. Files are kept in {workdir}")


if __name__ == "__main__":
    main()
