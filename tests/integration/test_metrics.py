"""Operations endpoints: GET /metrics (Prometheus text format, checked with promtool) and
GET /healthz on an http listener, after real IMAP, POP3 and SMTP logins and a relayed FETCH;
counters that survive a worker's death; health while a worker or the broker is stopped;
metrics_allow; HTTP connections counted against max_connections_per_ip."""
import http.client
import imaplib
import os
import re
import signal
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import USERS, try_login
from harness.lineclient import LineClient
from harness.procs import free_port, wait_until
from harness.stack import ALICE

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def web_listener(port):
    return "\n".join(["", "[listen web]", "protocol = http", f"address = 127.0.0.1:{port}",
                      "tls = none", ""])


@pytest.fixture(scope="module")
def gw(fleet):
    """IMAP, POP3 and SMTP listeners, two workers, an http listener; metrics only for
    127.0.0.1 (so 127.0.0.2 is a refused address on this machine)."""
    port = free_port()
    g = fleet.new("metrics", protocols=("imap", "pop3", "smtp"), extra=web_listener(port),
                  gateway_lines=["metrics_allow = 127.0.0.1/32", "lockout_threshold = 3"])
    g.http_port = port
    return g


def curl(gw, path, *args):
    """(status, body) of one GET with curl."""
    r = subprocess.run(["curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}",
                        *args, f"http://127.0.0.1:{gw.http_port}{path}"],
                       capture_output=True, text=True, timeout=15)
    body, _, status = r.stdout.rpartition("\n")
    return int(status or 0), body


def scrape(gw):
    status, body = curl(gw, "/metrics")
    assert status == 200, body
    return body


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())))


def logins(s, protocol, result):
    return value(s, "mailgate_logins_total", protocol=protocol, result=result)


def imap_fetch(gw):
    """Logs in as alice, fetches message 1 whole; the number of bytes of the message."""
    ctx = ssl.create_default_context(cafile=gw.certs.ca)
    m = imaplib.IMAP4_SSL("localhost", gw.imaps_port, ssl_context=ctx, timeout=60)
    try:
        m.login("alice", USERS["alice"][0])
        m.select("INBOX", readonly=True)
        typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
        assert typ == "OK"
        return len(data[0][1])
    finally:
        m.logout()


def pop3_login(gw, password):
    c = LineClient(gw.port("pop3s"), tls=True, ca_file=gw.certs.ca)
    try:
        assert c.cmd("USER dave").startswith("+OK")
        return c.cmd(f"PASS {password}")
    finally:
        c.close()


def smtp_login(gw, password):
    s = smtplib.SMTP("localhost", gw.port("submission"), timeout=60)
    try:
        s.starttls(context=ssl.create_default_context(cafile=gw.certs.ca))
        s.ehlo()
        s.user, s.password = "alice", password
        return s.auth("PLAIN", s.auth_plain)[0]  # one attempt (login() tries every mechanism)
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
    finally:
        s.close()


@pytest.fixture(scope="module")
def traffic(gw):
    """What the clients did, for the tests to compare the counters with."""
    fetched = imap_fetch(gw)
    assert try_login(gw).startswith("f1 OK")
    assert try_login(gw, password="wrong").startswith("f1 NO")
    assert pop3_login(gw, USERS["dave"][0]).startswith("+OK")
    assert pop3_login(gw, "wrong").startswith("-ERR")
    assert smtp_login(gw, USERS["alice"][0]) == 235
    assert smtp_login(gw, "wrong") == 535
    expected = {("imap", "ok"): 2, ("imap", "fail"): 1, ("pop3", "ok"): 1, ("pop3", "fail"): 1,
                ("smtp", "ok"): 1, ("smtp", "fail"): 1}
    # The workers report every second: wait until the broker has heard of every login.
    try:
        wait_until(lambda: all(logins(samples(scrape(gw)), p, r) == n
                               for (p, r), n in expected.items()),
                   timeout=15, interval=0.3, what="every login counted")
    except TimeoutError:
        raise AssertionError(scrape(gw) + "\n" + gw.log_text()[-3000:])
    return {"fetched": fetched, "logins": expected}


