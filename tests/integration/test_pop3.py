"""POP3 through mailgate: front (greeting, CAPA, STLS, USER/PASS, AUTH PLAIN), failures, and
the relay to Dovecot's pop3s (byte-exact RETR, TOP, UIDL, DELE semantics)."""
import poplib
import subprocess
import time

import pytest

from conftest import USERS, fresh_gateway, plain_b64
from harness.dovecot import sha256
from harness.lineclient import Closed, LineClient
from harness.stack import DAVE

BANNER = "+OK The mailgate POP3 service is ready."
AUTH_FAILED = "-ERR [AUTH] Authentication failed."
TEMP_FAILED = "-ERR [SYS/TEMP] Temporary authentication failure, try again later."
PASSWORD = USERS["dave"][0]


@pytest.fixture
def pop3_mailbox(stack):
    """DAVE's mailbox in its seeded state; the list of messages (POP3 numbers 1..n)."""
    return stack.reseed_pop3()


def connect(gw, tls=True):
    c = LineClient(gw.port("pop3s" if tls else "pop3"), tls=tls, ca_file=gw.certs.ca)
    if not tls:
        assert c.cmd("STLS").startswith("+OK")
        c.wrap()
    return c


def logged_in(gw, tls=True, user="dave"):
    c = connect(gw, tls)
    assert c.cmd(f"USER {user}").startswith("+OK")
    answer = c.cmd(f"PASS {USERS[user][0]}")
    assert answer.startswith("+OK"), answer
    return c


def direct(stack):
    return stack.dovecot.pop3_xoauth2(DAVE, stack.idp.token())


def capa(c):
    assert c.cmd("CAPA").startswith("+OK")
    return [line.decode() for line in c.pop3_multiline().split(b"\r\n") if line]


def retr(c, n):
    answer = c.cmd(f"RETR {n}")
    assert answer.startswith("+OK"), answer
    return c.pop3_multiline()


# -- front: greeting, CAPA, STLS rules ----------------------------------------------------------

def test_greeting_on_both_listeners(mail_gateway):
    assert mail_gateway.greeting("pop3s").rstrip("\r\n") == BANNER
    assert mail_gateway.greeting("pop3").rstrip("\r\n") == BANNER


def test_capa_before_tls_offers_stls_only(mail_gateway):
    with LineClient(mail_gateway.port("pop3"), tls=False) as c:
        caps = capa(c)
        assert "STLS" in caps
        names = {cap.split()[0].upper() for cap in caps}
        assert "USER" not in names and "SASL" not in names, caps


