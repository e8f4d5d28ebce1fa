"""Google end to end through IMAP (issue 5): a service account with domain-wide delegation
(JWT bearer grant with sub = the mailbox, one token per mailbox) and delegated users whose
refresh token was imported with `user authorize --refresh-token-file`; a revoked Google
refresh token marks the user "needs authorization"."""
import os
import sqlite3

import pytest

from conftest import assert_logged_in, quoted
from harness.gateway import login_lines
from harness.imapclient import RawImap
from harness.owner import give_to_gateway_user, traversable
from harness.stack import (ALICE, BOB, DAVE, ERIN, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)
from test_authorize_cli import auth_column

SA = "google"
DELEGATED = "gmail"
USERS = {"ga": ("ga-Local-Pw-1", ALICE, SA), "gd": ("gd-Local-Pw-2", DAVE, SA),
         "ge": ("ge-Local-Pw-3", ERIN, SA), "gb": ("gb-Local-Pw-4", BOB, DELEGATED)}


def sections(stack, directory):
    sa_file = stack.google_service_account_file(directory)
    common = [f"imap_server = localhost:{stack.dovecot.imaps_port}", f"ca_file = {stack.certs.ca}"]
    secret_file = os.path.join(directory, "gmail-client-secret")
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(GOOGLE_CLIENT_SECRET + "\n")
    give_to_gateway_user(secret_file)
    return "\n".join(["", f"[provider {SA}]", "type = google",
                      f"service_account_file = {sa_file}", *common, "",
                      f"[provider {DELEGATED}]", "type = google", "flow = delegated",
                      f"client_id = {GOOGLE_CLIENT_ID}", f"client_secret_file = {secret_file}",
                      f"token_endpoint = https://127.0.0.1:{stack.idp.port}/google/token",
                      *common, ""])


def imap_login(gw, user):
    c = RawImap(gw.imaps_port, tls=True, ca_file=gw.certs.ca)
    _, done = c.command("g1", f"LOGIN {user} {quoted(USERS[user][0])}")
    return c, done


def last_reason(gw, user):
    return [l for l in login_lines(gw.log_text()) if l.get("user") == user][-1]["reason"]


@pytest.fixture(scope="module")
def google_gw(fleet, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("google"))
    traversable(directory)  # pytest's directories are 0700: the gateway user reads files in it
    gw = fleet.new("google", users=False, start=False, extra=sections(fleet.stack, directory))
    for user, (password, mailbox, provider) in USERS.items():
        gw.add_user(user, password, mailbox=mailbox, provider=provider)
    return gw.start()


def test_service_account_login_per_mailbox(google_gw, idp):
    before = idp.stats().get("google_jwt_grants", 0)
    for user in ("ga", "gd"):
        c, done = imap_login(google_gw, user)
        with c:
            assert_logged_in(c, done, "g1")
    # one token per mailbox (sub), then served from the cache
    assert idp.stats()["google_jwt_grants"] == before + 2
    c, done = imap_login(google_gw, "ga")
    with c:
        assert_logged_in(c, done, "g1")
    assert idp.stats()["google_jwt_grants"] == before + 2


def test_service_account_mailbox_not_delegated(google_gw):
    c, done = imap_login(google_gw, "ge")
    with c:
        assert done.startswith("g1 NO [UNAVAILABLE]"), done
    assert "unauthorized_client" in last_reason(google_gw, "ge")


def test_google_delegated_imported_refresh_token(google_gw, idp):
    c, done = imap_login(google_gw, "gb")
    with c:
        assert done.startswith("g1 NO [AUTHENTICATIONFAILED]"), done  # not authorized yet
    assert "not authorized" in last_reason(google_gw, "gb")
    refresh = idp.google_refresh_token(GOOGLE_CLIENT_ID, BOB)
    r = google_gw.cli("user", "authorize", "gb", "--refresh-token-file", "-",
                      stdin=refresh + "\n")
    assert r.returncode == 0, r.stderr
    assert auth_column(google_gw, "gb") == "authorized"
    c, done = imap_login(google_gw, "gb")
    with c:
        assert_logged_in(c, done, "g1")
    # Google revokes it: the cached access token is forgotten by a restart, and the next login
    # finds the refresh token refused
    idp.config(revoke_refresh=BOB)
    google_gw.stop()
    db = sqlite3.connect(os.path.join(google_gw.state_dir, "mailgate.db"))
    with db:
        db.execute("DELETE FROM tokens WHERE principal = 'user:gb'")
    db.close()
    google_gw.start()
    c, done = imap_login(google_gw, "gb")
    with c:
        assert done.startswith("g1 NO [AUTHENTICATIONFAILED]"), done
    assert "expired or revoked" in last_reason(google_gw, "gb")
    assert auth_column(google_gw, "gb") == "needs authorization"
