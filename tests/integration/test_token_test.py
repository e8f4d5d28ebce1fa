"""`mailgate token test NAME` (and `token get --user`): the user's token obtained as the gateway
would (the store attached: cached tokens, refresh tokens), then a real upstream login over IMAP,
POP3 and SMTP against the private Dovecot, with one line per protocol and the fix for what is
refused. The gateway is configured but never started."""
import re

import pytest

from harness.procs import free_port
from harness.stack import (ALICE, BOB, CLIENT_ID, CLIENT_ID_POP_ONLY, CLIENT_SECRET,
                           CLIENT_SECRET_POP_ONLY, ENTRA_PASSWORDS)
from test_authorize_cli import DEFAULT_DEVICE, provider_section
from test_oauthbearer import assert_dovecot_login, dovecot_offset

DELEGATED = "entra"
ROPC = "ropc"
ALL = ("imap", "pop3", "smtp")


def lines_of(out):
    """protocol -> its report line."""
    return {l.split()[0]: l for l in out.splitlines() if l.split() and l.split()[0] in ALL}


def assert_no_token(r):
    text = r.stdout + r.stderr
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text), text
    assert CLIENT_SECRET not in text


@pytest.fixture(scope="module")
def gw(fleet, idp):
    extra = "\n".join(["", provider_section(DELEGATED, fleet.stack, "delegated"),
                       provider_section(ROPC, fleet.stack, "password")])
    g = fleet.new("token-test", users=False, start=False, protocols=ALL, extra=extra)
    g.add_user("app", "app-Local-1", mailbox=ALICE, provider="microsoft")
    g.add_user("dele", "dele-Local-2", mailbox=ALICE, provider=DELEGATED)
    g.add_user("never", "never-Local-3", mailbox=BOB, provider=DELEGATED)
    r = g.cli("user", "add", "pw", "--mailbox", ALICE, "--provider", ROPC)
    assert r.returncode == 0, r.stderr
    return g


def test_app_only_all_three_work(gw, idp):
    before = idp.stats()["tokens_issued"]
    r = gw.cli("token", "test", "app")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"user app: mailbox {ALICE} at provider microsoft (flow client_credentials, XOAUTH2)" \
        in r.stdout
    assert re.search(r"^token  ok: roles IMAP\.AccessAsApp POP\.AccessAsApp SMTP\.SendAsApp; "
                     r"expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in .*\); from the (token "
                     r"endpoint|cache)$", r.stdout, re.M), r.stdout
    got = lines_of(r.stdout)
    port = {p: gw.settings[f"{p}_server"].split(":")[1] for p in ALL}
    for proto in ALL:
        assert re.match(rf"^{proto}\s+localhost:{port[proto]}\s+works$", got[proto]), r.stdout
    assert idp.stats()["tokens_issued"] <= before + 1
    assert_no_token(r)
    # the token was stored: the next run takes it from the cache, without asking the IdP
    before = idp.stats()["tokens_issued"]
    r = gw.cli("token", "test", "app", "--protocol", "pop3")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "; from the cache" in r.stdout
    assert list(lines_of(r.stdout)) == ["pop3"] and "works" in lines_of(r.stdout)["pop3"]
    assert idp.stats()["tokens_issued"] == before


def test_pop_only_app_refused_with_fixes(fleet):
    g = fleet.new("token-test-poponly", users=False, start=False, protocols=("imap", "pop3"),
                  client_id=CLIENT_ID_POP_ONLY, client_secret=CLIENT_SECRET_POP_ONLY)
    g.add_user("app", "app-Local-1", mailbox=ALICE)
    r = g.cli("token", "test", "app", "--protocol", "imap")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "token  ok: roles POP.AccessAsApp;" in r.stdout
    imap = lines_of(r.stdout)["imap"]
    assert " refused: " in imap, imap
    assert "Fix: Add the application permission IMAP.AccessAsApp (Office 365 Exchange Online) " \
           "and grant admin consent." in imap, imap
    r = g.cli("token", "test", "app", "--protocol", "pop3")
    assert r.returncode == 1, (r.stdout, r.stderr)
    pop3 = lines_of(r.stdout)["pop3"]
    assert " refused: -ERR" in pop3, pop3
    assert f"New-ServicePrincipal -AppId {CLIENT_ID_POP_ONLY}" in pop3, pop3
    assert f"Add-MailboxPermission -Identity {ALICE}" in pop3 and "FullAccess" in pop3, pop3
    assert "IMAP.AccessAsApp" not in pop3
    assert_no_token(r)


