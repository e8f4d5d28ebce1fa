"""Delegated authorizations from the admin CLI (issue 5): `mailgate user authorize NAME
--device-code` against the fake Entra ID's device code flow (RFC 8628: approve, deny, expiry,
slow_down), `--refresh-token-file`, `user deauthorize`, `audit`, the AUTH column of `user list`,
`user del` taking the user's tokens along, `secrets rotate-key` re-sealing refresh tokens, and
users of a flow = password provider (no local password). The gateway is configured but not
started: the commands talk to the IdP and the store themselves."""
import hashlib
import os
import re
import sqlite3
import time

import pytest

from harness.idp_client import DELEGATED_SCOPE
from harness.stack import (ALICE, BOB, CLIENT_ID_DELEGATED, DAVE, ENTRA_PASSWORDS, ERIN, TENANT)
from test_secrets import db_bytes

DELEGATED = "entra"  # flow = delegated, public client
NO_OFFLINE = "entra-nooffline"  # the same without offline_access in the scope
ROPC = "ropc"  # flow = password
REFRESH_PREFIX = b"0.AXoA"  # every refresh token of the fake Entra ID starts so
DEFAULT_DEVICE = {"device_interval": 5, "device_code_lifetime": 900, "force_slow_down": 0}


def provider_section(name, stack, flow, scope=DELEGATED_SCOPE):
    base = f"https://127.0.0.1:{stack.idp.port}/{{tenant}}/oauth2/v2.0"
    return "\n".join([f"[provider {name}]", "type = microsoft", f"tenant = {TENANT}",
                      f"client_id = {CLIENT_ID_DELEGATED}", f"flow = {flow}",
                      f"token_endpoint = {base}/token",
                      f"device_authorization_endpoint = {base}/devicecode", f"scope = {scope}",
                      f"imap_server = localhost:{stack.dovecot.imaps_port}",
                      f"ca_file = {stack.certs.ca}", ""])


@pytest.fixture(scope="module")
def gw(fleet):
    extra = "\n".join(["", provider_section(DELEGATED, fleet.stack, "delegated"),
                       provider_section(NO_OFFLINE, fleet.stack, "delegated",
                                        scope=DELEGATED_SCOPE.replace(" offline_access", "")),
                       provider_section(ROPC, fleet.stack, "password")])
    g = fleet.new("authorize", users=False, start=False, extra=extra)
    g.add_user("alice", "alice-Local-1", mailbox=ALICE, provider=DELEGATED)
    g.add_user("bob", "bob-Local-2", mailbox=BOB, provider=DELEGATED)
    g.add_user("nooffline", "x-Local-3", mailbox=DAVE, provider=NO_OFFLINE)
    g.add_user("app", "app-Local-4", mailbox=DAVE, provider="microsoft")
    return g


@pytest.fixture
def device(idp):
    """Fast device codes for a test; the IdP's defaults again afterwards."""
    idp.config(device_interval=1)
    yield idp
    idp.config(**DEFAULT_DEVICE)


def query(gw, sql, *args):
    db = sqlite3.connect(f"file:{os.path.join(gw.state_dir, 'mailgate.db')}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def auth_column(gw, user):
    r = gw.cli("user", "list")
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0]
    assert header.split()[-1] == "AUTH", header
    for line in r.stdout.splitlines()[1:]:
        if line.split()[0] == user:
            return line[header.index("AUTH"):].strip()
    raise AssertionError(f"{user} not listed:\n{r.stdout}")


def authorize(gw, user, timeout=90):
    start = time.monotonic()
    r = gw.cli("user", "authorize", user, "--device-code", timeout=timeout)
    return r, time.monotonic() - start


def test_device_code_approved(gw, device):
    idp = device
    before = idp.stats()
    tokens_before = set(idp.issued_tokens())
    refresh_before = idp.refresh_tokens().get(ALICE, 0)
    idp.device_auto("approve", user=ALICE, after=1)
    r, _ = authorize(gw, "alice")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "user alice authorized at provider entra" in r.stdout
    # the IdP's instructions, shown as they came
    assert re.search(r"open the page https://microsoft\.com/devicelogin and enter the code "
                     r"[A-Z0-9]{9} to authenticate", r.stdout), r.stdout
    after = idp.stats()
    assert after["device_codes_issued"] == before["device_codes_issued"] + 1
    assert after["slow_down_sent"] == before["slow_down_sent"]  # polled politely
    assert idp.refresh_tokens()[ALICE] == refresh_before + 1
    new_tokens = set(idp.issued_tokens()) - tokens_before
    assert len(new_tokens) == 1
    assert auth_column(gw, "alice") == "authorized"
    # stored: the grant (sealed refresh token) and the access token under user:alice
    grants = query(gw, "SELECT user, provider, state, length(sealed) FROM grants")
    assert [(g[0], g[1], g[2]) for g in grants] == [("alice", DELEGATED, 0)]
    assert grants[0][3] > 800  # an 800-byte random refresh token, sealed
    rows = query(gw, "SELECT provider, principal, scope FROM tokens")
    assert rows == [(DELEGATED, "user:alice", DELEGATED_SCOPE)]
    # but neither token in plaintext anywhere in the database files, nor on the terminal
    data = db_bytes(gw)
    assert REFRESH_PREFIX not in data
    for token in new_tokens:
        assert token.encode() not in data
        assert token.split(".")[2].encode() not in data
        assert token not in r.stdout + r.stderr
    assert "0.AXoA" not in r.stdout + r.stderr


