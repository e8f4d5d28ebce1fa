"""Certificate credentials: the provider has client_certificate + client_private_key instead of a
secret; the broker signs a JWT client assertion per token request and the fake Entra ID checks it
against the certificate registered for the app (certs/app.pem, see stack.py)."""
import pytest

from conftest import USERS, assert_logged_in, connect, plain_b64, quoted, try_login
from harness.lineclient import LineClient

UNAVAILABLE = "NO [UNAVAILABLE]"


def cert_gateway(fleet, certs, name, cert=None, key=None, **settings):
    return fleet.new(f"{name}-{len(fleet.instances)}", protocols=("imap", "pop3", "smtp"),
                     client_certificate=cert or certs.app_cert,
                     client_private_key=key or certs.app_key, **settings)


@pytest.fixture(scope="module")
def cert_gw(fleet, certs):
    return cert_gateway(fleet, certs, "cert")


def assertions(idp):
    return idp.stats().get("assertions_accepted", 0)


def imap_login(gw, user="alice"):
    c = connect(gw)
    _, done = c.command("L1", f"LOGIN {user} {quoted(USERS[user][0])}")
    assert_logged_in(c, done, "L1")
    c.close()


def test_imap_pop3_smtp_with_certificate(cert_gw, idp, stack):
    before = assertions(idp)
    imap_login(cert_gw)
    assert assertions(idp) == before + 1  # one token, signed assertion, for all that follows
    stack.reseed_pop3()
    with LineClient(cert_gw.port("pop3s"), tls=True, ca_file=cert_gw.certs.ca) as c:
        assert c.greeting.startswith("+OK")
        assert c.cmd("USER dave").startswith("+OK")
        answer = c.cmd(f"PASS {USERS['dave'][0]}")
        assert answer.startswith("+OK"), answer
        assert c.cmd("STAT").startswith("+OK ")
        assert c.cmd("QUIT").startswith("+OK")
    with LineClient(cert_gw.port("smtps"), tls=True, ca_file=cert_gw.certs.ca) as c:
        assert c.greeting.startswith("220 ")
        assert c.smtp("EHLO client.test")[-1].startswith("250 ")
        answer = c.smtp(f"AUTH PLAIN {plain_b64('alice', USERS['alice'][0])}")
        assert answer[0].startswith("235 "), answer
        assert c.smtp("QUIT")[0].startswith("221")
    log = cert_gw.log_text()
    assert "client_assertion" not in log
    with open(cert_gw.certs.app_key) as f:
        key_lines = [line for line in f.read().splitlines() if "PRIVATE KEY" not in line]
    assert not any(line in log for line in key_lines[:3])
    assert idp.stats()["last_assertion_alg"] == "RS256"


def test_ps256(fleet, certs, idp):
    gw = cert_gateway(fleet, certs, "cert-ps256", client_assertion_alg="PS256")
    try:
        before = assertions(idp)
        imap_login(gw)
        assert assertions(idp) == before + 1
        assert idp.stats()["last_assertion_alg"] == "PS256"
    finally:
        gw.stop()


def test_unregistered_certificate_is_unavailable(fleet, certs, idp):
    gw = cert_gateway(fleet, certs, "cert-other", cert=certs.app_other_cert,
                      key=certs.app_other_key)
    try:
        offset = gw.log_offset()
        done = try_login(gw)
        assert done.startswith("f1 " + UNAVAILABLE), done
        gw.wait_for_log(r"token request failed .*AADSTS700027", offset)
        assert idp.stats()["last_token_error"] == "invalid_client"
    finally:
        gw.stop()


def test_key_not_matching_certificate_is_a_config_error(fleet, certs):
    gw = fleet.new("cert-mismatch", users=False, start=False, client_certificate=certs.app_cert,
                   client_private_key=certs.app_other_key)
    r = gw.cli("check-config")
    assert r.returncode == 1
    assert "does not match the certificate" in r.stderr
    assert "PRIVATE KEY" not in r.stderr + r.stdout


# -- the fake IdP's own checks (what a gateway bug would trip over) -----------------------------

def signed_assertion(certs, key, claims, tmp_path, cert=None):
    """A RS256 client assertion made with the openssl CLI: header names cert, key signs."""
    import base64
    import hashlib
    import json
    import ssl
    import subprocess

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    with open(cert or certs.app_cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    header = {"alg": "RS256", "typ": "JWT", "x5t#S256": b64(hashlib.sha256(der).digest())}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    (tmp_path / "input").write_bytes(signing_input.encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, str(tmp_path / "input")],
                         capture_output=True, check=True).stdout
    return f"{signing_input}.{b64(sig)}"


def assertion_request(stack, assertion):
    from harness.stack import CLIENT_ID, SCOPE, TENANT
    return stack.idp.client._request(
        f"/{TENANT}/oauth2/v2.0/token",
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "scope": SCOPE,
         "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
         "client_assertion": assertion}, form=True)


def test_idp_checks_client_assertions(stack, certs, tmp_path):
    import time
    import uuid
    from harness.stack import CLIENT_ID, TENANT

    now = int(time.time())
    aud = f"https://127.0.0.1:{stack.idp.port}/{TENANT}/oauth2/v2.0/token"

    def claims(**over):
        c = {"aud": aud, "iss": CLIENT_ID, "sub": CLIENT_ID, "jti": str(uuid.uuid4()),
             "nbf": now, "iat": now, "exp": now + 600}
        c.update(over)
        return c

    good = signed_assertion(certs, certs.app_key, claims(), tmp_path)
    assert assertion_request(stack, good)[0] == 200
    status, body = assertion_request(stack, good)  # the same jti again
    assert status == 400 and "replay" in body["error_description"], body
    forged = signed_assertion(certs, certs.app_other_key, claims(), tmp_path)
    status, body = assertion_request(stack, forged)
    assert status == 401 and body["error_codes"] == [700027], body
    assert "signature validation" in body["error_description"]
    expired = signed_assertion(certs, certs.app_key, claims(nbf=now - 7200, exp=now - 3600),
                               tmp_path)
    status, body = assertion_request(stack, expired)
    assert body["error_codes"] == [700024], body
    wrong_sub = signed_assertion(certs, certs.app_key, claims(sub="someone-else"), tmp_path)
    assert assertion_request(stack, wrong_sub)[1]["error_codes"] == [700021]
    wrong_aud = signed_assertion(certs, certs.app_key, claims(aud="https://elsewhere/token"),
                                 tmp_path)
    assert assertion_request(stack, wrong_aud)[0] == 400