def test_exposition_passes_promtool(gw, traffic):
    text = scrape(gw)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("sessions_open", "logins_total", "relayed_bytes_total",
                 "upstream_connect_seconds", "upstream_login_seconds", "token_requests_total",
                 "token_cache_hits_total", "argon2_queue_length", "lockouts_total"):
        assert f"# HELP mailgate_{name} " in text and f"# TYPE mailgate_{name} " in text, name
    status, _ = curl(gw, "/metrics", "-I")  # HEAD: headers only
    assert status == 200


def test_login_counters_match_the_logins(gw, traffic):
    s = samples(scrape(gw))
    for (protocol, result), n in traffic["logins"].items():
        assert logins(s, protocol, result) == n, (protocol, result)
    assert logins(s, "imap", "tempfail") == 0


def test_bytes_tokens_and_sessions(gw, traffic):
    s = samples(scrape(gw))
    assert value(s, "mailgate_relayed_bytes_total", direction="to_client") >= traffic["fetched"]
    assert value(s, "mailgate_relayed_bytes_total", direction="to_upstream") > 0
    assert value(s, "mailgate_token_requests_total", provider="microsoft", result="ok") >= 1
    # one token for the app, then the cache: the other logins were hits
    assert value(s, "mailgate_token_cache_hits_total", ) >= 1
    assert value(s, "mailgate_argon2_queue_length") == 0
    assert value(s, "mailgate_lockouts_total") == 0
    # every client has left: no session open on any worker, and both workers are listed
    wait_until(lambda: all(v == 0 for (n, _), v in samples(scrape(gw)).items()
                           if n == "mailgate_sessions_open"), timeout=10, interval=0.3,
               what="sessions closed")
    workers = {dict(labels)["worker"] for (n, labels) in s if n == "mailgate_sessions_open"}
    assert len(workers) == 2


def test_histograms_are_consistent(gw, traffic):
    s = samples(scrape(gw))
    for name in ("mailgate_upstream_connect_seconds", "mailgate_upstream_login_seconds"):
        buckets = sorted(((float("inf") if dict(labels)["le"] == "+Inf" else
                           float(dict(labels)["le"])), v)
                         for (n, labels), v in s.items() if n == name + "_bucket")
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), name  # cumulative
        assert buckets[-1][0] == float("inf")
        assert buckets[-1][1] == value(s, name + "_count"), name
        assert value(s, name + "_sum") > 0, name
    # one upstream login per accepted login
    ok = sum(n for (p, r), n in traffic["logins"].items() if r == "ok")
    assert value(s, "mailgate_upstream_login_seconds_count") == ok
    assert value(s, "mailgate_upstream_connect_seconds_count") >= ok


def healthz(gw):
    return curl(gw, "/healthz")


def wait_health(gw, status, timeout=15):
    return wait_until(lambda: (lambda r: r if r[0] == status else None)(healthz(gw)),
                      timeout=timeout, interval=0.3, what=f"/healthz {status}")


def test_healthz_while_a_worker_is_stopped(gw, traffic):
    assert healthz(gw) == (200, "ok\n")
    pid = gw.worker_pids()[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        _, body = wait_health(gw, 503)
        assert "has not reported" in body, body
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_health(gw, 200)


def test_healthz_while_the_broker_is_stopped(gw, traffic):
    os.kill(gw.proc.pid, signal.SIGSTOP)
    try:
        status, body = healthz(gw)
        assert status == 503 and "broker did not answer" in body, body
    finally:
        os.kill(gw.proc.pid, signal.SIGCONT)
    wait_health(gw, 200)


def counters(s):
    return {k: v for k, v in s.items()
            if k[0].endswith(("_total", "_count", "_sum", "_bucket"))}


def test_counters_survive_a_worker_restart(gw, traffic):
    time.sleep(1.5)  # every worker has reported its latest numbers
    before = counters(samples(scrape(gw)))
    old = set(gw.worker_pids())
    victim = sorted(old)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(set(gw.worker_pids()) - old) == 1 and len(gw.worker_pids()) == 2,
               timeout=20, what="the worker restarted")
    wait_health(gw, 200, timeout=20)
    after = counters(samples(scrape(gw)))
    went_down = {k: (v, after.get(k)) for k, v in before.items() if after.get(k, -1) < v}
    assert not went_down
    assert logins(samples(scrape(gw)), "imap", "ok") == traffic["logins"][("imap", "ok")]