def test_slow_down_honoured(gw, device):
    idp = device
    before = idp.stats()
    idp.config(force_slow_down=2)
    idp.device_auto("approve", user=BOB, after=0)
    r, elapsed = authorize(gw, "bob")
    assert r.returncode == 0, (r.stdout, r.stderr)
    after = idp.stats()
    # two slow_downs and then the tokens: polls at 1 s, +6 s, +11 s (RFC 8628 3.5: +5 s each)
    assert after["slow_down_sent"] - before["slow_down_sent"] == 2
    assert after["device_polls"] - before["device_polls"] == 3
    assert elapsed >= 1 + 6 + 11 - 1, elapsed
    assert auth_column(gw, "bob") == "authorized"


def test_device_code_declined(gw, device):
    idp = device
    idp.device_auto("deny", after=0)
    r, _ = authorize(gw, "nooffline")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "declined" in r.stderr
    assert auth_column(gw, "nooffline") == "not authorized"


def test_device_code_expired(gw, device):
    idp = device
    idp.config(device_code_lifetime=3)
    before = idp.stats()
    r, elapsed = authorize(gw, "nooffline")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "expired" in r.stderr
    assert elapsed < 15, elapsed
    assert idp.stats()["device_polls"] - before["device_polls"] >= 1
    assert auth_column(gw, "nooffline") == "not authorized"


def test_no_refresh_token_without_offline_access(gw, device):
    idp = device
    idp.device_auto("approve", user=DAVE, after=0)
    r, _ = authorize(gw, "nooffline")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "offline_access" in r.stderr
    assert auth_column(gw, "nooffline") == "not authorized"
    assert query(gw, "SELECT count(*) FROM grants WHERE user = 'nooffline'") == [(0,)]


def test_device_code_endpoint_failure_reported(gw, device):
    idp = device
    idp.fault(status=503, count=1, path_contains="devicecode")
    r, _ = authorize(gw, "nooffline")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no device code from provider entra" in r.stderr, r.stderr


def test_only_delegated_providers(gw):
    r = gw.cli("user", "authorize", "app", "--device-code")
    assert r.returncode == 1
    assert "flow = delegated" in r.stderr
    assert auth_column(gw, "app") == "app-only"
    r = gw.cli("user", "authorize", "nobody", "--device-code")
    assert r.returncode == 1 and "no such user" in r.stderr
    r = gw.cli("user", "authorize", "alice")
    assert r.returncode == 2  # neither --device-code nor --refresh-token-file


def test_deauthorize(gw, idp):
    if auth_column(gw, "alice") != "authorized":
        pytest.skip("needs test_device_code_approved")
    r = gw.cli("user", "deauthorize", "alice")
    assert r.returncode == 0, r.stderr
    assert "deauthorized" in r.stdout
    assert auth_column(gw, "alice") == "not authorized"
    assert query(gw, "SELECT count(*) FROM grants WHERE user = 'alice'") == [(0,)]
    assert query(gw, "SELECT count(*) FROM tokens WHERE principal = 'user:alice'") == [(0,)]
    # again: nothing left, still success, and it says so
    r = gw.cli("user", "deauthorize", "alice")
    assert r.returncode == 0, r.stderr
    assert "nothing to delete" in r.stdout


