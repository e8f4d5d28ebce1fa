"""Self-healing tokens (issue 10, finding 4): a token the upstream refuses is dropped (from the
broker's cache and from the store) and a login retries once with a fresh one; a token obtained
just now that is refused is a permission problem (authentication failure); a stored JWT whose
exp has passed is not loaded; `mailgate token flush` deletes stored tokens and a running
gateway follows.

The gateways here use the second app (CLIENT_ID2), so revoking its tokens or changing its roles
never touches the other tests' gateways; its roles are put back after each test. POP3 as the
protocol (the issue's POP.AccessAsApp story); the logic is in the session core and the broker,
shared by the three protocols.
"""
import os
import re
import sqlite3
import time

import pytest

from conftest import USERS, fresh_gateway
from harness.lineclient import LineClient
from harness.stack import CLIENT_ID2, CLIENT_SECRET2

AUTH_FAILED = "-ERR [AUTH] Authentication failed."
TEMP_FAILED = "-ERR [SYS/TEMP] Temporary authentication failure, try again later."
ALL_ROLES = ["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"]
FRESH_S = 10  # broker.c TOKEN_FRESH_MS: a refused token younger than this is not dropped


@pytest.fixture
def app_roles(idp):
    """Sets the second app's roles (for tokens issued from then on); all back afterwards."""
    def set_roles(roles):
        idp.config(roles={CLIENT_ID2: list(roles)})

    yield set_roles
    idp.config(roles={CLIENT_ID2: ALL_ROLES}, token_lifetime=3599)


@pytest.fixture
def gw(fleet, app_roles):
    g = fresh_gateway(fleet, "tokref", start=False, client_id=CLIENT_ID2,
                      client_secret=CLIENT_SECRET2)
    yield g
    g.stop()


def pop3_login(gw, user="dave"):
    """The answer to PASS on a fresh POP3S connection."""
    with LineClient(gw.port("pop3s"), tls=True, ca_file=gw.certs.ca) as c:
        assert c.cmd(f"USER {user}").startswith("+OK")
        return c.cmd(f"PASS {USERS[user][0]}")


def token_requests(idp):
    return idp.stats()["token_requests"]


def stored_tokens(gw, everyone=False):
    """The second app's stored token rows (the store was copied from the users' first gateway,
    with that gateway's tokens of the main app: those with everyone=True)."""
    db = sqlite3.connect(os.path.join(gw.state_dir, "mailgate.db"))
    try:
        rows = db.execute("SELECT provider, principal, expires_at FROM tokens").fetchall()
    finally:
        db.close()
    return [r for r in rows if everyone or CLIENT_ID2 in r[1]]


def test_missing_role_granted_then_restart_heals(gw, idp, app_roles):
    """The app lacks POP.AccessAsApp: the first login fails (a token obtained just now, refused:
    a permission problem, not staleness). The admin adds the role and restarts mailgate with
    its state: the next login drops the reloaded token, gets a new one and succeeds. Before,
    the stored token was reused and POP3 failed until its renewal (~48 min)."""
    app_roles(["IMAP.AccessAsApp", "SMTP.SendAsApp"])
    gw.start()
    assert pop3_login(gw) == AUTH_FAILED
    assert len(stored_tokens(gw)) == 1  # a fresh refused token is kept: asking again is useless
    app_roles(ALL_ROLES)
    gw.restart()
    before, offset = token_requests(idp), gw.log_offset()
    answer = pop3_login(gw)
    assert answer.startswith("+OK"), (answer, gw.log_since(offset)[-3000:])
    assert token_requests(idp) == before + 1
    assert "upstream refused a token obtained before the restart; dropping it" in \
        gw.log_since(offset)


def test_missing_role_granted_heals_without_restart(gw, idp, app_roles):
    """The same without a restart: once the refused token is older than a few seconds, the next
    login drops it and retries with a new one at once."""
    app_roles(["IMAP.AccessAsApp", "SMTP.SendAsApp"])
    gw.start()
    assert pop3_login(gw) == AUTH_FAILED
    app_roles(ALL_ROLES)
    time.sleep(FRESH_S + 0.5)
    before = token_requests(idp)
    assert pop3_login(gw).startswith("+OK")
    assert token_requests(idp) == before + 1


