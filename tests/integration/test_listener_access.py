"""Per-listener login_type, tls = none, allow = lists, timeouts and banners, with real clients
(imaplib, poplib, smtplib, openssl s_client, curl) and the config errors around them."""
import imaplib
import os
import poplib
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import USERS, plain_b64
from harness.imapclient import RawImap, capabilities
from harness.lineclient import LineClient

DENY = "allow = 10.0.0.0/8, 2001:db8::/32"
LOOPBACK = "allow = 127.0.0.0/8"
IMAP_REFUSAL = "* BYE Access from your address is not allowed."
POP3_REFUSAL = "-ERR [AUTH] Access from your address is not allowed."
SMTP_REFUSAL = "554 5.7.1 mx.mailgate.test Access from your address is not allowed"
BANNER = "Legacy scanners only."


@pytest.fixture(scope="module")
def access(fleet):
    """IMAP, POP3 and SMTP pairs as usual (secure default), plus plaintext listeners without
    TLS, listeners allowing only 10.0.0.0/8 or loopback, and dual-stack ones."""
    gw = fleet.new("access", start=False, protocols=("imap", "pop3", "smtp"))
    plain = ("login_type = plaintext", f"banner = {BANNER}")
    gw.add_listener("imap-plain", "imap", "none", *plain)
    gw.add_listener("pop3-plain", "pop3", "none", *plain)
    gw.add_listener("smtp-plain", "smtp", "none", "login_type = plaintext")
    gw.add_listener("imap-starttls-plain", "imap", "starttls", "login_type = plaintext")
    gw.add_listener("imaps-denied", "imap", "implicit", DENY)
    gw.add_listener("imap-denied", "imap", "starttls", DENY)
    gw.add_listener("pop3s-denied", "pop3", "implicit", DENY)
    gw.add_listener("pop3-denied", "pop3", "starttls", DENY)
    gw.add_listener("smtp-denied", "smtp", "starttls", DENY)
    gw.add_listener("smtps-denied", "smtp", "implicit", DENY)
    gw.add_listener("imaps-loopback", "imap", "implicit", LOOPBACK, "login_timeout = 2s",
                    "idle_timeout = 2s", "banner = Loopback only.")
    gw.add_listener("imap-dual", "imap", "starttls", LOOPBACK, host="[::]")
    gw.add_listener("imap-dual-v6only", "imap", "starttls", "allow = ::1", host="[::]")
    gw.write_config()
    return gw.start()


def test_plaintext_listener_warns_at_start(access):
    log = access.log_text()
    for name in ("imap-plain", "pop3-plain", "smtp-plain", "imap-starttls-plain"):
        assert f"listener {name} (127.0.0.1:" in log
    assert "login_type = plaintext: passwords are accepted without TLS" in log
    assert "listener imaps (" not in log


# -- secure (the default): no password before TLS ---------------------------------------------

def test_secure_imap_refuses_login_before_starttls(access):
    with RawImap(access.port("imap"), tls=False) as c:
        caps = capabilities(c.greeting)
        assert "LOGINDISABLED" in caps and "STARTTLS" in caps
        assert not [x for x in caps if x.startswith("AUTH=")]
        _, done = c.command("a1", "LOGIN alice alice-Secret-1")
        assert done == "a1 NO [PRIVACYREQUIRED] Use STARTTLS before logging in."
        _, done = c.command("a2", "AUTHENTICATE PLAIN " + plain_b64("alice", "x"))
        assert done.startswith("a2 NO [PRIVACYREQUIRED]")
    m = imaplib.IMAP4("127.0.0.1", access.port("imap"))
    assert "LOGINDISABLED" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        m.login("alice", USERS["alice"][0])
    m.shutdown()


def test_secure_pop3_refuses_user_pass_before_stls(access):
    with LineClient(access.port("pop3"), tls=False) as c:
        assert c.cmd("CAPA") == "+OK Capability list follows"
        capa = c.pop3_multiline().decode()
        assert "STLS" in capa and "USER" not in capa and "SASL" not in capa
        refused = "-ERR [AUTH] Plaintext authentication is disabled, use STLS first."
        assert c.cmd("USER dave") == refused
        assert c.cmd("PASS x") == refused
        assert c.cmd("AUTH PLAIN " + plain_b64("dave", "x")) == refused