def test_refresh_token_file_import(gw, idp, tmp_path):
    status, body = idp.password_request(TENANT, CLIENT_ID_DELEGATED, ALICE,
                                        ENTRA_PASSWORDS[ALICE])
    assert status == 200 and body["refresh_token"].startswith(REFRESH_PREFIX.decode()), body
    refresh = body["refresh_token"]
    r = gw.cli("user", "authorize", "alice", "--refresh-token-file", "-", stdin=refresh + "\n")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "user alice authorized at provider entra" in r.stdout
    assert refresh not in r.stdout + r.stderr
    assert auth_column(gw, "alice") == "authorized"
    assert refresh.encode() not in db_bytes(gw)
    # from a file too; garbage is refused and leaves the grant alone
    path = tmp_path / "rt"
    path.write_text("not a\x01token\n")
    r = gw.cli("user", "authorize", "alice", "--refresh-token-file", str(path))
    assert r.returncode == 1 and "refresh token" in r.stderr
    path.write_text(refresh + "\n")
    r = gw.cli("user", "authorize", "alice", "--refresh-token-file", str(path))
    assert r.returncode == 0, r.stderr
    assert auth_column(gw, "alice") == "authorized"


def test_audit(gw):
    r = gw.cli("audit", "--user", "alice")
    assert r.returncode == 0, r.stderr
    # the authorization events (the harness's `user set` at user add writes switches_changed)
    lines = [line for line in r.stdout.splitlines() if " switches_changed " not in line]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    for line in lines:
        assert re.match(stamp + r" \w+ user=alice provider=entra", line), line
    events = [line.split()[1] for line in lines]
    # newest first: the imports, the deauthorization, the device code authorization
    assert events[:2] == ["authorized", "authorized"], lines
    assert "deauthorized" in events
    assert events.index("deauthorized") < len(events) - 1
    assert lines[0].endswith('detail="imported refresh token"'), lines[0]
    assert lines[-1].endswith('detail="device code"'), lines[-1]
    r = gw.cli("audit", "--limit", "1")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1
    r = gw.cli("audit")
    assert "user=bob" in r.stdout
    assert gw.cli("audit", "--limit", "x").returncode == 2


def test_polling_survives_token_endpoint_failures(gw, device):
    idp = device
    before = idp.stats()
    idp.device_auto("approve", user=ALICE, after=0)
    idp.fault(status=503, count=2, path_contains="/token")
    r, elapsed = authorize(gw, "alice")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stderr.count("still trying") == 2, r.stderr
    # backoff: 1 s, then 2 s, then 4 s before the poll that succeeds
    assert elapsed >= 1 + 2 + 4 - 1, elapsed
    assert idp.stats()["device_codes_issued"] == before["device_codes_issued"] + 1
    assert auth_column(gw, "alice") == "authorized"


def test_rotate_key_reseals_refresh_tokens(gw):
    before = query(gw, "SELECT user, provider, sealed FROM grants ORDER BY user")
    assert before, "earlier tests store grants"
    r = gw.cli("secrets", "rotate-key")
    assert r.returncode == 0, r.stderr
    with open(os.path.join(gw.state_dir, "secret.key"), "rb") as f:
        key_id = hashlib.sha256(f.read()).digest()[:4]
    after = query(gw, "SELECT user, provider, sealed FROM grants ORDER BY user")
    assert [a[:2] for a in after] == [b[:2] for b in before]
    for (_, _, old), (_, _, new) in zip(before, after):
        assert new != old and len(new) == len(old)
        assert new[1:5] == key_id  # sealed under the new key
    assert auth_column(gw, "alice") == "authorized"


def test_user_del_takes_grants_and_tokens(gw):
    assert query(gw, "SELECT count(*) FROM grants WHERE user = 'bob'") == [(1,)]
    assert query(gw, "SELECT count(*) FROM tokens WHERE principal = 'user:bob'") == [(1,)]
    r = gw.cli("user", "del", "bob")
    assert r.returncode == 0, r.stderr
    assert query(gw, "SELECT count(*) FROM grants WHERE user = 'bob'") == [(0,)]
    assert query(gw, "SELECT count(*) FROM tokens WHERE principal = 'user:bob'") == [(0,)]
    r = gw.cli("audit", "--user", "bob", "--limit", "1")
    assert re.match(r"\S+Z deleted user=bob\b", r.stdout), r.stdout


def test_password_flow_user_has_no_local_password(gw):
    r = gw.cli("user", "add", "erin", "--mailbox", ERIN, "--provider", ROPC)
    assert r.returncode == 0, r.stderr
    assert "no local password is stored" in r.stdout
    assert "Password for" not in r.stdout
    assert query(gw, "SELECT password_hash FROM users WHERE name = 'erin'") == [("",)]
    assert auth_column(gw, "erin") == "password"
    r = gw.cli("user", "passwd", "erin", "--password-stdin", stdin="x\n")
    assert r.returncode == 1
    assert "flow = password" in r.stderr
    assert query(gw, "SELECT password_hash FROM users WHERE name = 'erin'") == [("",)]
    r = gw.cli("user", "list", "--json")
    assert '"auth": "password"' in r.stdout
