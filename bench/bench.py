#!/usr/bin/python3
"""`make bench`: mailgate side by side with a direct XOAUTH2 connection and an HAProxy TLS bridge.

Two upstreams: the fast fake upstream (bench/fast_upstream.py: the gateway's overhead alone)
and the harness's Dovecot (the realistic case). Phases (--only, comma-separated):
  logins   logins/s with 50 parallel clients (connect, login, LOGOUT), server CPU ms per login
  fetch    one FETCH stream of a large message, MiB/s, server CPU ms per MiB
  latency  sequential login+SELECT+LOGOUT, ms
  idle     RSS per IDLE session at 1,000 / 5,000 / 9,000 sessions, and a minute after they close
           (fast upstream; haproxy and mailgate)
  pop3     POP3 RETR of the large message, MB/s (Dovecot; direct and mailgate)
  smtp     SMTP submissions on one connection, messages/s (Dovecot; direct and mailgate)
"Server CPU" is the utime+stime of the gateway's workers (of haproxy for the bridge) over the
phase; the broker's share is its own row. One table with the targets of issue 13 is printed; the
bench never fails on the numbers, only when something does not work.
"""
import argparse
import os
import poplib
import signal
import smtplib
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]

import phases  # noqa: E402
from harness.dovecot import pop3_auth_xoauth2, sha256, small_message, smtp_auth_xoauth2  # noqa
from harness.stack import ALICE, DAVE  # noqa: E402
from table import Row, render, render_markdown  # noqa: E402
from world import BENCH_PASSWORD, BENCH_POP_USER, BENCH_USER, start_world  # noqa: E402

PHASES = ("logins", "fetch", "latency", "idle", "pop3", "smtp")
FULL = {"size_mib": 20, "rounds": 3, "login_seconds": 10.0, "fetch_seconds": 5.0,
        "logins": 200, "idle_sessions": "1000,5000,9000", "idle_settle": 60.0, "sends": 200}
QUICK = {"size_mib": 4, "rounds": 1, "login_seconds": 2.0, "fetch_seconds": 1.0,
         "logins": 20, "idle_sessions": "200", "idle_settle": 3.0, "sends": 20}


def pop3_retr(world, opts):
    """MB/s of RETR 1 (one session, several iterations), direct vs mailgate."""
    stack, gw = world.stack, world.gateways["dovecot"]
    ctx = ssl.create_default_context(cafile=stack.certs.ca)

    def direct():
        p = poplib.POP3_SSL("localhost", stack.dovecot.pop3s_port, context=ctx, timeout=120)
        pop3_auth_xoauth2(p, DAVE, world.token)
        return p

    def via():
        p = poplib.POP3_SSL("localhost", gw.port("pop3s"), context=ctx, timeout=120)
        p.user(BENCH_POP_USER)
        p.pass_(BENCH_PASSWORD)
        return p

    def measure(open_pop3):
        p = open_pop3()
        try:
            if sha256(b"\r\n".join(p.retr(1)[1]) + b"\r\n") != world.pop_sha:
                raise RuntimeError("POP3: fetched message differs")
            start = time.perf_counter()
            for _ in range(opts.iterations):
                p.retr(1)
            return opts.size_mib * opts.iterations / (time.perf_counter() - start)
        finally:
            p.quit()

    return [Row(f"dovecot: POP3 RETR {opts.size_mib} MiB x{opts.iterations}, MiB/s",
                {"direct": measure(direct), "mailgate": measure(via)}, 0)]


def smtp_send(world, opts):
    """Messages/s: opts.sends small messages on one authenticated submission connection."""
    stack, gw = world.stack, world.gateways["dovecot"]
    ctx = ssl.create_default_context(cafile=stack.certs.ca)

    def direct():
        s = smtplib.SMTP("localhost", stack.dovecot.submission_port, timeout=120)
        s.starttls(context=ctx)
        s.ehlo()
        smtp_auth_xoauth2(s, ALICE, world.token)
        return s

    def via():
        s = smtplib.SMTP("localhost", gw.port("submission"), timeout=120)
        s.starttls(context=ctx)
        s.login(BENCH_USER, BENCH_PASSWORD)
        return s

    def measure(open_smtp):
        s = open_smtp()
        try:
            msg = small_message("Bench SMTP", "sink@remote.test")
            s.sendmail(ALICE, ["sink@remote.test"], msg)  # warm up
            start = time.perf_counter()
            for _ in range(opts.sends):
                s.sendmail(ALICE, ["sink@remote.test"], msg)
            return opts.sends / (time.perf_counter() - start)
        finally:
            s.quit()

    return [Row(f"dovecot: SMTP send x{opts.sends}, one session, msg/s",
                {"direct": measure(direct), "mailgate": measure(via)}, 0)]


