#!/usr/bin/python3
"""`make bench`: mailgate vs a direct XOAUTH2 connection to the same local Dovecot.

(a) FETCH throughput of one large message (BODY.PEEK[], several iterations, one session each
    way: direct XOAUTH2 login vs password login through mailgate) in MB/s;
(b) login + SELECT + LOGOUT, sequential, N times: direct XOAUTH2 (token fetched once) vs
    through mailgate (password, token and password check already cached) in ms per session;
(c) POP3 RETR throughput of one large message (same size, several iterations, one session);
(d) SMTP send rate: N small messages on one authenticated submission connection (Dovecot's
    submission relays them to the harness's SMTP sink), messages/s.
Prints a table with the targets (FETCH >= 0.9x direct, login <= 1.3x direct). It never fails on
the numbers; it exits non-zero only if something does not work at all.
"""
import argparse
import imaplib
import poplib
import smtplib
import os
import ssl
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from harness.dovecot import (big_message, pop3_auth_xoauth2, reseed_mailbox, sha256,  # noqa: E402
                             smtp_auth_xoauth2, small_message, xoauth2_string)
from harness.gateway import Gateway  # noqa: E402
from harness.stack import ALICE, DAVE, start_stack  # noqa: E402

BENCH_USER, BENCH_PASSWORD = "bench", "Bench-Password-1"
BENCH_POP_USER = "benchpop"
FOLDER = "Bench"


class Endpoint:
    """How to open a logged-in session one way or the other."""

    def __init__(self, name, port, ca, login):
        self.name, self.port, self.login = name, port, login
        self.ctx = ssl.create_default_context(cafile=ca)

    def open(self):
        m = imaplib.IMAP4_SSL("localhost", self.port, ssl_context=self.ctx, timeout=120)
        self.login(m)
        return m


def fetch_throughput(ep, size, iterations, expected_sha):
    m = ep.open()
    try:
        m.select(FOLDER, readonly=True)
        typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")  # warm caches
        if typ != "OK" or sha256(data[0][1]) != expected_sha:
            raise RuntimeError(f"{ep.name}: fetched message differs")
        start = time.perf_counter()
        for _ in range(iterations):
            typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
            if len(data[0][1]) != size:
                raise RuntimeError(f"{ep.name}: short fetch")
        elapsed = time.perf_counter() - start
    finally:
        m.logout()
    return size * iterations / elapsed / 1e6


def login_latency(ep, count):
    def one():
        start = time.perf_counter()
        m = ep.open()
        m.select("INBOX", readonly=True)
        m.logout()
        return (time.perf_counter() - start) * 1000

    for _ in range(5):  # warm up: token cache, auth cache, Dovecot processes
        one()
    samples = [one() for _ in range(count)]
    return statistics.mean(samples), statistics.median(samples)


def pop3_retr_throughput(open_pop3, size, iterations, expected_sha):
    """MB/s of RETR 1 (one session, several iterations)."""
    p = open_pop3()
    try:
        if sha256(b"\r\n".join(p.retr(1)[1]) + b"\r\n") != expected_sha:
            raise RuntimeError("POP3: fetched message differs")
        start = time.perf_counter()
        for _ in range(iterations):
            p.retr(1)
        elapsed = time.perf_counter() - start
    finally:
        p.quit()
    return size * iterations / elapsed / 1e6


def smtp_send_rate(open_smtp, count):
    """Messages/s: `count` small messages on one authenticated connection."""
    s = open_smtp()
    try:
        msg = small_message("Bench SMTP", "sink@remote.test")
        s.sendmail(ALICE, ["sink@remote.test"], msg)  # warm up
        start = time.perf_counter()
        for _ in range(count):
            s.sendmail(ALICE, ["sink@remote.test"], msg)
        elapsed = time.perf_counter() - start
    finally:
        s.quit()
    return count / elapsed


def pop_smtp_endpoints(stack, gw, token):
    ctx = ssl.create_default_context(cafile=stack.certs.ca)

    def pop_direct():
        p = poplib.POP3_SSL("localhost", stack.dovecot.pop3s_port, context=ctx, timeout=120)
        pop3_auth_xoauth2(p, DAVE, token)
        return p

    def pop_via():
        p = poplib.POP3_SSL("localhost", gw.port("pop3s"), context=ctx, timeout=120)
        p.user(BENCH_POP_USER)
        p.pass_(BENCH_PASSWORD)
        return p

    def smtp_direct():
        s = smtplib.SMTP("localhost", stack.dovecot.submission_port, timeout=120)
        s.starttls(context=ctx)
        s.ehlo()
        smtp_auth_xoauth2(s, ALICE, token)
        return s

    def smtp_via():
        s = smtplib.SMTP("localhost", gw.port("submission"), timeout=120)
        s.starttls(context=ctx)
        s.login(BENCH_USER, BENCH_PASSWORD)
        return s

    return {"direct": (pop_direct, smtp_direct), "mailgate": (pop_via, smtp_via)}


