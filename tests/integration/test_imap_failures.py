"""What goes wrong: IdP faults, upstream rejections and outages, bad input, dropped clients."""
import os
import subprocess
import threading

import pytest

from conftest import connect, gateway_fds, login, try_login
from harness.gateway import login_lines
from harness.imapclient import ConnectionClosed
from harness.procs import free_port, port_accepts, stop_process, wait_until
from harness.stack import CLIENT_ID2, CLIENT_SECRET2, HERE, MAILBOXES, PYTHON

UNAVAILABLE = "NO [UNAVAILABLE]"
AUTH_FAILED = "NO [AUTHENTICATIONFAILED]"


# -- token endpoint failures --------------------------------------------------------------------

@pytest.fixture
def idp_down_gateway(fleet, request):
    """A fresh instance (empty token cache, no back-off state) per fault."""
    gw = fleet.new(f"idpdown-{len(fleet.instances)}", token_timeout="2s")
    yield gw
    gw.stop()


@pytest.mark.parametrize("fault", [
    {"status": 500}, {"status": 503}, {"drop": True}, {"delay": 4},
    {"status": 429, "retry_after": 1},
], ids=["500", "503", "drop", "delay-beyond-token_timeout", "429"])
def test_idp_fault_gives_unavailable(idp_down_gateway, idp, fault):
    before = idp.stats()["token_requests"]
    idp.fault(count=-1, **fault)
    offset = idp_down_gateway.log_offset()
    done = try_login(idp_down_gateway)
    assert done.startswith("f1 " + UNAVAILABLE), done
    assert idp.stats()["token_requests"] > before
    idp_down_gateway.wait_for_log(r"login .*result=", offset)
    entries = login_lines(idp_down_gateway.log_since(offset))
    assert entries and entries[-1]["result"] == "tempfail", entries


def test_idp_recovers_after_fault(idp_down_gateway, idp):
    """After the IdP is healthy again, logins work (within any Retry-After back-off)."""
    idp.fault(status=503, count=1, retry_after=1)
    assert try_login(idp_down_gateway).startswith("f1 " + UNAVAILABLE)
    wait_until(lambda: try_login(idp_down_gateway).startswith("f1 OK"), timeout=15,
               interval=0.5, what="login after IdP recovery")


def test_bad_client_secret_gives_unavailable(fleet, idp):
    gw = fleet.new("badsecret", client_secret="definitely-Wrong-secret-value")
    try:
        before = idp.stats()["token_errors"]
        done = try_login(gw)
        assert done.startswith("f1 " + UNAVAILABLE), done
        assert idp.stats()["token_errors"] > before
        assert "definitely-Wrong-secret-value" not in gw.log_text()
    finally:
        gw.stop()


def test_twenty_logins_one_token_request(fleet, idp):
    gw = fleet.new("tokenonce")
    try:
        before = idp.stats()["tokens_issued"], idp.stats()["token_requests"]
        results = [None] * 20

        def one(i):
            results[i] = try_login(gw, "alice" if i % 2 else "bob")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i in range(10, 20):
            one(i)
        assert all(r and r.startswith("f1 OK") for r in results), results
        after = idp.stats()
        assert after["token_requests"] - before[1] == 1
        assert after["tokens_issued"] - before[0] == 1
    finally:
        gw.stop()


# -- upstream failures --------------------------------------------------------------------------

def test_mailbox_without_grant_is_authentication_failure(gateway):
    assert try_login(gateway, "carol").startswith("f1 " + AUTH_FAILED)


def test_upstream_rejecting_the_token_is_authentication_failure(fleet, idp):
    gw = fleet.new("app2", client_id=CLIENT_ID2, client_secret=CLIENT_SECRET2)
    try:
        assert try_login(gw).startswith("f1 OK")
        idp.config(grants={CLIENT_ID2: []}, revoke_app=CLIENT_ID2)
        offset = gw.log_offset()
        done = try_login(gw)
        assert done.startswith("f1 " + AUTH_FAILED), done
        gw.wait_for_log(r"login .*result=fail", offset)
    finally:
        idp.config(grants={CLIENT_ID2: MAILBOXES})
        gw.stop()


def test_upstream_unreachable_is_unavailable(fleet):
    gw = fleet.new("closedport", imap_server=f"localhost:{free_port()}")
    try:
        done = try_login(gw)
        assert done.startswith("f1 " + UNAVAILABLE), done
    finally:
        gw.stop()


def test_upstream_with_untrusted_certificate_is_unavailable(fleet, stack, workdir):
    port = free_port()
    log_path = os.path.join(workdir, "rogue.log")
    with open(log_path, "wb") as log:
        rogue = subprocess.Popen([PYTHON, os.path.join(HERE, "rogue_imap.py"), "--port",
                                  str(port), "--cert", stack.certs.rogue_cert, "--key",
                                  stack.certs.rogue_key], stdout=log, stderr=log)
    try:
        wait_until(lambda: port_accepts(port), what="rogue IMAP server")
        gw = fleet.new("rogue", imap_server=f"localhost:{port}", imap_tls="implicit")
        try:
            done = try_login(gw)
            assert done.startswith("f1 " + UNAVAILABLE), done
        finally:
            gw.stop()
    finally:
        stop_process(rogue)
    with open(log_path) as f:
        assert "handshake ok" not in f.read()  # the gateway refused the certificate


# -- bad input ----------------------------------------------------------------------------------

