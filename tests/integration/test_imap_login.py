"""IMAP login through the gateway on the implicit-TLS listener: greeting, capabilities, LOGIN in
every string form, AUTHENTICATE PLAIN, failures, real clients, the login log line."""
import imaplib
import ssl
import subprocess

import pytest

from conftest import (USERS, assert_logged_in, connect, login, plain_b64, quoted,
                      s_client)
from harness.gateway import IMAP_BANNER, login_lines
from harness.imapclient import capabilities
from harness.stack import ALICE, CLIENT_SECRET

AUTH_FAILED = "NO [AUTHENTICATIONFAILED]"


def test_greeting_has_capabilities_and_banner(gateway):
    with connect(gateway) as c:
        assert c.greeting.startswith("* OK [CAPABILITY ")
        assert c.greeting.endswith(IMAP_BANNER)
        caps = capabilities(c.greeting)
        assert "IMAP4rev1" in caps and "AUTH=PLAIN" in caps


def test_capability_after_tls(gateway):
    with connect(gateway) as c:
        untagged, done = c.command("a1", "CAPABILITY")
        assert done.startswith("a1 OK")
        caps = capabilities(untagged[0])
        for cap in ("IMAP4rev1", "SASL-IR", "ID", "AUTH=PLAIN"):
            assert cap in caps, caps
        assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps


def test_login_atom(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", "LOGIN alice alice-Secret-1")
        assert "[CAPABILITY " in done
        assert_logged_in(c, done, "a1")


def test_login_quoted_with_special_characters(gateway):
    password = USERS["special"][0]
    assert all(ch in password for ch in '"{}\\()%*')
    with connect(gateway) as c:
        _, done = c.command("a1", f'LOGIN "special" {quoted(password)}')
        assert_logged_in(c, done, "a1")


def test_login_quoted_with_space(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", f"LOGIN bob {quoted(USERS['bob'][0])}")
        assert_logged_in(c, done, "a1")


def test_login_synchronising_literal(gateway):
    password = USERS["special"][0].encode()
    with connect(gateway) as c:
        c.send(f"a1 LOGIN special {{{len(password)}}}\r\n".encode())
        cont = c.readline()
        assert cont.startswith("+"), cont
        c.send(password + b"\r\n")
        _, done = c.read_until_tagged("a1")
        assert_logged_in(c, done, "a1")


def test_login_non_synchronising_literals_utf8(gateway):
    user, password = b"unicode", USERS["unicode"][0].encode()
    assert len(password) != len(USERS["unicode"][0])  # really multi-byte
    with connect(gateway) as c:
        c.send(b"a1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(user), user, len(password),
                                                          password))
        _, done = c.read_until_tagged("a1")
        assert_logged_in(c, done, "a1")


def test_login_utf8_synchronising_literal(gateway):
    password = USERS["unicode"][0].encode()
    with connect(gateway) as c:
        c.send(b"a1 LOGIN unicode {%d}\r\n" % len(password))
        assert c.readline().startswith("+")
        c.send(password + b"\r\n")
        _, done = c.read_until_tagged("a1")
        assert_logged_in(c, done, "a1")


def test_authenticate_plain_sasl_ir(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", "AUTHENTICATE PLAIN " + plain_b64("alice", "alice-Secret-1"))
        assert_logged_in(c, done, "a1")


def test_authenticate_plain_continuation(gateway):
    with connect(gateway) as c:
        c.send("a1 AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith("+")
        c.send(plain_b64("unicode", USERS["unicode"][0]) + "\r\n")
        _, done = c.read_until_tagged("a1")
        assert_logged_in(c, done, "a1")


def test_authenticate_cancel(gateway):
    with connect(gateway) as c:
        c.send("a1 AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith("+")
        c.send("*\r\n")
        _, done = c.read_until_tagged("a1")
        assert done.startswith("a1 BAD"), done
        # the session is still usable
        _, done = c.command("a2", "LOGIN alice alice-Secret-1")
        assert done.startswith("a2 OK"), done


def test_authenticate_plain_wrong_password(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", "AUTHENTICATE PLAIN " + plain_b64("alice", "nope"))
        assert done.startswith("a1 " + AUTH_FAILED), done


def test_wrong_password_and_unknown_user_look_the_same(gateway):
    with connect(gateway) as c:
        _, wrong = c.command("a1", "LOGIN alice wrong-password")
        _, unknown = c.command("a2", "LOGIN nosuchuser wrong-password")
    assert wrong.startswith("a1 " + AUTH_FAILED), wrong
    assert unknown.startswith("a2 " + AUTH_FAILED), unknown
    assert wrong[3:] == unknown[3:]


def test_failed_login_then_success_in_same_session(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", "LOGIN alice wrong")
        assert done.startswith("a1 NO")
        _, done = c.command("a2", "LOGIN alice alice-Secret-1")
        assert_logged_in(c, done, "a2")


def test_login_log_line_and_no_secrets_in_log(gateway):
    offset = gateway.log_offset()
    login(gateway, "alice").close()
    with connect(gateway) as c:
        c.command("a1", "LOGIN alice not-the-password")
    gateway.wait_for_log(r"login .*result=fail", offset)
    entries = login_lines(gateway.log_since(offset))
    ok = [e for e in entries if e.get("result") == "ok"]
    fail = [e for e in entries if e.get("result") == "fail"]
    assert ok and ok[0]["user"] == "alice" and ok[0]["mailbox"] == ALICE
    assert ok[0]["listener"] == "imaps" and ok[0]["client"].startswith("127.0.0.1:")
    assert int(ok[0]["duration_ms"]) >= 0 and ok[0]["session"]
    assert fail and fail[0]["user"] == "alice"
    log = gateway.log_text()
    for secret in [p for p, _ in USERS.values()] + ["not-the-password", CLIENT_SECRET]:
        assert secret not in log
    assert "eyJ0eXAi" not in log  # no access token (JWT header prefix)


def test_locally_refused_logins_are_logged(gateway):
    """A login refused before the broker is asked still gets its login line."""
    offset = gateway.log_offset()
    with connect(gateway, tls=False) as c:
        _, done = c.command("a1", "LOGIN alice refused-Secret-9")
        assert done.startswith("a1 NO [PRIVACYREQUIRED]"), done
    long_user = "u" * 300
    with connect(gateway) as c:
        _, done = c.command("a2", f"LOGIN {long_user} too-long-Secret-8")
        assert done.startswith("a2 " + AUTH_FAILED), done
    gateway.wait_for_log(r"login .*reason=\"user name or password too long\"", offset)
    entries = login_lines(gateway.log_since(offset))
    before_tls = [e for e in entries if e.get("reason") == "LOGIN before STARTTLS"]
    assert before_tls and before_tls[0]["result"] == "refused", entries
    assert before_tls[0]["user"] == "alice" and before_tls[0]["listener"] == "imap"
    too_long = [e for e in entries if e.get("reason") == "user name or password too long"]
    assert too_long and too_long[0]["result"] == "fail", entries
    assert too_long[0]["user"].startswith("uuuu") and too_long[0]["listener"] == "imaps"
    log = gateway.log_text()
    assert "refused-Secret-9" not in log and "too-long-Secret-8" not in log


# -- real clients -------------------------------------------------------------------------------

def test_imaplib_ssl_login(gateway):
    ctx = ssl.create_default_context(cafile=gateway.certs.ca)
    with imaplib.IMAP4_SSL("localhost", gateway.imaps_port, ssl_context=ctx, timeout=30) as m:
        typ, _ = m.login("alice", "alice-Secret-1")
        assert typ == "OK"
        typ, folders = m.list()
        assert typ == "OK" and any(b"INBOX" in f for f in folders)
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) >= 3
        m.logout()


def test_imaplib_authenticate_plain(gateway):
    ctx = ssl.create_default_context(cafile=gateway.certs.ca)
    with imaplib.IMAP4_SSL("localhost", gateway.imaps_port, ssl_context=ctx, timeout=30) as m:
        typ, _ = m.authenticate("PLAIN", lambda _: b"\0special\0" + USERS["special"][0].encode())
        assert typ == "OK"
        assert m.select("INBOX", readonly=True)[0] == "OK"
        m.logout()


def test_imaplib_wrong_password_raises(gateway):
    ctx = ssl.create_default_context(cafile=gateway.certs.ca)
    with imaplib.IMAP4_SSL("localhost", gateway.imaps_port, ssl_context=ctx, timeout=30) as m:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("alice", "wrong")


def test_curl_fetches_message(gateway, stack):
    url = f"imaps://localhost:{gateway.imaps_port}/INBOX;UID=1"
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert", gateway.certs.ca,
                        "--user", "alice:alice-Secret-1", url], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stack.seeded[ALICE][0][1]


def test_curl_wrong_password_fails(gateway):
    url = f"imaps://localhost:{gateway.imaps_port}/INBOX;UID=1"
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert", gateway.certs.ca,
                        "--user", "alice:wrong", url], capture_output=True, timeout=60)
    assert r.returncode == 67, (r.returncode, r.stderr)  # CURLE_LOGIN_DENIED


def test_openssl_s_client_implicit_tls(gateway):
    lines = s_client(["-connect", f"127.0.0.1:{gateway.imaps_port}"],
                     [("a1", "LOGIN alice alice-Secret-1"), ("a2", "EXAMINE INBOX"),
                      ("a3", "LOGOUT")], gateway.certs.ca)
    assert lines[0].startswith("* OK [CAPABILITY")
    assert any(line.startswith("a1 OK") for line in lines), lines
    assert any(line.startswith("a2 OK [READ-ONLY]") for line in lines), lines
    assert any(line.startswith("* BYE") for line in lines), lines
    assert lines[-1].startswith("a3 OK"), lines


def test_login_before_fetch_of_other_users_mailbox(gateway):
    """bob's password opens bob's mailbox, not alice's (mailbox mapping comes from the store)."""
    c = login(gateway, "bob")
    with c:
        untagged, done = c.command("a2", "SELECT INBOX")
        assert done.startswith("a2 OK")
        exists = [int(line.split()[1]) for line in untagged if line.endswith(" EXISTS")]
        assert exists and exists[0] >= 1
        untagged, done = c.command("a3", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (TO)])")
        assert done.startswith("a3 OK")
        assert any("bob@example.test" in line for line in untagged), untagged
