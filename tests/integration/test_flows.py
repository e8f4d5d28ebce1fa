"""Every token flow end to end through IMAP (issue 5): delegated refresh tokens (device code
authorization, background use, rotation stored atomically, revocation -> "needs authorization"
+ audit event, restart without a new device-code round) and the password pass-through flow
(ROPC: good password, wrong password, MFA required, disabled account)."""
import hashlib
import os
import re
import sqlite3
import threading
import time

import pytest

from conftest import assert_logged_in, quoted
from harness.gateway import login_lines
from harness.imapclient import RawImap
from harness.stack import ALICE, BOB, ENTRA_PASSWORDS, ERIN, FRANK
from test_authorize_cli import DEFAULT_DEVICE, auth_column, provider_section, query

DELEGATED = "entra"
ROPC = "ropc"
LOCAL = {"anna": ("anna-Local-Pw-1", ALICE), "ben": ("ben-Local-Pw-2", BOB)}


def imap_login(gw, user, password):
    """(RawImap, tagged answer) of one LOGIN over IMAPS; the caller closes the client."""
    c = RawImap(gw.imaps_port, tls=True, ca_file=gw.certs.ca)
    _, done = c.command("a1", f"LOGIN {quoted(user)} {quoted(password)}")
    return c, done


def login_works(gw, user, password):
    c, done = imap_login(gw, user, password)
    with c:
        assert_logged_in(c, done, "a1")


def login_refused(gw, user, password):
    c, done = imap_login(gw, user, password)
    with c:
        assert done.startswith("a1 NO [AUTHENTICATIONFAILED]"), done


def restart_without_cached_token(gw, user):
    """Restarts the gateway with the user's stored access token deleted: its next login must
    redeem the refresh token."""
    gw.stop()
    db = sqlite3.connect(os.path.join(gw.state_dir, "mailgate.db"))
    with db:
        db.execute("DELETE FROM tokens WHERE principal = ?", (f"user:{user}",))
    db.close()
    gw.start()


def last_login(gw, user):
    lines = [l for l in login_lines(gw.log_text()) if l.get("user") == user]
    assert lines, f"no login line for {user}"
    return lines[-1]