def test_commands_before_login_are_bad(gateway):
    with connect(gateway) as c:
        for i, cmd in enumerate(["SELECT INBOX", "FETCH 1 BODY[]", "LIST \"\" *",
                                 "FROBNICATE"]):
            _, done = c.command(f"b{i}", cmd)
            assert done.startswith(f"b{i} BAD"), done
        _, done = c.command("b9", "NOOP")  # still usable
        assert done.startswith("b9 OK")


def test_noop_id_capability_logout_before_login(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", "NOOP")
        assert done.startswith("a1 OK")
        untagged, done = c.command("a2", 'ID ("name" "pytest")')
        assert done.startswith("a2 OK") and any(u.startswith("* ID ") for u in untagged)
        untagged, done = c.command("a3", "CAPABILITY")
        assert done.startswith("a3 OK") and untagged[0].startswith("* CAPABILITY ")
        untagged, done = c.command("a4", "LOGOUT")
        assert any(u.startswith("* BYE") for u in untagged) and done.startswith("a4 OK")
        assert c.closed_by_peer()


def test_overlong_line_is_bad_then_bye(gateway):
    """Lines over the command limit (64 KiB) get BAD each; a client that keeps sending them gets
    BYE. The gateway reads (and drops) the rest of each line, so it has read all of it when it
    hangs up (unread input would make the kernel reset the connection and drop the BYE)."""
    long_line = b"a1 LOGIN alice " + b"x" * 66000 + b"\r\n"
    with connect(gateway) as c:
        c.sock.settimeout(10)
        seen = []
        for _ in range(30):
            try:
                c.send(long_line)
                seen.append(c.readline())
            except (ConnectionClosed, OSError):
                break
            if seen[-1].startswith("* BYE"):
                break
        assert " BAD" in seen[0], seen[0]
        assert seen[-1].startswith("* BYE"), seen[-3:]
        assert c.closed_by_peer()


def test_overlong_authenticate_answer_tail_is_dropped(gateway):
    """An AUTHENTICATE answer line over the limit gets BAD; the rest of that line, arriving
    later, is dropped up to its end and never parsed as a command."""
    with connect(gateway) as c:
        c.send("a1 AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith("+")
        c.send(b"x" * 9000)
        _, done = c.read_until_tagged("a1")
        assert done.startswith("a1 BAD"), done
        c.send(b"a2 LOGOUT\r\n")  # the end of the same line: no logout
        _, done = c.command("a3", "NOOP")
        assert done.startswith("a3 OK"), done


def test_endless_line_is_cut_off(gateway):
    """A line that never ends: the gateway must not buffer it; it hangs up (BYE may be lost in
    the TCP reset when unread input is pending, so only the hang-up is asserted)."""
    with connect(gateway) as c:
        c.sock.settimeout(10)
        try:
            for _ in range(64):
                c.send(b"y" * 65536)
        except OSError:
            pass  # the gateway hung up while we were sending
        assert c.closed_by_peer()
    assert try_login(gateway).startswith("f1 OK")


def test_huge_literal_is_refused_without_continuation(gateway):
    with connect(gateway) as c:
        c.send("a1 LOGIN alice {1000000000}\r\n")
        try:
            answer = c.readline()
        except (ConnectionClosed, OSError):
            return  # hanging up is acceptable too
        assert not answer.startswith("+"), answer
        assert " BAD" in answer or " NO" in answer or answer.startswith("* BYE"), answer


def test_garbage_bytes_do_not_crash(gateway):
    with connect(gateway) as c:
        c.send(bytes(range(256)) * 4 + b"\r\n")
        try:
            answer = c.readline()
            assert "BAD" in answer or "BYE" in answer, answer
        except (ConnectionClosed, OSError):
            pass
    # and the gateway still serves others
    assert try_login(gateway).startswith("f1 OK")


# -- clients that go away -----------------------------------------------------------------------

def test_disconnecting_clients_leak_nothing(gateway, stack):
    wait_until(lambda: stack.dovecot.imap_connections() == 0, timeout=20,
               what="no Dovecot sessions before the test")
    login(gateway, "alice").close()  # warm up (token cached, workers' lazy resources)
    wait_until(lambda: stack.dovecot.imap_connections() == 0, timeout=20, what="warm-up closed")
    base_fds = gateway_fds(gateway)
    assert base_fds > 0

    for _ in range(3):
        c = connect(gateway)  # mid-literal
        c.send(b"a1 LOGIN alice {20}\r\n")
        c.readline()
        c.send(b"alic")
        c.close()
        c = connect(gateway)  # right after LOGIN, before the answer
        c.send(b"a1 LOGIN alice alice-Secret-1\r\n")
        c.close()
        c = connect(gateway)  # logged in, relaying, then gone without LOGOUT
        c.command("a1", "LOGIN alice alice-Secret-1")
        c.command("a2", "SELECT INBOX")
        c.send(b"a3 FETCH 1:* (BODY.PEEK[])\r\n")
        c.close()
        c = connect(gateway, tls=False)  # plain connection dropped mid-line
        c.send(b"a1 CAPAB")
        c.close()

    try:
        wait_until(lambda: gateway_fds(gateway) <= base_fds, timeout=20)
    except TimeoutError:
        pytest.fail(f"gateway worker sockets: {gateway_fds(gateway)}, baseline {base_fds}")
    wait_until(lambda: stack.dovecot.imap_connections() == 0, timeout=20,
               what="Dovecot sessions back to 0")
    assert try_login(gateway).startswith("f1 OK")