def test_counters_survive_a_reload(gw, traffic):
    time.sleep(1.5)
    before = counters(samples(scrape(gw)))
    old = set(gw.worker_pids())
    os.kill(gw.proc.pid, signal.SIGHUP)
    # the new workers take over; the old ones drain (no session left) and exit
    wait_until(lambda: not set(gw.worker_pids()) & old and len(gw.worker_pids()) == 2,
               timeout=30, interval=0.2, what="the old workers replaced")
    wait_health(gw, 200, timeout=20)
    s = samples(scrape(gw))
    went_down = {k: (v, s.get(k)) for k, v in before.items() if s.get(k, -1) < v}
    assert not went_down
    workers = {dict(labels)["worker"] for (n, labels) in s if n == "mailgate_sessions_open"}
    assert len(workers) == 2  # only the new generation's


def test_metrics_allow_refuses_other_addresses(gw):
    status, body = curl(gw, "/metrics", "--interface", "127.0.0.2")
    assert status == 403 and "metrics_allow" in body, body
    assert curl(gw, "/healthz", "--interface", "127.0.0.2")[0] == 403
    assert curl(gw, "/healthz")[0] == 200
    # the other pages are not affected
    assert curl(gw, "/nothing", "--interface", "127.0.0.2")[0] == 404


def test_lockouts_are_counted(gw, traffic):
    before = value(samples(scrape(gw)), "mailgate_lockouts_total")
    for _ in range(3):  # lockout_threshold failures of one user from one address
        assert try_login(gw, user="bob", password="wrong").startswith("f1 NO")
    assert value(samples(scrape(gw)), "mailgate_lockouts_total") == before + 1
    assert "lockout: user=" in gw.log_text()


def test_post_is_refused(gw):
    status, _ = curl(gw, "/metrics", "-X", "POST", "-d", "x")
    assert status == 405


# -- HTTP connections against max_connections_per_ip ---------------------------------------------

LIMIT = 3


@pytest.fixture(scope="module")
def small(fleet):
    """One worker (the limit is per worker), max_connections_per_ip = 3."""
    port = free_port()
    g = fleet.new("metrics-limit", users=False, workers=1, extra=web_listener(port),
                  gateway_lines=[f"max_connections_per_ip = {LIMIT}"])
    g.http_port = port
    return g


def get(conn, path="/healthz"):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read().decode(), r.getheader("Connection")


def test_http_connections_count_against_the_per_address_limit(small):
    held = [http.client.HTTPConnection("127.0.0.1", small.http_port, timeout=10)
            for _ in range(LIMIT)]
    try:
        for c in held:
            assert get(c)[0] == 200  # keep-alive: each stays open and counted
        extra = http.client.HTTPConnection("127.0.0.1", small.http_port, timeout=10)
        status, body, connection = get(extra)
        assert status == 503 and "too many connections" in body, body
        assert connection == "close"
        extra.close()
        assert get(held[0])[0] == 200  # the counted ones go on
        held.pop().close()
        # the closed one is uncounted: a new connection is served again
        def served():
            c = http.client.HTTPConnection("127.0.0.1", small.http_port, timeout=10)
            try:
                return get(c)[0] == 200 and c
            except (OSError, http.client.HTTPException):
                c.close()
                return None
        held.append(wait_until(served, timeout=10, interval=0.2, what="a connection served"))
    finally:
        for c in held:
            c.close()
    wait_until(lambda: value(samples(curl(small, "/metrics")[1]),
                             "mailgate_http_refused_total") >= 1,
               timeout=10, interval=0.3, what="the refusal counted")
    assert "refused: 3 connections from this address (limit 3)" in small.log_text()