def test_revoked_stored_token_is_replaced(gw, idp):
    """A stored token the upstream refuses (revoked at the IdP) is replaced at the next login,
    which succeeds with the retry; the new token is what the store keeps (a restart reuses it
    without asking the IdP). Before: "-ERR [AUTH]" until renewal."""
    gw.start()
    assert pop3_login(gw).startswith("+OK")
    old = stored_tokens(gw)
    gw.restart()
    idp.config(revoke_app=CLIENT_ID2)
    before, offset = token_requests(idp), gw.log_offset()
    answer = pop3_login(gw)
    assert answer.startswith("+OK"), (answer, gw.log_since(offset)[-3000:])
    assert token_requests(idp) == before + 1
    new = stored_tokens(gw)
    assert len(new) == 1 and new != old
    gw.restart()
    before = token_requests(idp)
    assert pop3_login(gw).startswith("+OK")
    assert token_requests(idp) == before  # the replacement was stored, the refused one is gone


def test_refused_token_while_idp_down_is_temporary(gw, idp):
    """The upstream refuses the token and no fresh one can be had (IdP down): the client is told
    to try again later, not that its password is wrong; the next login after the outage
    succeeds."""
    gw.start()
    assert pop3_login(gw).startswith("+OK")
    gw.restart()
    idp.config(revoke_app=CLIENT_ID2)
    idp.fault(status=503, count=1)
    assert pop3_login(gw) == TEMP_FAILED
    time.sleep(1.5)  # the token endpoint's backoff after the 503
    assert pop3_login(gw).startswith("+OK")


def test_stored_token_with_past_exp_is_not_loaded(gw, idp):
    """A stored token whose JWT exp has passed while its stored expiry is in the future (a wrong
    clock, a bad token) is dropped at load: the next login asks for a new one and never offers
    the dead one upstream."""
    idp.config(token_lifetime=3)
    gw.start()
    assert pop3_login(gw).startswith("+OK")
    gw.stop()
    db = sqlite3.connect(os.path.join(gw.state_dir, "mailgate.db"))
    db.execute("UPDATE tokens SET expires_at = expires_at + 7200")
    db.commit()
    db.close()
    idp.config(token_lifetime=3599)
    time.sleep(3.5)  # past the token's exp
    offset = gw.log_offset()
    gw.start()
    log = gw.log_since(offset)
    assert "has expired (its exp claim); dropping it" in log, log[-2000:]
    assert stored_tokens(gw) == []
    before = token_requests(idp)
    assert pop3_login(gw).startswith("+OK")
    assert token_requests(idp) == before + 1
    assert "upstream refused" not in gw.log_since(offset)


def test_token_flush_cli(gw, idp):
    """`mailgate token flush` deletes stored tokens (all, one provider's, one user's principal)
    and says how many; a running gateway drops its cached copy before the next login."""
    gw.start()
    assert pop3_login(gw).startswith("+OK")
    r = gw.cli("token", "flush", "--user", "dave")
    assert r.returncode == 0, r.stderr
    assert f"logs in with the app's token (app:{CLIENT_ID2}@" in r.stdout
    assert "deleted 1 stored token(s) of provider microsoft of app:" in r.stdout
    assert "a running gateway drops its cached copies" in r.stdout
    assert stored_tokens(gw) == []
    before, offset = token_requests(idp), gw.log_offset()
    assert pop3_login(gw).startswith("+OK")
    assert token_requests(idp) == before + 1  # the cached copy went with the row
    assert "the stored token was deleted; dropping the cached copy" in gw.log_since(offset)
    assert len(stored_tokens(gw)) == 1
    r = gw.cli("token", "flush", "--provider", "elsewhere")
    assert r.returncode == 0 and "deleted 0 stored token(s) of provider elsewhere" in r.stdout
    r = gw.cli("token", "flush")
    assert r.returncode == 0 and re.match(r"deleted [1-9]\d* stored token\(s\)\n", r.stdout)
    assert stored_tokens(gw, everyone=True) == []
    r = gw.cli("token", "flush", "--user", "nosuchuser")
    assert r.returncode == 1 and "no such user" in r.stderr
    assert gw.cli("token", "flush", "extra").returncode == 2