def test_secure_smtp_refuses_auth_before_starttls(access):
    with LineClient(access.port("submission"), tls=False) as c:
        ehlo = c.smtp("EHLO client.test")
        assert ehlo[-1] == "250 STARTTLS" and not any("AUTH" in x for x in ehlo)
        assert c.smtp("AUTH PLAIN " + plain_b64("alice", "x")) == [
            "530 5.7.0 Must issue a STARTTLS command first"]


# -- plaintext: tls = none, login_type = plaintext ---------------------------------------------

def test_plaintext_imap_login_with_imaplib(access):
    m = imaplib.IMAP4("127.0.0.1", access.port("imap-plain"))
    assert BANNER.encode() in m.welcome
    assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities
    assert "STARTTLS" not in m.capabilities
    typ, _ = m.login("alice", USERS["alice"][0])
    assert typ == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 0
    m.logout()


def test_plaintext_imap_starttls_not_offered(access):
    with RawImap(access.port("imap-plain"), tls=False) as c:
        _, done = c.command("a1", "STARTTLS")
        assert done.startswith("a1 BAD")
        _, done = c.command("a2", "AUTHENTICATE PLAIN " + plain_b64("bob", USERS["bob"][0]))
        assert done.startswith("a2 OK"), done


def test_plaintext_on_starttls_listener_offers_both(access):
    with RawImap(access.port("imap-starttls-plain"), tls=False) as c:
        caps = capabilities(c.greeting)
        assert "STARTTLS" in caps and "AUTH=PLAIN" in caps and "LOGINDISABLED" not in caps
        _, done = c.command("a1", f"LOGIN alice \"{USERS['alice'][0]}\"")
        assert done.startswith("a1 OK"), done


def test_plaintext_pop3_login_with_poplib(access, stack):
    stack.reseed_pop3()
    p = poplib.POP3("127.0.0.1", access.port("pop3-plain"), timeout=20)
    assert BANNER in p.getwelcome().decode()
    capa = p.capa()
    assert "USER" in capa and "STLS" not in capa and capa.get("SASL") == ["PLAIN"]
    p.user("dave")
    assert p.pass_(USERS["dave"][0]).startswith(b"+OK")
    count, _ = p.stat()
    assert count >= 1
    p.quit()


def test_plaintext_smtp_login_with_smtplib(access):
    s = smtplib.SMTP("127.0.0.1", access.port("smtp-plain"), timeout=20)
    code, _ = s.ehlo("client.test")
    assert code == 250
    assert s.has_extn("auth") and not s.has_extn("starttls")
    code, _ = s.login("alice", USERS["alice"][0])
    assert code == 235
    s.quit()


def test_plaintext_curl_imap(access):
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-u",
                        f"bob:{USERS['bob'][0]}", f"imap://127.0.0.1:{access.port('imap-plain')}/"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout


# -- allow = -------------------------------------------------------------------------------------

@pytest.mark.parametrize("listener,tls,refusal", [
    ("imaps-denied", True, IMAP_REFUSAL), ("imap-denied", False, IMAP_REFUSAL),
    ("pop3s-denied", True, POP3_REFUSAL), ("pop3-denied", False, POP3_REFUSAL),
    ("smtps-denied", True, SMTP_REFUSAL), ("smtp-denied", False, SMTP_REFUSAL)])
def test_address_outside_allow_refused(access, listener, tls, refusal):
    offset = access.log_offset()
    with LineClient(access.port(listener), tls=tls, ca_file=access.certs.ca) as c:
        assert c.greeting == refusal
        assert c.closed(timeout=10)
    access.wait_for_log(rf"listener={listener} client=127\.0\.0\.1:\d+ refused: address not "
                        r"allowed", offset)


def test_implicit_tls_refusal_readable_by_s_client(access):
    """The refusal comes after the handshake: a TLS client reads it, no handshake error."""
    r = subprocess.run(["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile",
                        access.certs.ca, "-servername", "localhost", "-connect",
                        f"127.0.0.1:{access.port('imaps-denied')}"],
                       input=b"", capture_output=True, timeout=20)
    assert IMAP_REFUSAL.encode() in r.stdout, r.stderr


