"""OAUTHBEARER (RFC 7628) to the upstream: a type = generic provider with sasl = oauthbearer,
the fake IdP's token endpoint and client credentials, Dovecot as every server. Dovecot's own log
line of each login says which mechanism it saw."""
import os
import re

import pytest

from conftest import USERS, login, plain_b64, try_login
from harness.lineclient import LineClient
from harness.procs import wait_until
from harness.stack import ALICE, CLIENT_ID2, CLIENT_SECRET2, DAVE, MAILBOXES, TENANT

AUTH_FAILED = "NO [AUTHENTICATIONFAILED]"


@pytest.fixture(scope="module")
def bearer(fleet, stack):
    """The generic OAUTHBEARER gateway, with the second app (its tokens can be revoked alone)."""
    gw = fleet.new("bearer", protocols=("imap", "pop3", "smtp"), provider_type="generic",
                   sasl="oauthbearer", client_id=CLIENT_ID2, client_secret=CLIENT_SECRET2,
                   token_endpoint=stack.idp.token_endpoint.replace("{tenant}", TENANT))
    yield gw
    gw.stop()


def dovecot_offset(stack):
    return os.path.getsize(stack.dovecot.log_path)


def dovecot_log_since(stack, offset):
    with open(stack.dovecot.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def assert_dovecot_login(stack, offset, service, mailbox):
    """Dovecot logged this service's login of mailbox with OAUTHBEARER, and no XOAUTH2 one."""
    pattern = re.compile(rf"{service}-login: .*Login: user=<{re.escape(mailbox)}>, "
                         rf"method=OAUTHBEARER")
    wait_until(lambda: pattern.search(dovecot_log_since(stack, offset)), timeout=10,
               what=f"Dovecot {service} OAUTHBEARER login")
    assert "method=XOAUTH2" not in dovecot_log_since(stack, offset)


def test_check_config_shows_the_provider(bearer):
    r = bearer.cli("check-config")
    assert r.returncode == 0, r.stderr
    assert "type=generic flow=client_credentials sasl=OAUTHBEARER" in r.stdout, r.stdout


def test_imap_login(bearer, stack):
    offset = dovecot_offset(stack)
    c = login(bearer, "alice")
    try:
        _, done = c.command("s1", "SELECT INBOX")
        assert done.startswith("s1 OK"), done
    finally:
        c.close()
    assert_dovecot_login(stack, offset, "imap", ALICE)


def test_pop3_login(bearer, stack):
    offset = dovecot_offset(stack)
    with LineClient(bearer.port("pop3s"), tls=True, ca_file=bearer.certs.ca) as c:
        assert c.cmd("USER dave").startswith("+OK")
        answer = c.cmd(f"PASS {USERS['dave'][0]}")
        assert answer.startswith("+OK"), answer
        assert c.cmd("STAT").startswith("+OK")  # Dovecot's answer, through the relay
    assert_dovecot_login(stack, offset, "pop3", DAVE)


def test_smtp_login(bearer, stack):
    offset = dovecot_offset(stack)
    with LineClient(bearer.port("submission"), tls=False, ca_file=bearer.certs.ca) as c:
        assert c.smtp("EHLO client.test")[-1].startswith("250 ")
        assert c.smtp("STARTTLS")[0].startswith("220")
        c.wrap()
        assert c.smtp("EHLO client.test")[-1].startswith("250 ")
        answer = c.smtp(f"AUTH PLAIN {plain_b64('alice', USERS['alice'][0])}")
        assert answer[0].startswith("235 "), answer
        assert c.smtp(f"MAIL FROM:<{ALICE}>")[0].startswith("250"), "upstream took MAIL"
    assert_dovecot_login(stack, offset, "submission", ALICE)


def test_rejected_token_is_authentication_failure(bearer, stack, idp):
    """Dovecot answers a refused OAUTHBEARER token with an error challenge; the gateway must
    answer it with the dummy response (RFC 7628 3.2.3) and pass the NO on as a failed login."""
    assert try_login(bearer).startswith("f1 OK")  # a token is cached now
    try:
        idp.config(grants={CLIENT_ID2: []}, revoke_app=CLIENT_ID2)
        offset, dc_offset = bearer.log_offset(), dovecot_offset(stack)
        done = try_login(bearer)
        assert done.startswith("f1 " + AUTH_FAILED), done
        # the error challenge was read (and answered: else Dovecot would not say NO)
        bearer.wait_for_log(r"login .*result=fail .*challenge: .*status", offset)
        # Dovecot logs the failed login once the connection is gone
        wait_until(lambda: re.search(r"auth failed.*method=OAUTHBEARER",
                                     dovecot_log_since(stack, dc_offset)),
                   timeout=10, what="Dovecot's failed OAUTHBEARER login")
    finally:
        idp.config(grants={CLIENT_ID2: MAILBOXES})


def test_provider_without_pop3_server_refuses_pop3(fleet, stack):
    """type = generic without pop3_server: POP3 logins fail cleanly, the gateway keeps serving."""
    gw = fleet.new("bearer-nopop", protocols=("imap", "pop3"), provider_type="generic",
                   sasl="oauthbearer", pop3_server=None, pop3_tls=None,
                   token_endpoint=stack.idp.token_endpoint.replace("{tenant}", TENANT))
    try:
        r = gw.cli("check-config")
        assert "pop3: none (logins refused)" in r.stdout, r.stdout
        with LineClient(gw.port("pop3s"), tls=True, ca_file=gw.certs.ca) as c:
            assert c.cmd("USER dave").startswith("+OK")
            answer = c.cmd(f"PASS {USERS['dave'][0]}")
            assert answer.startswith("-ERR"), answer
        assert try_login(gw).startswith("f1 OK")  # IMAP still works
    finally:
        gw.stop()
