"""`mailgate token get`: the claims of a token from the (fake) Entra ID, --raw, and explained
AADSTS errors. The instances are configured but never started: the command talks to the IdP
itself, through the same token client the broker uses."""
import base64
import json
import re

import pytest

from harness.stack import (CLIENT_ID, CLIENT_ID_POP_ONLY, CLIENT_SECRET, CLIENT_SECRET_POP_ONLY,
                           TENANT_ID)

JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def jwt_payload(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def tok_gw(fleet):
    """IMAP, POP3 and SMTP listeners, the main app (all three roles)."""
    return fleet.new("token-cli", users=False, start=False, protocols=("imap", "pop3", "smtp"))


def test_token_get_prints_claims_not_token(tok_gw, idp):
    before = idp.stats()["tokens_issued"]
    r = tok_gw.cli("token", "get", "--provider", "microsoft")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert idp.stats()["tokens_issued"] == before + 1
    out = r.stdout
    assert "provider: microsoft" in out
    assert "audience: https://outlook.office.com" in out
    assert "roles: IMAP.AccessAsApp POP.AccessAsApp SMTP.SendAsApp" in out
    assert f"app id: {CLIENT_ID}" in out
    assert f"tenant: {TENANT_ID}" in out
    assert re.search(r"^expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (59 min|60 min|1 h 0 min)\)$", out, re.M), out
    assert "warning" not in r.stderr, r.stderr
    # neither the token nor the secret anywhere, nor anything JWT-shaped
    assert CLIENT_SECRET not in out + r.stderr
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", out + r.stderr), out


def test_token_get_default_provider(tok_gw):
    r = tok_gw.cli("token", "get")  # the only provider configured
    assert r.returncode == 0, r.stderr
    assert "provider: microsoft" in r.stdout


def test_token_get_raw_prints_only_the_token(tok_gw, idp):
    r = tok_gw.cli("token", "get", "--provider", "microsoft", "--raw")
    assert r.returncode == 0, r.stderr
    token = r.stdout.rstrip("\n")
    assert "\n" not in token and JWT_RE.match(token), r.stdout
    claims = jwt_payload(token)
    assert claims["appid"] == CLIENT_ID and claims["tid"] == TENANT_ID
    # it is a real token: the IdP's introspection knows it
    assert idp.introspect(token)["active"] is True


def test_token_get_wrong_secret_explained(fleet):
    gw = fleet.new("token-badsecret", users=False, start=False,
                   client_secret="Q~definitely.not.the.secret")
    r = gw.cli("token", "get", "--provider", "microsoft")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert "AADSTS7000215" in r.stderr
    assert "invalid_client" in r.stderr
    assert "client_secret_file" in r.stderr  # the fix
    assert "Q~definitely.not.the.secret" not in r.stderr


def test_token_get_unknown_app_explained(fleet):
    gw = fleet.new("token-noapp", users=False, start=False,
                   client_id="99999999-0000-0000-0000-000000000000")
    r = gw.cli("token", "get")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "AADSTS700016" in r.stderr and "client_id" in r.stderr


def test_token_get_missing_role_warns(fleet):
    gw = fleet.new("token-poponly", users=False, start=False, protocols=("imap", "pop3"),
                   client_id=CLIENT_ID_POP_ONLY, client_secret=CLIENT_SECRET_POP_ONLY)
    r = gw.cli("token", "get", "--provider", "microsoft")
    assert r.returncode == 0, r.stderr  # a token was obtained; it just lacks a permission
    assert "roles: POP.AccessAsApp" in r.stdout
    assert re.search(r"missing role IMAP\.AccessAsApp.*API permissions.*admin consent",
                     r.stderr), r.stderr
    assert "POP.AccessAsApp" not in r.stderr  # present: no warning for it
    assert "SMTP.SendAsApp" not in r.stderr  # no smtp listener: not needed


def test_token_get_idp_down_is_temporary(fleet, idp):
    idp.fault(status=503, count=-1)
    gw = fleet.new("token-idpdown", users=False, start=False)
    r = gw.cli("token", "get")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "503" in r.stderr or "temporarily_unavailable" in r.stderr, r.stderr
    assert "temporary" in r.stderr


@pytest.mark.parametrize("args,code,text", [
    (("token",), 2, "subcommand"),
    (("token", "frob"), 2, "get"),
    (("token", "get", "--bogus"), 2, "--bogus"),
    (("token", "get", "--provider"), 2, "needs a value"),
    (("token", "get", "--provider", "nope"), 1, "unknown provider"),
    (("token", "get", "--user", "nobody"), 1, "no such user 'nobody'"),
    (("token", "test"), 2, "needs a user NAME"),
    (("token", "test", "a", "--protocol", "jmap"), 2, "imap, pop3 or smtp"),
])
def test_token_get_usage(tok_gw, args, code, text):
    r = tok_gw.cli(*args)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert text in r.stderr
