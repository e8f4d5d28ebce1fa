"""SMTP submission through mailgate: front (greeting, EHLO, STARTTLS rules, AUTH PLAIN/LOGIN),
failures, and the relay to Dovecot's submission service (which relays to the harness sink):
byte-exact delivery, PIPELINING, BDAT, and an upstream that breaks mid-DATA."""
import base64
import os
import smtplib
import subprocess
import uuid

import pytest

from conftest import USERS, fresh_gateway, plain_b64
from harness.gateway import SMTP_BANNER, SMTP_HOSTNAME
from harness.lineclient import Closed, LineClient
from harness.rogue_smtp import REPLY_451, RogueSmtp
from harness.stack import ALICE

GREETING = f"220 {SMTP_HOSTNAME} {SMTP_BANNER}"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
TEMP_FAILED = "454 4.7.0 Temporary authentication failure, try again later"
NEED_TLS = "530 5.7.0 Must issue a STARTTLS command first"
NEED_AUTH = "530 5.7.0 Authentication required"
PASSWORD = USERS["alice"][0]
RCPT = "someone@remote.test"


def strip_received(data):
    """The message without the one Received: header Dovecot's submission service prepends."""
    assert data.startswith(b"Received: "), data[:200]
    pos = data.index(b"\r\n") + 2
    while data[pos:pos + 1] in (b" ", b"\t"):
        pos = data.index(b"\r\n", pos) + 2
    return data[pos:]


def message(marker, body=b"Hello through mailgate.\r\n"):
    return (f"From: Alice <{ALICE}>\r\nTo: <{RCPT}>\r\nSubject: test {marker}\r\n"
            f"Message-ID: <{marker}@example.test>\r\n\r\n").encode() + body


def delivered(stack, marker, timeout=30):
    """The sink's copy of the message whose Message-ID is <marker@example.test>."""
    needle = f"<{marker}@example.test>".encode()

    def find():
        return [m for m in stack.sink.messages() if needle in m["data"][:4096]]

    from harness.procs import wait_until
    (msg,) = wait_until(find, timeout=timeout, interval=0.1, what=f"message {marker} at sink")
    return msg


def tls_ctx(gw):
    import ssl
    return ssl.create_default_context(cafile=gw.certs.ca)


def raw(gw, starttls=True):
    """LineClient on the submission listener, EHLO done (and STARTTLS + EHLO if asked)."""
    c = LineClient(gw.port("submission"), tls=False, ca_file=gw.certs.ca)
    assert c.smtp("EHLO client.test")[-1].startswith("250 ")
    if starttls:
        assert c.smtp("STARTTLS")[0].startswith("220")
        c.wrap()
        assert c.smtp("EHLO client.test")[-1].startswith("250 ")
    return c


def raw_logged_in(gw, user="alice"):
    c = raw(gw)
    assert c.smtp(f"AUTH PLAIN {plain_b64(user, USERS[user][0])}") == [AUTH_OK]
    return c


def keywords(lines):
    """{KEYWORD: params} of an EHLO reply (first line is the greeting name)."""
    out = {}
    for line in lines[1:]:
        word, _, params = line[4:].partition(" ")
        out[word.upper()] = params
    return out


# -- front: greeting, EHLO, STARTTLS rules ------------------------------------------------------

def test_greeting_on_both_listeners(mail_gateway):
    assert mail_gateway.greeting("submission").rstrip("\r\n") == GREETING
    assert mail_gateway.greeting("smtps").rstrip("\r\n") == GREETING


def test_ehlo_before_tls_starttls_no_auth(mail_gateway):
    with LineClient(mail_gateway.port("submission"), tls=False) as c:
        lines = c.smtp("EHLO client.test")
        assert lines[0].startswith(f"250-{SMTP_HOSTNAME}") or lines[0].startswith("250 ")
        kw = keywords(lines)
        assert "STARTTLS" in kw and "AUTH" not in kw, lines
        assert c.smtp(f"AUTH PLAIN {plain_b64('alice', PASSWORD)}") == [NEED_TLS]
        assert c.smtp("AUTH LOGIN") == [NEED_TLS]
        assert c.smtp("MAIL FROM:<alice@example.test>")[0].startswith("530")