def setup(workdir, mailgate, size):
    stack = start_stack(os.path.join(workdir, "stack"))
    token = stack.idp.token()
    message = big_message("Benchmark message", ALICE, size)
    m = stack.dovecot.login_xoauth2(ALICE, token)
    try:
        m.create(FOLDER)
        if m.append(FOLDER, None, None, message)[0] != "OK":
            raise RuntimeError("APPEND of the benchmark message failed")
    finally:
        m.logout()
    os.environ["MAILGATE_BIN"] = os.path.abspath(mailgate)
    pop_message = big_message("Benchmark POP3 message", DAVE, size)
    reseed_mailbox(stack.dovecot, token, DAVE, [pop_message])
    gw = Gateway(workdir, stack.certs, stack.idp, stack.dovecot, name="gateway",
                 log_level="warn", workers="auto", protocols=("imap", "pop3", "smtp"))
    gw.write_config()
    gw.add_user(BENCH_USER, BENCH_PASSWORD, mailbox=ALICE)
    gw.add_user(BENCH_POP_USER, BENCH_PASSWORD, mailbox=DAVE)
    gw.start()
    direct = Endpoint("direct", stack.dovecot.imaps_port, stack.certs.ca,
                      lambda m: m.authenticate("XOAUTH2", lambda _: xoauth2_string(ALICE, token)))
    via = Endpoint("mailgate", gw.imaps_port, stack.certs.ca,
                   lambda m: m.login(BENCH_USER, BENCH_PASSWORD))
    return stack, gw, direct, via, sha256(message), sha256(pop_message), token


def report(size_mb, iterations, logins, fetch, login, retr=None, sends=None, send_rate=None):
    rows = []
    if fetch:
        ratio = fetch["mailgate"] / fetch["direct"]
        rows.append((f"FETCH {size_mb} MB x{iterations} (MB/s)", f"{fetch['direct']:.1f}",
                     f"{fetch['mailgate']:.1f}", f"{ratio:.2f}x", ">= 0.90x",
                     "ok" if ratio >= 0.9 else "MISSED"))
    if login:
        ratio = login["mailgate"][0] / login["direct"][0]
        rows.append((f"login+SELECT+LOGOUT x{logins} (ms, mean)", f"{login['direct'][0]:.2f}",
                     f"{login['mailgate'][0]:.2f}", f"{ratio:.2f}x", "<= 1.30x",
                     "ok" if ratio <= 1.3 else "MISSED"))
        rows.append(("  (median ms)", f"{login['direct'][1]:.2f}", f"{login['mailgate'][1]:.2f}",
                     f"{login['mailgate'][1] / login['direct'][1]:.2f}x", "", ""))
    if retr:
        ratio = retr["mailgate"] / retr["direct"]
        rows.append((f"POP3 RETR {size_mb} MB x{iterations} (MB/s)", f"{retr['direct']:.1f}",
                     f"{retr['mailgate']:.1f}", f"{ratio:.2f}x", "", ""))
    if send_rate:
        ratio = send_rate["mailgate"] / send_rate["direct"]
        rows.append((f"SMTP send x{sends}, one session (msg/s)", f"{send_rate['direct']:.1f}",
                     f"{send_rate['mailgate']:.1f}", f"{ratio:.2f}x", "", ""))
    header = ("measurement", "direct", "mailgate", "ratio", "target", "")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailgate", default=os.path.join(ROOT, "build", "mailgate"))
    ap.add_argument("--size-mb", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--sends", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating direct/mailgate rounds; medians are reported")
    ap.add_argument("--only", default="fetch,login,pop3,smtp",
                    help="comma-separated subset of fetch,login,pop3,smtp")
    ap.add_argument("--workdir")
    args = ap.parse_args()
    if not os.access(args.mailgate, os.X_OK):
        sys.exit(f"bench: {args.mailgate} is not built (run make)")
    workdir = args.workdir or tempfile.mkdtemp(prefix="mailgate-bench-")
    size = args.size_mb * 1024 * 1024

    stack = gw = None
    try:
        print(f"bench: setting up in {workdir} ...", flush=True)
        stack, gw, direct, via, digest, pop_digest, token = setup(workdir, args.mailgate, size)
        fetch, login, retr, send_rate = {}, {}, {}, {}
        endpoints = pop_smtp_endpoints(stack, gw, token)
        only = set(args.only.split(","))
        # Direct and mailgate alternate, round after round, and each reports its median: a
        # burst of load from elsewhere then hits both sides alike instead of one.
        for rnd in range(1, args.rounds + 1):
            print(f"bench: round {rnd}/{args.rounds} ...", flush=True)
            for ep in (direct, via):
                if "fetch" in only:
                    fetch.setdefault(ep.name, []).append(
                        fetch_throughput(ep, size, args.iterations, digest))
                if "login" in only:
                    login.setdefault(ep.name, []).append(login_latency(ep, args.logins))
            for name, (open_pop3, open_smtp) in endpoints.items():
                if "pop3" in only:
                    retr.setdefault(name, []).append(
                        pop3_retr_throughput(open_pop3, size, args.iterations, pop_digest))
                if "smtp" in only:
                    send_rate.setdefault(name, []).append(smtp_send_rate(open_smtp, args.sends))
        fetch = {k: statistics.median(v) for k, v in fetch.items()}
        retr = {k: statistics.median(v) for k, v in retr.items()}
        send_rate = {k: statistics.median(v) for k, v in send_rate.items()}
        login = {k: (statistics.median(m for m, _ in v), statistics.median(d for _, d in v))
                 for k, v in login.items()}
        print()
        report(args.size_mb, args.iterations, args.logins, fetch, login, retr, args.sends,
               send_rate)
    finally:
        if gw:
            gw.stop()
        if stack:
            stack.stop()


if __name__ == "__main__":
    main()
