"""The stand-ins themselves: certificates, fake Entra ID, private Dovecot (no gateway needed)."""
import base64
import imaplib
import json
import subprocess

import pytest

from harness import stack as S
from harness.dovecot import sha256, xoauth2_string


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# -- certificates -------------------------------------------------------------------------------

def test_server_cert_is_signed_by_ca_and_rogue_is_not(certs):
    ok = subprocess.run(["openssl", "verify", "-CAfile", certs.ca, certs.cert],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(["openssl", "verify", "-CAfile", certs.ca, certs.rogue_cert],
                         capture_output=True, text=True)
    assert bad.returncode != 0


def test_server_cert_names_localhost_and_loopback(certs):
    out = subprocess.run(["openssl", "x509", "-in", certs.cert, "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True).stdout
    assert "DNS:localhost" in out and "IP Address:127.0.0.1" in out


# -- fake Entra ID ------------------------------------------------------------------------------

def test_token_is_jwt_shaped_and_realistic(idp):
    status, body = idp.token_request(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET)
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["ext_expires_in"] == 3599
    token = body["access_token"]
    assert 1400 <= len(token) <= 1800, len(token)
    header, payload, signature = token.split(".")
    assert b64url_json(header)["alg"] == "RS256"
    claims = b64url_json(payload)
    assert claims["aud"] == "https://outlook.office.com"
    assert claims["tid"] == S.TENANT_ID and claims["appid"] == S.CLIENT_ID
    assert "IMAP.AccessAsApp" in claims["roles"]
    assert len(base64.urlsafe_b64decode(signature + "==")) == 256


@pytest.mark.parametrize("tenant,client_id,secret,scope,grant,status,error,code", [
    (S.TENANT, S.CLIENT_ID, "wrong", S.SCOPE, "client_credentials", 401, "invalid_client",
     7000215),
    (S.TENANT, "00000000-0000-0000-0000-000000000000", S.CLIENT_SECRET, S.SCOPE,
     "client_credentials", 400, "unauthorized_client", 700016),
    ("nosuch.onmicrosoft.com", S.CLIENT_ID, S.CLIENT_SECRET, S.SCOPE, "client_credentials", 400,
     "invalid_request", 90002),
    (S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET, "https://graph.microsoft.com/Mail.Read",
     "client_credentials", 400, "invalid_scope", 70011),
    (S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET, S.SCOPE, "implicit", 400,
     "unsupported_grant_type", 70003),
])
def test_token_errors_are_microsoft_shaped(idp, tenant, client_id, secret, scope, grant, status,
                                           error, code):
    got_status, body = idp.token_request(tenant, client_id, secret, scope=scope,
                                         grant_type=grant)
    assert got_status == status
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert "\r\nCorrelation ID: " in body["error_description"]
    assert body["trace_id"] and body["correlation_id"] and body["timestamp"]


def test_stats_count_token_requests(idp):
    before = idp.stats()["token_requests"]
    idp.token(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET)
    idp.token_request(S.TENANT, S.CLIENT_ID, "bad")
    after = idp.stats()
    assert after["token_requests"] == before + 2
    assert after["per_endpoint"][f"/{S.TENANT}/oauth2/v2.0/token"] >= 2


def test_fault_injection_counts_down(idp):
    idp.fault(status=503, count=1)
    status, _ = idp.token_request(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET)
    assert status == 503
    status, _ = idp.token_request(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET)
    assert status == 200


def test_fault_429_sends_retry_after(idp):
    import urllib.request
    import urllib.parse
    idp.fault(status=429, count=1, retry_after=7)
    req = urllib.request.Request(
        f"{idp.base}/{S.TENANT}/oauth2/v2.0/token",
        data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=idp.ctx, timeout=10)
    assert e.value.code == 429 and e.value.headers["Retry-After"] == "7"


def test_fault_drop_closes_connection(idp):
    idp.fault(drop=True, count=1)
    with pytest.raises(Exception):
        idp.token_request(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET, )
    assert idp.token_request(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET)[0] == 200


def test_introspection_knows_issued_tokens_only(idp):
    token = idp.token(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET)
    answer = idp.introspect(token)
    assert answer["active"] is True and answer["username"].endswith("@" + S.DOMAIN)
    assert idp.introspect(token[:-4] + "AAAA") == {"active": False}
    assert idp.introspect(token, service="unknown-service")["active"] is True


def test_introspection_refuses_revoked_app_tokens(idp):
    token = idp.token(S.TENANT, S.CLIENT_ID2, S.CLIENT_SECRET2)
    assert idp.introspect(token)["active"] is True
    idp.config(revoke_app=S.CLIENT_ID2)
    assert idp.introspect(token)["active"] is False


# -- private Dovecot ----------------------------------------------------------------------------

def test_dovecot_greets_for_real(stack):
    line = stack.dovecot.greeting()
    assert line.startswith("* OK") and "Waiting for authentication" not in line


def test_dovecot_accepts_xoauth2_with_idp_token(stack):
    imap = stack.dovecot.login_xoauth2(S.ALICE, stack.idp.token())
    try:
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) >= 3
    finally:
        imap.logout()
    headers = stack.idp.client.stats()["last_introspect_headers"]
    assert headers.get("X-Dovecot-Auth-Service") == "imap"


def test_dovecot_rejects_unknown_token(stack):
    imap = stack.dovecot.connect()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.authenticate("XOAUTH2", lambda _: xoauth2_string(S.ALICE, "not-a-token"))
    imap.shutdown()


def test_dovecot_rejects_mailbox_without_grant(stack):
    imap = stack.dovecot.connect()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.authenticate("XOAUTH2", lambda _: xoauth2_string(S.CAROL, stack.idp.token()))
    imap.shutdown()


def test_seeded_big_message_is_byte_exact_directly(stack):
    subject, original = stack.seeded[S.ALICE][2]
    assert len(original) == 5 * 1024 * 1024
    imap = stack.dovecot.login_xoauth2(S.ALICE, stack.idp.token())
    try:
        imap.select("INBOX", readonly=True)
        typ, data = imap.uid("FETCH", "3", "(BODY.PEEK[])")
        assert typ == "OK"
        assert sha256(data[0][1]) == sha256(original)
    finally:
        imap.logout()


# -- Dovecot POP3 and submission, the SMTP sink, the rogue SMTP upstream -------------------------

def test_dovecot_pop3s_xoauth2_byte_exact(stack):
    import poplib
    messages = stack.reseed_pop3()
    p = stack.dovecot.pop3_xoauth2(S.DAVE, stack.idp.token())
    try:
        count, size = p.stat()
        assert count == len(messages) and size == sum(len(m) for m in messages)
        for i, original in enumerate(messages, 1):
            _, lines, _ = p.retr(i)
            assert sha256(b"\r\n".join(lines) + b"\r\n") == sha256(original), i
    finally:
        p.quit()
    headers = stack.idp.client.stats()["last_introspect_headers"]
    assert headers.get("X-Dovecot-Auth-Service") == "pop3"
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        stack.dovecot.pop3_xoauth2(S.DAVE, "not-a-token")


def test_dovecot_pop3_plain_port_offers_stls(stack):
    import poplib
    p = poplib.POP3("localhost", stack.dovecot.pop3_port, timeout=10)
    try:
        assert "STLS" in p.capa()
        p.stls(context=stack.dovecot.tls_context())
    finally:
        p.quit()


def test_dovecot_submission_two_step_xoauth2_relays_to_sink(stack):
    import smtplib
    before = stack.sink.count()
    body = b"Subject: harness check\r\nFrom: <alice@example.test>\r\n\r\n.dot line\r\nbye\r\n"
    s = stack.dovecot.submission_xoauth2(S.ALICE, stack.idp.token())
    try:
        assert s.sendmail(S.ALICE, ["someone@remote.test"], body) == {}
    finally:
        s.quit()
    (msg,) = stack.sink.wait_for(1, since=before)
    assert msg["mail_from"].startswith("FROM:<alice@example.test>")
    assert msg["rcpt_to"] == ["TO:<someone@remote.test>"]
    assert any("LOGIN=alice@example.test" in x for x in msg["xclient"])
    # Dovecot prepends exactly one Received: header (folded); the rest is byte-exact
    assert msg["data"].startswith(b"Received: ") and strip_received(msg["data"]) == body
    assert stack.idp.client.stats()["last_introspect_headers"].get(
        "X-Dovecot-Auth-Service") == "submission"
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        stack.dovecot.submission_xoauth2(S.ALICE, "not-a-token")
    assert e.value.smtp_code == 535


def strip_received(data):
    """The message without the Received: header Dovecot's submission service prepends."""
    assert data.startswith(b"Received: ")
    pos = data.index(b"\r\n") + 2
    while data[pos:pos + 1] in (b" ", b"\t"):
        pos = data.index(b"\r\n", pos) + 2
    return data[pos:]


@pytest.fixture(scope="module")
def rogue_drop(stack):
    from harness.rogue_smtp import RogueSmtp
    r = RogueSmtp(stack.workdir, stack.certs, mode="drop", read=4096).start()
    yield r
    r.stop()


def test_rogue_smtp_drops_during_data(stack, rogue_drop):
    import smtplib
    s = smtplib.SMTP("localhost", rogue_drop.port, timeout=15)
    s.starttls(context=stack.dovecot.tls_context())
    s.ehlo()
    assert "xoauth2" in s.esmtp_features.get("auth", "").lower()
    from harness.dovecot import smtp_auth_xoauth2
    assert smtp_auth_xoauth2(s, S.ALICE, "any-token")[0] == 235
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        s.sendmail(S.ALICE, ["x@remote.test"], b"Subject: x\r\n\r\n" + b"y" * 200000 + b"\r\n")
    assert "dropped after" in rogue_drop.log_text()


def test_rogue_smtp_451_mode(stack):
    import smtplib
    from harness.dovecot import smtp_auth_xoauth2
    from harness.rogue_smtp import RogueSmtp
    r = RogueSmtp(stack.workdir, stack.certs, mode="451").start()
    try:
        s = smtplib.SMTP("localhost", r.port, timeout=15)
        s.starttls(context=stack.dovecot.tls_context())
        s.ehlo()
        smtp_auth_xoauth2(s, S.ALICE, "any-token")
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail(S.ALICE, ["x@remote.test"], b"Subject: x\r\n\r\nhello\r\n")
        assert e.value.smtp_code == 451
        s.quit()
    finally:
        r.stop()