def run_phases(world, opts, rows):
    """Appends each phase's rows as it finishes (a failure later keeps them): the fast
    upstream's first, then Dovecot's."""
    for name, upstream in world.upstreams.items():
        for phase in opts.only:
            if phase in ("pop3", "smtp") and name == "dovecot":
                print(f"bench: {phase} ...", flush=True)
                rows += {"pop3": pop3_retr, "smtp": smtp_send}[phase](world, opts)
            elif phase in ("logins", "fetch", "latency") or (phase, name) == ("idle", "fast"):
                # (Dovecot is not set up for 9,000 IDLE sessions; its relay is the same code)
                print(f"bench: {phase} against {name} ...", flush=True)
                rows += getattr(phases, phase)(upstream, opts)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailgate", default=os.path.join(ROOT, "build", "mailgate"))
    ap.add_argument("--quick", action="store_true",
                    help="every phase small (about 2 minutes): a smoke run, not a measurement")
    ap.add_argument("--only", default=",".join(PHASES), help="comma-separated subset of "
                    + ",".join(PHASES))
    ap.add_argument("--upstreams", default="fast,dovecot", help="fast, dovecot or both")
    ap.add_argument("--sides", default="direct,haproxy,mailgate",
                    help="which of direct, haproxy, mailgate to measure")
    ap.add_argument("--size-mib", type=int, help="message size (FETCH, POP3)")
    ap.add_argument("--rounds", type=int, help="rounds over the sides; medians are reported")
    ap.add_argument("--clients", type=int, default=50, help="parallel login clients")
    ap.add_argument("--client-processes", type=int, default=2,
                    help="client processes the parallel and IDLE clients are split over")
    ap.add_argument("--login-seconds", type=float, help="length of one parallel-login run")
    ap.add_argument("--fetch-seconds", type=float, help="length of one FETCH stream run")
    ap.add_argument("--logins", type=int, help="sequential logins per latency run")
    ap.add_argument("--idle-sessions", help="comma-separated IDLE session counts")
    ap.add_argument("--idle-settle", type=float, help="seconds after close before RSS is read")
    ap.add_argument("--iterations", type=int, default=5, help="POP3 RETRs per run")
    ap.add_argument("--sends", type=int, help="SMTP messages per run")
    ap.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    ap.add_argument("--certs", choices=("both", "rsa"), default="both",
                    help="certificates of the gateway and haproxy: RSA and ECDSA side by side "
                    "(README's recommended setup; the clients pick ECDSA) or RSA only")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    ap.add_argument("--workdir")
    opts = ap.parse_args()
    for key, value in (QUICK if opts.quick else FULL).items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    opts.only = [p for p in PHASES if p in opts.only.split(",")]
    opts.sides = [s for s in ("direct", "haproxy", "mailgate") if s in opts.sides.split(",")]
    opts.idle_sessions = [int(n) for n in str(opts.idle_sessions).split(",")]
    return opts


def stop_on_sigterm(signum, frame):
    raise SystemExit(f"bench: stopped by signal {signum}")  # runs the finally: servers stop


def main():
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    opts = parse_args()
    if not os.access(opts.mailgate, os.X_OK):
        sys.exit(f"bench: {opts.mailgate} is not built (run make)")
    workdir = opts.workdir or tempfile.mkdtemp(prefix="mailgate-bench-")
    upstreams = [u for u in ("fast", "dovecot") if u in opts.upstreams.split(",")]
    print(f"bench: setting up in {workdir} ...", flush=True)
    world = start_world(workdir, opts.mailgate, opts.size_mib << 20, upstreams, opts.workers,
                        ecdsa=opts.certs == "both")
    rows, failure = [], None
    try:
        run_phases(world, opts, rows)
    except Exception as e:  # something does not work: report what was measured, then fail
        failure = e
    finally:
        world.stop()
    print()
    print(render(rows))
    if opts.markdown:
        print()
        print(render_markdown(rows))
    if failure:
        sys.exit(f"bench: FAILED: {failure!r} (files in {workdir})")


if __name__ == "__main__":
    main()