def test_auth_before_tls_is_logged(mail_gateway):
    offset = mail_gateway.log_offset()
    with LineClient(mail_gateway.port("submission"), tls=False) as c:
        c.smtp("EHLO client.test")
        assert c.smtp(f"AUTH PLAIN {plain_b64('alice', PASSWORD)}") == [NEED_TLS]
    mail_gateway.wait_for_log(
        r'login .*listener=submission .*result=refused reason="AUTH before STARTTLS"', offset)


def test_helo_works(mail_gateway):
    with LineClient(mail_gateway.port("submission"), tls=False) as c:
        assert c.smtp("HELO client.test")[0].startswith("250")


def test_ehlo_after_tls_advertises_upstream_extensions(mail_gateway, stack):
    upstream = stack.dovecot.submission_ehlo_after_tls()
    with raw(mail_gateway) as c:
        kw = keywords(c.smtp("EHLO client.test"))
    assert set(kw["AUTH"].upper().split()) >= {"PLAIN", "LOGIN"}, kw
    assert "STARTTLS" not in kw
    others = set(kw) - {"AUTH"}
    assert others <= set(upstream) - {"AUTH", "STARTTLS"}, (kw, upstream)
    for must in ("SIZE", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES", "CHUNKING"):
        if must in upstream:
            assert must in kw, (must, kw)
    assert kw["SIZE"] == upstream["SIZE"]
    assert "SMTPUTF8" not in kw and "DSN" not in kw  # Dovecot does not offer them


def test_mail_before_auth_refused(mail_gateway):
    with raw(mail_gateway) as c:
        assert c.smtp(f"MAIL FROM:<{ALICE}>") == [NEED_AUTH]


def test_local_commands_before_auth(mail_gateway):
    with raw(mail_gateway) as c:
        assert c.smtp("NOOP")[0].startswith("250")
        assert c.smtp("RSET")[0].startswith("250")
        assert c.smtp("HELP")[-1][:3] in ("214", "250")
        assert c.smtp("QUIT")[0].startswith("221")
        assert c.closed()


def test_overlong_line_tail_is_not_a_command(mail_gateway):
    """The tail of an overlong line, arriving after the gateway refused its start, is dropped up
    to the line's end: it is never read as a command of its own."""
    with raw(mail_gateway) as c:
        c.send(b"x" * 9000)
        assert c.smtp_reply() == ["500 5.5.6 Line too long"]
        c.send(b"QUIT\r\n")  # the end of the same line: no goodbye
        assert c.smtp("NOOP")[0].startswith("250")
        assert c.smtp("QUIT")[0].startswith("221")


# -- logins -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("initial", [True, False], ids=["initial-response", "no-initial"])
def test_smtplib_login_and_send(mail_gateway, stack, mech, initial):
    marker = f"login-{mech}-{initial}-{uuid.uuid4().hex[:8]}"
    s = smtplib.SMTP("localhost", mail_gateway.port("submission"), timeout=60)
    s.starttls(context=tls_ctx(mail_gateway))
    s.ehlo()
    s.user, s.password = "alice", PASSWORD
    auth = s.auth_plain if mech == "PLAIN" else s.auth_login
    code, text = s.auth(mech, auth, initial_response_ok=initial)
    assert (code, text.decode()) == (235, AUTH_OK[4:])
    body = message(marker)
    assert s.sendmail(ALICE, [RCPT], body) == {}
    s.quit()
    msg = delivered(stack, marker)
    assert strip_received(msg["data"]) == body
    assert msg["mail_from"].startswith(f"FROM:<{ALICE}>")
    assert msg["rcpt_to"] == [f"TO:<{RCPT}>"]


def test_auth_login_prompts(mail_gateway):
    with raw(mail_gateway) as c:
        assert c.smtp("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.smtp(base64.b64encode(b"alice").decode()) == ["334 UGFzc3dvcmQ6"]
        assert c.smtp(base64.b64encode(PASSWORD.encode()).decode()) == [AUTH_OK]


@pytest.mark.parametrize("start", ["AUTH PLAIN", "AUTH LOGIN"])
def test_auth_cancel(mail_gateway, start):
    with raw(mail_gateway) as c:
        assert c.smtp(start)[0].startswith("334")
        assert c.smtp("*")[0].startswith("501")
        assert c.smtp(f"AUTH PLAIN {plain_b64('alice', PASSWORD)}") == [AUTH_OK]


def test_wrong_password(mail_gateway):
    with raw(mail_gateway) as c:
        assert c.smtp(f"AUTH PLAIN {plain_b64('alice', 'not-it')}") == [AUTH_FAILED]
    with raw(mail_gateway) as c:
        assert c.smtp(f"AUTH PLAIN {plain_b64('nosuchuser', PASSWORD)}") == [AUTH_FAILED]
    s = smtplib.SMTP("localhost", mail_gateway.port("submission"), timeout=30)
    s.starttls(context=tls_ctx(mail_gateway))
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login("alice", "wrong")
    assert e.value.smtp_code == 535
    s.close()


def test_idp_down_gives_454(fleet, idp):
    gw = fresh_gateway(fleet, "smtp-idpdown", token_timeout="2s")
    try:
        idp.fault(status=503, count=-1)
        with raw(gw) as c:
            assert c.smtp(f"AUTH PLAIN {plain_b64('alice', PASSWORD)}") == [TEMP_FAILED]
    finally:
        idp.fault()
        gw.stop()


# -- relay --------------------------------------------------------------------------------------

def big_utf8_message(marker, size=10 * 1024 * 1024):
    attachment = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    head = (f"From: Ålice Ünicode <{ALICE}>\r\nTo: Øyvind <{RCPT}>\r\n"
            f"Subject: Größe — 10 MB Anhang ☃ {marker}\r\nMessage-ID: <{marker}@example.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b42\"\r\n\r\n"
            "--b42\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln — 日本語\r\n.\r\n..\r\n"
            "--b42\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=\"big.bin\"\r\n\r\n").encode()
    return head + attachment + b"--b42--\r\n"


def test_10mb_attachment_utf8_headers_byte_exact(mail_gateway, stack):
    marker = f"big-{uuid.uuid4().hex[:8]}"
    body = big_utf8_message(marker)
    assert len(body) > 10 * 1024 * 1024
    s = smtplib.SMTP("localhost", mail_gateway.port("submission"), timeout=120)
    s.starttls(context=tls_ctx(mail_gateway))
    s.login("alice", PASSWORD)
    options = ["BODY=8BITMIME"] + (["SMTPUTF8"] if s.has_extn("smtputf8") else [])
    assert s.sendmail(ALICE, [RCPT], body, mail_options=options) == {}
    s.quit()
    msg = delivered(stack, marker, timeout=60)
    assert strip_received(msg["data"]) == body


def test_smtps_implicit_tls(mail_gateway, stack):
    marker = f"smtps-{uuid.uuid4().hex[:8]}"
    s = smtplib.SMTP_SSL("localhost", mail_gateway.port("smtps"), context=tls_ctx(mail_gateway),
                         timeout=60)
    kw = s.ehlo()[1].decode()
    assert "STARTTLS" not in kw and "PLAIN" in kw
    s.login("alice", PASSWORD)
    body = message(marker)
    s.sendmail(ALICE, [RCPT], body)
    s.quit()
    assert strip_received(delivered(stack, marker)["data"]) == body


def test_pipelined_mail_rcpt_data(mail_gateway, stack):
    marker = f"pipe-{uuid.uuid4().hex[:8]}"
    body = message(marker, b".starts with a dot\r\nend\r\n")
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    with raw_logged_in(mail_gateway) as c:
        c.send(f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n")
        assert c.smtp_reply()[0].startswith("250")
        assert c.smtp_reply()[0].startswith("250")
        assert c.smtp_reply()[0].startswith("354")
        c.send(stuffed + b".\r\n")
        assert c.smtp_reply()[0].startswith("250")
        assert c.smtp("QUIT")[0].startswith("221")
    assert strip_received(delivered(stack, marker)["data"]) == body


def test_bdat_through_relay(mail_gateway, stack):
    if "CHUNKING" not in stack.dovecot.submission_ehlo_after_tls():
        pytest.skip("Dovecot does not offer CHUNKING")
    marker = f"bdat-{uuid.uuid4().hex[:8]}"
    body = message(marker, b"chunk one\r\n.\r\n" + os.urandom(3000).hex().encode() + b"\r\n")
    first, second = body[:100], body[100:]
    with raw_logged_in(mail_gateway) as c:
        c.send(f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<{RCPT}>\r\n".encode()
               + f"BDAT {len(first)}\r\n".encode() + first
               + f"BDAT {len(second)} LAST\r\n".encode() + second)
        for _ in range(4):
            assert c.smtp_reply()[0].startswith("250")
        c.smtp("QUIT")
    assert strip_received(delivered(stack, marker)["data"]) == body


def test_curl_smtp_starttls(mail_gateway, stack, tmp_path):
    marker = f"curl-{uuid.uuid4().hex[:8]}"
    body = message(marker)
    path = tmp_path / "mail.eml"
    path.write_bytes(body)
    r = subprocess.run(["curl", "-s", "-S", "--ssl-reqd", "--cacert", mail_gateway.certs.ca,
                        f"smtp://localhost:{mail_gateway.port('submission')}",
                        "--mail-from", ALICE, "--mail-rcpt", RCPT, "--upload-file", str(path),
                        "--user", f"alice:{PASSWORD}"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert strip_received(delivered(stack, marker)["data"]) == body


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks(mail_gateway, stack, mech):
    marker = f"swaks-{mech}-{uuid.uuid4().hex[:8]}"
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                        str(mail_gateway.port("submission")), "--tls", "--auth", mech,
                        "--auth-user", "alice", "--auth-password", PASSWORD, "--from", ALICE,
                        "--to", RCPT, "--header", f"Message-ID: <{marker}@example.test>",
                        "--body", "Sent by swaks.", "--timeout", "60"],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "Sent by swaks." in delivered(stack, marker)["data"].decode(errors="replace")


# -- an upstream that breaks --------------------------------------------------------------------

@pytest.fixture(scope="module")
def rogue_gateways(fleet, stack):
    """{mode: gateway} whose smtp_server is a rogue upstream (drop during DATA / 451)."""
    rogues, gws = [], {}
    try:
        for mode in ("drop", "451"):
            r = RogueSmtp(stack.workdir, stack.certs, mode=mode, read=4096).start()
            rogues.append(r)
            gws[mode] = fleet.new(f"rogue-{mode}", protocols=("smtp",),
                                  smtp_server=f"localhost:{r.port}", smtp_tls="starttls")
            gws[mode].rogue = r
        yield gws
    finally:
        for gw in gws.values():
            gw.stop()
        for r in rogues:
            r.stop()


def test_upstream_drop_during_data_no_250(rogue_gateways):
    gw = rogue_gateways["drop"]
    with raw_logged_in(gw) as c:
        assert c.smtp(f"MAIL FROM:<{ALICE}>")[0].startswith("250")
        assert c.smtp(f"RCPT TO:<{RCPT}>")[0].startswith("250")
        assert c.smtp("DATA")[0].startswith("354")
        replies = []
        try:
            for _ in range(50):
                c.send(b"x" * 998 + b"\r\n" * 1 + b"y" * 8000 + b"\r\n")
            c.send(b".\r\n")
            while True:
                replies.append(c.readline())
        except (Closed, ConnectionResetError, BrokenPipeError, OSError):
            pass
        assert not any(r.startswith("250") for r in replies), replies
        assert c.closed()
    assert "dropped after" in gw.rogue.log_text()


def test_upstream_drop_smtplib(rogue_gateways):
    gw = rogue_gateways["drop"]
    s = smtplib.SMTP("localhost", gw.port("submission"), timeout=30)
    s.starttls(context=tls_ctx(gw))
    s.login("alice", PASSWORD)
    with pytest.raises((smtplib.SMTPServerDisconnected, smtplib.SMTPDataError,
                        ConnectionError)) as e:
        s.sendmail(ALICE, [RCPT], message("drop", b"z" * 300000 + b"\r\n"))
    if isinstance(e.value, smtplib.SMTPDataError):
        assert e.value.smtp_code != 250


def test_upstream_451_passed_through(rogue_gateways):
    gw = rogue_gateways["451"]
    with raw_logged_in(gw) as c:
        c.smtp(f"MAIL FROM:<{ALICE}>")
        c.smtp(f"RCPT TO:<{RCPT}>")
        assert c.smtp("DATA")[0].startswith("354")
        c.send(message("r451") + b".\r\n")
        assert c.smtp_reply() == [REPLY_451]