@pytest.fixture(scope="module")
def delegated(fleet, idp):
    extra = "\n".join(["", provider_section(DELEGATED, fleet.stack, "delegated"),
                       provider_section(ROPC, fleet.stack, "password")])
    gw = fleet.new("flows", users=False, start=False, extra=extra)
    for user, (password, mailbox) in LOCAL.items():
        gw.add_user(user, password, mailbox=mailbox, provider=DELEGATED)
    for user, mailbox in (("alice", ALICE), ("erin", ERIN), ("frank", FRANK)):
        r = gw.cli("user", "add", user, "--mailbox", mailbox, "--provider", ROPC)
        assert r.returncode == 0, r.stderr
    idp.config(device_interval=1)
    for user, (_, mailbox) in LOCAL.items():
        idp.device_auto("approve", user=mailbox, after=0)
        r = gw.cli("user", "authorize", user, "--device-code", timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
    idp.config(**DEFAULT_DEVICE)
    gw.start()
    yield gw
    idp.config(token_lifetime=3599)
    gw.stop()


def test_delegated_login_uses_the_stored_token(delegated, idp):
    before = idp.stats()
    login_works(delegated, "anna", LOCAL["anna"][0])
    # the access token stored by `user authorize` served the login: no request to the IdP
    assert idp.stats().get("token_requests", 0) == before.get("token_requests", 0)
    assert last_login(delegated, "anna")["mailbox"] == ALICE
    # the local password is still checked
    login_refused(delegated, "anna", "not-the-password")


def test_delegated_refresh_rotation_is_stored(delegated, idp):
    """Short-lived access tokens: the next login redeems the refresh token; the IdP rotates it
    (and invalidates the old one), and the gateway stores the new one before using the token:
    after a restart, the stored refresh token still works."""
    sealed_before = query(delegated, "SELECT sealed FROM grants WHERE user = 'ben'")[0][0]
    idp.config(token_lifetime=4)
    restart_without_cached_token(delegated, "ben")
    before = idp.stats()
    valid_before = idp.refresh_tokens()[BOB]  # other tests' gateways hold some of BOB's too
    login_works(delegated, "ben", LOCAL["ben"][0])
    after = idp.stats()
    assert after["refresh_grants"] == before.get("refresh_grants", 0) + 1
    sealed_after = query(delegated, "SELECT sealed FROM grants WHERE user = 'ben'")[0][0]
    assert sealed_after != sealed_before  # the rotated refresh token replaced the old one
    # rotated: a new one issued, the old one invalid
    assert idp.refresh_tokens()[BOB] == valid_before
    delegated.restart()
    time.sleep(4.5)  # the cached access token has expired
    login_works(delegated, "ben", LOCAL["ben"][0])
    assert idp.stats()["refresh_grants"] == after["refresh_grants"] + 1
    idp.config(token_lifetime=3599)


def test_restart_reuses_cached_token(delegated, idp):
    login_works(delegated, "anna", LOCAL["anna"][0])
    delegated.restart()
    before = idp.stats()
    login_works(delegated, "anna", LOCAL["anna"][0])
    after = idp.stats()
    assert after.get("token_requests", 0) == before.get("token_requests", 0)
    assert after["device_codes_issued"] == before["device_codes_issued"]


def test_revoked_refresh_token(delegated, idp):
    idp.config(token_lifetime=4)
    restart_without_cached_token(delegated, "anna")
    idp.config(revoke_refresh=ALICE)
    before = idp.stats()
    login_refused(delegated, "anna", LOCAL["anna"][0])
    assert idp.stats()["refresh_grants"] == before.get("refresh_grants", 0) + 1
    assert "AADSTS50173" in last_login(delegated, "anna")["reason"]
    assert auth_column(delegated, "anna") == "needs authorization"
    r = delegated.cli("audit", "--user", "anna")
    assert r.returncode == 0, r.stderr
    assert re.search(r"refresh_token_revoked user=anna provider=entra detail=\".*AADSTS50173",
                     r.stdout), r.stdout
    # further logins fail at once without asking the IdP again
    login_refused(delegated, "anna", LOCAL["anna"][0])
    assert idp.stats()["refresh_grants"] == before.get("refresh_grants", 0) + 1
    # authorizing again makes the next login work, without waiting for a backoff
    idp.config(device_interval=1)
    idp.device_auto("approve", user=ALICE, after=0)
    r = delegated.cli("user", "authorize", "anna", "--device-code", timeout=60)
    idp.config(**DEFAULT_DEVICE)
    assert r.returncode == 0, (r.stdout, r.stderr)
    login_works(delegated, "anna", LOCAL["anna"][0])
    assert auth_column(delegated, "anna") == "authorized"
    idp.config(token_lifetime=3599)


def test_password_flow(delegated, idp):
    before = idp.stats().get("password_grants", 0)
    login_works(delegated, "alice", ENTRA_PASSWORDS[ALICE])
    login_works(delegated, "alice", ENTRA_PASSWORDS[ALICE])
    # the second login used the token cached for that password
    assert idp.stats()["password_grants"] == before + 1
    login_refused(delegated, "alice", "not-her-Entra-password")
    assert "AADSTS50126" in last_login(delegated, "alice")["reason"]
    assert idp.stats()["password_grants"] == before + 2
    login_refused(delegated, "erin", ENTRA_PASSWORDS[ERIN])
    assert "AADSTS50076" in last_login(delegated, "erin")["reason"]
    login_refused(delegated, "frank", ENTRA_PASSWORDS[FRANK])
    assert "AADSTS50057" in last_login(delegated, "frank")["reason"]
    # the right password still works after a wrong one (another cache entry)
    login_works(delegated, "alice", ENTRA_PASSWORDS[ALICE])
    # never a password in the log or the store
    text = delegated.log_text()
    for pw in ENTRA_PASSWORDS.values():
        assert pw not in text


def test_concurrent_logins_redeem_the_refresh_token_once(delegated, idp):
    """Single flight per user: 20 simultaneous logins on a cold cache send one refresh grant.
    Two would be fatal with rotation: the second would redeem an invalidated refresh token."""
    login_works(delegated, "ben", LOCAL["ben"][0])  # the local password is in the auth cache
    restart_without_cached_token(delegated, "ben")
    login_works(delegated, "anna", LOCAL["anna"][0])  # anna's token is still stored: warm-up
    idp.fault(delay=1.0, count=1, path_contains="/token")  # the one request takes a while
    before = idp.stats().get("refresh_grants", 0)
    n = 20
    results = [None] * n
    barrier = threading.Barrier(n, timeout=60)

    def one(i):
        try:
            c = RawImap(delegated.imaps_port, tls=True, ca_file=delegated.certs.ca)
            with c:
                barrier.wait()
                _, results[i] = c.command("c1", f"LOGIN ben {quoted(LOCAL['ben'][0])}")
        except Exception as e:  # reported with the others
            results[i] = f"exception: {e!r}"
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    idp.fault()
    assert all(r and r.startswith("c1 OK") for r in results), results
    assert idp.stats()["refresh_grants"] == before + 1
    login_works(delegated, "ben", LOCAL["ben"][0])


def test_idp_down_cached_delegated_token_serves(delegated, idp):
    login_works(delegated, "anna", LOCAL["anna"][0])
    idp.fault(status=503, count=-1)
    try:
        login_works(delegated, "anna", LOCAL["anna"][0])
        login_works(delegated, "anna", LOCAL["anna"][0])
    finally:
        idp.fault()


def test_rotate_key_while_running(delegated, idp):
    """`secrets rotate-key` under a running gateway: the broker takes up the new key, so the
    refresh token it rotates afterwards is sealed with it and survives a restart."""
    idp.config(token_lifetime=4)
    try:
        restart_without_cached_token(delegated, "ben")
        login_works(delegated, "ben", LOCAL["ben"][0])
        r = delegated.cli("secrets", "rotate-key")
        assert r.returncode == 0, r.stderr
        assert "running gateway takes up the new key" in r.stdout
        with open(os.path.join(delegated.state_dir, "secret.key"), "rb") as f:
            key_id = hashlib.sha256(f.read()).digest()[:4]
        time.sleep(4.5)  # the access token expired: the next login rotates the refresh token
        before = idp.stats()["refresh_grants"]
        login_works(delegated, "ben", LOCAL["ben"][0])
        assert idp.stats()["refresh_grants"] == before + 1
        sealed = query(delegated, "SELECT sealed FROM grants WHERE user = 'ben'")[0][0]
        assert sealed[1:5] == key_id  # sealed with the new key
        restart_without_cached_token(delegated, "ben")
        login_works(delegated, "ben", LOCAL["ben"][0])  # the new key opens it
        assert auth_column(delegated, "ben") == "authorized"
    finally:
        idp.config(token_lifetime=3599)