@pytest.mark.parametrize("tls", ["stls", "implicit"])
def test_capa_after_tls(mail_gateway, tls):
    with connect(mail_gateway, tls=(tls == "implicit")) as c:
        caps = capa(c)
    names = {cap.split()[0].upper() for cap in caps}
    for want in ("USER", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
        assert want in names, caps
    sasl = [cap.split()[1:] for cap in caps if cap.upper().startswith("SASL")]
    assert sasl and "PLAIN" in [m.upper() for m in sasl[0]], caps
    assert "STLS" not in names


@pytest.mark.parametrize("command", ["USER dave", f"PASS {PASSWORD}",
                                     f"AUTH PLAIN {plain_b64('dave', PASSWORD)}"])
def test_login_before_tls_refused_with_stls_hint(mail_gateway, command):
    with LineClient(mail_gateway.port("pop3"), tls=False, ca_file=mail_gateway.certs.ca) as c:
        answer = c.cmd(command)
        assert answer.startswith("-ERR") and "STLS" in answer, answer
        # still usable: STLS then login works
        assert c.cmd("STLS").startswith("+OK")
        c.wrap()
        assert c.cmd("USER dave").startswith("+OK")
        assert c.cmd(f"PASS {PASSWORD}").startswith("+OK")


def test_login_before_tls_is_logged(mail_gateway):
    offset = mail_gateway.log_offset()
    with LineClient(mail_gateway.port("pop3"), tls=False, ca_file=mail_gateway.certs.ca) as c:
        assert c.cmd(f"AUTH PLAIN {plain_b64('dave', PASSWORD)}").startswith("-ERR")
    mail_gateway.wait_for_log(r'login .*listener=pop3 .*result=refused reason="AUTH before STLS"',
                              offset)
    assert PASSWORD not in mail_gateway.log_text()


def test_stls_twice_refused(mail_gateway):
    with connect(mail_gateway, tls=False) as c:
        assert c.cmd("STLS").startswith("-ERR")
        assert c.cmd("NOOP").startswith(("-ERR", "+OK"))  # still talking, unauthenticated


# -- logins with real clients -------------------------------------------------------------------

def test_poplib_ssl_user_pass(mail_gateway, stack, pop3_mailbox):
    p = poplib.POP3_SSL("localhost", mail_gateway.port("pop3s"),
                        context=stack.dovecot.tls_context(), timeout=30)
    assert p.getwelcome().decode() == BANNER
    p.user("dave")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    assert p.stat() == (len(pop3_mailbox), sum(len(m) for m in pop3_mailbox))
    assert p.quit().startswith(b"+OK")


def test_poplib_stls_user_pass(mail_gateway, stack, pop3_mailbox):
    p = poplib.POP3("localhost", mail_gateway.port("pop3"), timeout=30)
    p.stls(context=stack.dovecot.tls_context())
    p.user("dave")
    p.pass_(PASSWORD)
    assert p.stat()[0] == len(pop3_mailbox)
    p.quit()


def test_auth_plain_initial_response(mail_gateway, pop3_mailbox):
    with connect(mail_gateway) as c:
        answer = c.cmd(f"AUTH PLAIN {plain_b64('dave', PASSWORD)}")
        assert answer.startswith("+OK"), answer
        assert c.cmd("STAT").startswith(f"+OK {len(pop3_mailbox)} ")


def test_auth_plain_continuation(mail_gateway, pop3_mailbox):
    with connect(mail_gateway, tls=False) as c:
        assert c.cmd("AUTH PLAIN").startswith("+")
        answer = c.cmd(plain_b64("dave", PASSWORD))
        assert answer.startswith("+OK"), answer
        assert c.cmd("STAT").startswith(f"+OK {len(pop3_mailbox)} ")


def test_auth_cancel_with_star(mail_gateway):
    with connect(mail_gateway) as c:
        assert c.cmd("AUTH PLAIN").startswith("+")
        assert c.cmd("*").startswith("-ERR")
        assert c.cmd("USER dave").startswith("+OK")
        assert c.cmd(f"PASS {PASSWORD}").startswith("+OK")


# -- failures -----------------------------------------------------------------------------------

def test_wrong_password(mail_gateway):
    with connect(mail_gateway) as c:
        assert c.cmd("USER dave").startswith("+OK")
        assert c.cmd("PASS not-the-password") == AUTH_FAILED
    with connect(mail_gateway) as c:
        assert c.cmd(f"AUTH PLAIN {plain_b64('dave', 'nope')}") == AUTH_FAILED


def test_unknown_user_same_answer(mail_gateway):
    with connect(mail_gateway) as c:
        c.cmd("USER nosuchuser")
        assert c.cmd(f"PASS {PASSWORD}") == AUTH_FAILED


def test_poplib_wrong_password_raises(mail_gateway, stack):
    p = poplib.POP3_SSL("localhost", mail_gateway.port("pop3s"),
                        context=stack.dovecot.tls_context(), timeout=30)
    p.user("dave")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_("wrong")
    p.close()


def test_idp_down_gives_sys_temp(fleet, idp):
    gw = fresh_gateway(fleet, "pop3-idpdown", token_timeout="2s")
    try:
        idp.fault(status=503, count=-1)
        with connect(gw) as c:
            c.cmd("USER dave")
            assert c.cmd(f"PASS {PASSWORD}") == TEMP_FAILED
    finally:
        idp.fault()
        gw.stop()


def test_overlong_line(mail_gateway):
    with connect(mail_gateway) as c:
        answer = c.cmd("NOOP " + "x" * 9000)
        assert answer.startswith("-ERR"), answer
        try:  # keeps coming without a line end: the gateway hangs up
            for _ in range(64):
                c.send(b"y" * 16384)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert c.closed(timeout=15)


def test_overlong_line_tail_is_not_a_command(mail_gateway):
    """The tail of an overlong line, arriving after the gateway refused its start, is dropped up
    to the line's end: it is never read as a command of its own."""
    with connect(mail_gateway) as c:
        c.send(b"x" * 9000)
        answer = c.readline()
        assert answer.startswith("-ERR"), answer
        c.send(b"QUIT\r\n")  # the end of the same line: no logout
        answer = c.cmd("CAPA")
        assert answer.startswith("+OK Capability list follows"), answer
        c.pop3_multiline()
        assert c.cmd("QUIT").startswith("+OK Logging out")
        assert c.closed()


# -- relay: byte-exact fetch, TOP, UIDL, DELE ---------------------------------------------------

def test_all_messages_byte_exact(mail_gateway, stack, pop3_mailbox):
    d = direct(stack)
    try:
        via = logged_in(mail_gateway)
        for n, original in enumerate(pop3_mailbox, 1):
            got = retr(via, n)
            _, lines, _ = d.retr(n)
            assert sha256(got) == sha256(original) == sha256(b"\r\n".join(lines) + b"\r\n"), n
        assert via.cmd("QUIT").startswith("+OK")
        via.close()
    finally:
        d.quit()


def test_top_uidl_list_through_relay(mail_gateway, stack, pop3_mailbox):
    d = direct(stack)
    try:
        c = logged_in(mail_gateway, tls=False)
        for command, direct_answer in (("UIDL", d.uidl()), ("LIST", d.list())):
            assert c.cmd(command).startswith("+OK")
            assert c.pop3_multiline().split(b"\r\n")[:-1] == direct_answer[1]
        assert c.cmd("TOP 3 2").startswith("+OK")
        assert c.pop3_multiline().split(b"\r\n")[:-1] == d.top(3, 2)[1]
        assert c.cmd("UIDL 2").split()[2] == d.uidl(2).split()[2].decode()
        c.cmd("QUIT")
        c.close()
    finally:
        d.quit()


def test_dele_quit_deletes_exactly_those(mail_gateway, stack, pop3_mailbox):
    c = logged_in(mail_gateway)
    assert c.cmd("DELE 2").startswith("+OK")
    assert c.cmd("DELE 4").startswith("+OK")
    assert c.cmd("QUIT").startswith("+OK")
    assert c.closed()
    d = direct(stack)
    try:
        count, _ = d.stat()
        left = [sha256(b"\r\n".join(d.retr(i)[1]) + b"\r\n") for i in range(1, count + 1)]
    finally:
        d.quit()
    assert left == [sha256(pop3_mailbox[i]) for i in (0, 2, 4)]


def test_dele_without_quit_deletes_nothing(mail_gateway, stack, pop3_mailbox):
    c = logged_in(mail_gateway)
    assert c.cmd("DELE 1").startswith("+OK")
    assert c.cmd("DELE 5").startswith("+OK")
    c.close()  # dropped, no QUIT
    time.sleep(1)
    d = direct(stack)
    try:
        assert d.stat()[0] == len(pop3_mailbox)
    finally:
        d.quit()


# -- other clients ------------------------------------------------------------------------------

def curl(gw, url_path, *extra):
    return subprocess.run(["curl", "-s", "-S", "--cacert", gw.certs.ca, "-u", f"dave:{PASSWORD}",
                           *extra, f"pop3s://localhost:{gw.port('pop3s')}/{url_path}"],
                          capture_output=True, timeout=60)


def test_curl_pop3s_list_and_retrieve(mail_gateway, pop3_mailbox):
    listing = curl(mail_gateway, "")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.decode().split("\r\n")
    assert lines[:len(pop3_mailbox)] == [f"{i} {len(m)}" for i, m in
                                         enumerate(pop3_mailbox, 1)]
    for n in (1, 3, 5):
        got = curl(mail_gateway, str(n))
        assert got.returncode == 0, got.stderr
        assert sha256(got.stdout) == sha256(pop3_mailbox[n - 1]), n


def test_openssl_s_client_starttls_pop3(mail_gateway, pop3_mailbox):
    p = subprocess.run(
        ["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile", mail_gateway.certs.ca,
         "-servername", "localhost", "-starttls", "pop3", "-connect",
         f"127.0.0.1:{mail_gateway.port('pop3')}"],
        input=f"USER dave\r\nPASS {PASSWORD}\r\nSTAT\r\nQUIT\r\n".encode(), capture_output=True,
        timeout=30)
    lines = p.stdout.decode(errors="replace").split("\r\n")
    assert lines[0].startswith("+OK") and lines[1].startswith("+OK"), lines
    assert lines[2].startswith(f"+OK {len(pop3_mailbox)} "), lines
    assert lines[3].startswith("+OK"), lines


def test_pipelined_commands(mail_gateway, pop3_mailbox):
    with connect(mail_gateway) as c:
        c.send(f"USER dave\r\nPASS {PASSWORD}\r\nSTAT\r\nNOOP\r\n")
        answers = [c.readline() for _ in range(4)]
        assert all(a.startswith("+OK") for a in answers), answers
        assert answers[2].startswith(f"+OK {len(pop3_mailbox)} ")


def test_not_closed_early(mail_gateway):
    """Smoke: an idle unauthenticated session is not dropped within a few seconds."""
    with connect(mail_gateway) as c:
        time.sleep(2)
        try:
            assert c.cmd("NOOP").startswith(("+OK", "-ERR"))
        except Closed:
            pytest.fail("connection closed while idle for 2 s before login")
