"""The plain listener: nothing but STARTTLS before TLS; after it, a normal login."""
import imaplib
import ssl

from conftest import USERS, assert_logged_in, connect, plain_b64, s_client
from harness.imapclient import capabilities


def test_plain_greeting_offers_starttls_only(gateway):
    with connect(gateway, tls=False) as c:
        assert c.greeting.startswith("* OK [CAPABILITY ")
        caps = capabilities(c.greeting)
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps
        assert not [cap for cap in caps if cap.startswith("AUTH=")], caps


def test_capability_before_tls(gateway):
    with connect(gateway, tls=False) as c:
        untagged, done = c.command("a1", "CAPABILITY")
        assert done.startswith("a1 OK")
        caps = capabilities(untagged[0])
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps
        assert not [cap for cap in caps if cap.startswith("AUTH=")], caps


def test_login_refused_before_tls(gateway):
    with connect(gateway, tls=False) as c:
        _, done = c.command("a1", "LOGIN alice alice-Secret-1")
        assert done.startswith("a1 NO"), done
        _, done = c.command("a2", "AUTHENTICATE PLAIN " + plain_b64("alice", "alice-Secret-1"))
        assert done.startswith("a2 NO"), done
        # still alive and still able to upgrade
        c.starttls()
        _, done = c.command("a3", "LOGIN alice alice-Secret-1")
        assert_logged_in(c, done, "a3")


def test_capabilities_after_starttls(gateway):
    with connect(gateway, tls=False) as c:
        c.starttls()
        untagged, done = c.command("a1", "CAPABILITY")
        assert done.startswith("a1 OK")
        caps = capabilities(untagged[0])
        for cap in ("IMAP4rev1", "SASL-IR", "ID", "AUTH=PLAIN"):
            assert cap in caps, caps
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps


def test_starttls_then_authenticate_plain(gateway):
    with connect(gateway, tls=False) as c:
        c.starttls()
        _, done = c.command("a1", "AUTHENTICATE PLAIN " + plain_b64("bob", USERS["bob"][0]))
        assert_logged_in(c, done, "a1")


def test_commands_pipelined_with_starttls_are_discarded(gateway):
    """Bytes sent in the clear after STARTTLS must not be executed after the handshake
    (CVE-2011-0411 style command injection)."""
    with connect(gateway, tls=False) as c:
        c.send("a1 STARTTLS\r\na2 CAPABILITY\r\n")
        done = c.readline()
        assert done.startswith("a1 OK"), done
        leftover, c.buf = c.buf, b""
        assert b"a2" not in leftover
        c.wrap()
        _, done = c.command("a3", "NOOP")
        assert done.startswith("a3 OK"), done
        # no answer for the injected a2 arrived before a3's
        assert not c.buf


def test_second_starttls_is_refused(gateway):
    with connect(gateway, tls=False) as c:
        c.starttls()
        _, done = c.command("a1", "STARTTLS")
        assert done.startswith("a1 BAD") or done.startswith("a1 NO"), done


def test_starttls_on_implicit_listener_is_refused(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", "STARTTLS")
        assert done.startswith("a1 BAD") or done.startswith("a1 NO"), done


def test_imaplib_starttls_login(gateway):
    ctx = ssl.create_default_context(cafile=gateway.certs.ca)
    with imaplib.IMAP4("localhost", gateway.imap_port, timeout=30) as m:
        assert "LOGINDISABLED" in m.capabilities
        typ, _ = m.starttls(ssl_context=ctx)
        assert typ == "OK"
        assert "AUTH=PLAIN" in m.capabilities
        typ, _ = m.login("alice", "alice-Secret-1")
        assert typ == "OK"
        assert m.select("INBOX", readonly=True)[0] == "OK"
        m.logout()


def test_openssl_s_client_starttls(gateway):
    lines = s_client(["-starttls", "imap", "-connect", f"127.0.0.1:{gateway.imap_port}"],
                     [("a1", "CAPABILITY"), ("a2", "LOGIN alice alice-Secret-1"),
                      ("a3", "LOGOUT")], gateway.certs.ca)
    caps = capabilities(next(line for line in lines if line.startswith("* CAPABILITY")))
    assert "AUTH=PLAIN" in caps
    assert any(line.startswith("a2 OK") for line in lines), lines
    assert lines[-1].startswith("a3 OK"), lines