def test_address_inside_allow_logs_in(access):
    with RawImap(access.port("imaps-loopback"), tls=True, ca_file=access.certs.ca) as c:
        assert c.greeting.endswith("] Loopback only.")
        _, done = c.command("a1", f"LOGIN alice \"{USERS['alice'][0]}\"")
        assert done.startswith("a1 OK"), done


def test_ipv4_mapped_client_matches_ipv4_rules(access):
    """On a dual-stack listener ([::]), 127.0.0.1 arrives as ::ffff:127.0.0.1."""
    with RawImap(access.port("imap-dual"), tls=False) as c:
        assert c.greeting.startswith("* OK")
    with RawImap(access.port("imap-dual"), tls=False, host="::1") as c:
        assert c.greeting == IMAP_REFUSAL  # ::1 is not in 127.0.0.0/8
    with RawImap(access.port("imap-dual-v6only"), tls=False) as c:
        assert c.greeting == IMAP_REFUSAL
    with RawImap(access.port("imap-dual-v6only"), tls=False, host="::1") as c:
        assert c.greeting.startswith("* OK")


# -- per-listener timeouts -----------------------------------------------------------------------

def test_listener_login_timeout(access):
    with RawImap(access.port("imaps-loopback"), tls=True, ca_file=access.certs.ca) as c:
        start = time.monotonic()
        assert c.readline() == "* BYE Login timeout."
        assert 1.5 < time.monotonic() - start < 10
    # the [gateway] default (60s) still holds on the other listeners
    with RawImap(access.port("imaps"), tls=True, ca_file=access.certs.ca) as c:
        c.sock.settimeout(3)
        with pytest.raises(socket.timeout):
            c.readline()


def test_listener_idle_timeout(access):
    with RawImap(access.port("imaps-loopback"), tls=True, ca_file=access.certs.ca) as c:
        _, done = c.command("a1", f"LOGIN alice \"{USERS['alice'][0]}\"")
        assert done.startswith("a1 OK"), done
        assert c.closed(timeout=10)


# -- config errors -------------------------------------------------------------------------------

def config_errors(gw, tmp_path, listener_lines, gateway_lines=()):
    text = open(gw.config_path).read()
    text = text.replace("[gateway]\n", "[gateway]\n" + "".join(f"{x}\n" for x in gateway_lines),
                        1)
    text += "\n[listen extra]\nprotocol = imap\naddress = 127.0.0.1:1\n"
    text += "".join(f"{x}\n" for x in listener_lines)
    path = tmp_path / "bad.conf"
    path.write_text(text)
    r = gw.cli("check-config", config=str(path))
    lines = text.split("\n")
    return r, str(path), lines


def line_of(lines, needle):
    return [i + 1 for i, x in enumerate(lines) if x == needle][-1]


def test_tls_none_without_plaintext_is_a_config_error(access, tmp_path):
    r, path, lines = config_errors(access, tmp_path, ["tls = none"])
    assert r.returncode == 1
    assert f"{path}:{line_of(lines, 'tls = none')}: tls = none needs login_type = plaintext" \
        in r.stderr, r.stderr


@pytest.mark.parametrize("value,why", [
    ("10.0.0.0/33", "'10.0.0.0/33': the prefix length must be 0 to 32"),
    ("10.1.0.0/8", "'10.1.0.0/8': address bits are set after the prefix length"),
    ("10.0.0.0/8, intranet", "'intranet': not a numeric IPv4 or IPv6 address"),
    ("2001:db8::/200", "'2001:db8::/200': the prefix length must be 0 to 128")])
def test_bad_allow_is_a_config_error(access, tmp_path, value, why):
    r, path, lines = config_errors(access, tmp_path, [f"allow = {value}"])
    assert r.returncode == 1
    assert f"{path}:{line_of(lines, f'allow = {value}')}: allow: {why}" in r.stderr, r.stderr


def test_bad_login_type_in_gateway(access, tmp_path):
    r, path, _ = config_errors(access, tmp_path, [], ["login_type = cleartext"])
    assert r.returncode == 1
    assert f"{path}:2: login_type: unknown value 'cleartext' (use secure or plaintext)" \
        in r.stderr, r.stderr