def test_bad_secret_is_a_token_error(fleet):
    g = fleet.new("token-test-badsecret", users=False, start=False,
                  client_secret="Q~definitely.not.the.secret")
    g.add_user("app", "app-Local-1", mailbox=ALICE)
    r = g.cli("token", "test", "app")
    assert r.returncode == 1, (r.stdout, r.stderr)
    # one line: the IdP's error and its fix
    assert re.search(r"^token  no token from provider microsoft: invalid_client: AADSTS7000215: "
                     r".*fix: .*client_secret_file", r.stdout, re.M), r.stdout
    assert not lines_of(r.stdout)  # no login attempted without a token
    assert "Q~definitely.not.the.secret" not in r.stdout + r.stderr


def test_delegated_user(gw, idp):
    r = gw.cli("token", "get", "--user", "never")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "user never needs authorization: run mailgate user authorize never --device-code" \
        in r.stderr
    r = gw.cli("token", "test", "never", "--protocol", "imap")
    assert r.returncode == 1
    assert "user never needs authorization" in r.stdout
    assert not lines_of(r.stdout)

    idp.config(device_interval=1)
    try:
        idp.device_auto("approve", user=ALICE, after=0)
        r = gw.cli("user", "authorize", "dele", "--device-code", timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
    finally:
        idp.config(**DEFAULT_DEVICE)
    before = idp.stats()
    r = gw.cli("token", "get", "--user", "dele")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert re.search(r"^scopes: .*IMAP\.AccessAsUser\.All", r.stdout, re.M), r.stdout
    assert f"mailgate user: dele\nmailbox: {ALICE}\nsource: cached\n" in r.stdout, r.stdout
    r = gw.cli("token", "test", "dele", "--protocol", "imap")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "flow delegated" in r.stdout and "from the cache" in r.stdout
    assert lines_of(r.stdout)["imap"].endswith(" works"), r.stdout
    # served by the access token `user authorize` stored: no request to the IdP at all
    assert idp.stats().get("token_requests", 0) == before.get("token_requests", 0)
    assert_no_token(r)


def test_password_flow(gw):
    r = gw.cli("token", "test", "pw", "--protocol", "imap")
    assert r.returncode == 2
    assert "flow = password, which needs --password-stdin" in r.stderr
    r = gw.cli("token", "test", "pw", "--protocol", "imap", "--password-stdin",
               stdin=ENTRA_PASSWORDS[ALICE] + "\n")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert lines_of(r.stdout)["imap"].endswith(" works"), r.stdout
    assert ENTRA_PASSWORDS[ALICE] not in r.stdout + r.stderr
    r = gw.cli("token", "get", "--user", "pw", "--password-stdin", stdin="wrong-password\n")
    assert r.returncode == 1
    assert "provider ropc refused user pw" in r.stderr and "AADSTS50126" in r.stderr, r.stderr


def test_app_token_needs_user_for_per_user_flows(gw):
    r = gw.cli("token", "get", "--provider", DELEGATED)
    assert r.returncode == 2
    assert "flow = delegated" in r.stderr and "--user" in r.stderr
    r = gw.cli("token", "get", "--user", "dele", "--provider", "microsoft")
    assert r.returncode == 2 and "belongs to provider entra" in r.stderr


def test_oauthbearer(fleet, stack):
    from harness.stack import CLIENT_ID2, CLIENT_SECRET2, TENANT
    g = fleet.new("token-test-bearer", users=False, start=False, protocols=ALL,
                  provider_type="generic", sasl="oauthbearer", client_id=CLIENT_ID2,
                  client_secret=CLIENT_SECRET2,
                  token_endpoint=stack.idp.token_endpoint.replace("{tenant}", TENANT))
    g.add_user("app", "app-Local-1", mailbox=ALICE)
    offset = dovecot_offset(stack)
    r = g.cli("token", "test", "app")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "OAUTHBEARER" in r.stdout.splitlines()[0]
    assert all(lines_of(r.stdout)[p].endswith(" works") for p in ALL), r.stdout
    for service in ("imap", "pop3", "submission"):
        assert_dovecot_login(stack, offset, service, ALICE)


def test_upstream_unreachable(fleet):
    g = fleet.new("token-test-closed", users=False, start=False,
                  imap_server=f"localhost:{free_port()}")
    g.add_user("app", "app-Local-1", mailbox=ALICE)
    r = g.cli("token", "test", "app", "--protocol", "imap")
    assert r.returncode == 1, (r.stdout, r.stderr)
    imap = lines_of(r.stdout)["imap"]
    assert "unavailable (connect): cannot connect to localhost:" in imap, imap
    assert "Fix:" not in imap


def test_google_service_account_opaque_token(fleet, stack):
    """Google's tokens are opaque: size and the cached expiry instead of claims; the login works
    with the mailbox as the service account's subject."""
    g = fleet.new("token-test-google", users=False, start=False)
    key = stack.google_service_account_file(g.dir)
    g.settings["extra"] = "\n".join([
        "", "[provider google]", "type = google", f"service_account_file = {key}",
        f"imap_server = localhost:{stack.dovecot.imaps_port}", f"ca_file = {stack.certs.ca}", ""])
    g.write_config()
    g.add_user("gal", "gal-Local-1", mailbox=ALICE, provider="google")
    r = g.cli("token", "get", "--user", "gal")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert re.search(r"^provider: google\ntoken: \d+ bytes \(opaque\)\nexpires: \d{4}-.*\(in "
                     r"(59 min|60 min|1 h 0 min)\)\nmailgate user: gal\nmailbox: "
                     rf"{re.escape(ALICE)}\nsource: token endpoint\n$", r.stdout), r.stdout
    r = g.cli("token", "test", "gal", "--protocol", "imap")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "flow service_account" in r.stdout
    assert re.search(r"^token  ok: \d+ bytes \(opaque\); expires .*; from the cache$", r.stdout,
                     re.M), r.stdout
    assert lines_of(r.stdout)["imap"].endswith(" works"), r.stdout


def test_gateway_log_names_the_missing_permission(fleet):
    """The same app through the gateway: Exchange (here Dovecot) only says "authentication
    failed"; the login's log line says which permission the token lacks."""
    from conftest import quoted
    from harness.gateway import login_lines
    from harness.imapclient import RawImap
    g = fleet.new("poponly-gateway", users=False, start=False,
                  client_id=CLIENT_ID_POP_ONLY, client_secret=CLIENT_SECRET_POP_ONLY)
    g.add_user("app", "app-Local-1", mailbox=ALICE)
    g.start()
    with RawImap(g.imaps_port, tls=True, ca_file=g.certs.ca) as c:
        _, done = c.command("a1", f"LOGIN app {quoted('app-Local-1')}")
    assert done.startswith("a1 NO [AUTHENTICATIONFAILED]"), done
    reason = [l for l in login_lines(g.log_text()) if l.get("user") == "app"][-1]["reason"]
    assert "rejected" in reason, reason
    assert "Add the application permission IMAP.AccessAsApp" in reason, reason
    assert "admin consent" in reason, reason
    g.stop()
