"""A changed client secret and the cached tokens (issue 11, admin experience): each stored token
keeps a fingerprint of the credential it was obtained with; `check-config` says when the
current credential differs, and neither the CLI nor the gateway (after a reload or a restart)
serves a token of the old credential: a wrong new secret shows at once, audited as `idp error`
with its AADSTS code in the log."""
import os
import re
import signal
import sqlite3
from contextlib import contextmanager

import pytest

from conftest import USERS, connect, quoted
from harness.procs import wait_until

WRONG = "Q~not-the-secret-any-more"
CHANGED = re.compile(r"^  provider microsoft: the client secret changed since the cached token "
                     r"was obtained at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; run `mailgate token get "
                     r"--fresh --provider microsoft` to test the new one$", re.M)


@pytest.fixture(scope="module")
def gw(fleet):
    return fleet.new("credchange", start=False)


@contextmanager
def secret(gw, value):
    """The client secret file says value for the duration."""
    with open(gw.secret_file) as f:
        good = f.read()
    with open(gw.secret_file, "w") as f:
        f.write(value + "\n")
    try:
        yield
    finally:
        with open(gw.secret_file, "w") as f:
            f.write(good)


def stored_credentials(gw):
    db = sqlite3.connect(os.path.join(gw.state_dir, "mailgate.db"))
    rows = db.execute("SELECT principal, credential FROM tokens").fetchall()
    db.close()
    return rows


def imap_login(gw, user="alice"):
    c = connect(gw)
    _, done = c.command("l1", f"LOGIN {user} {quoted(USERS[user][0])}")
    c.close()
    return done


def reload(gw):
    offset = gw.log_offset()
    os.kill(gw.proc.pid, signal.SIGHUP)
    gw.wait_for_log(r"reloaded ", offset, timeout=20)
    return offset


def audit_reasons(gw, since_id):
    db = sqlite3.connect(os.path.join(gw.state_dir, "mailgate.db"))
    rows = db.execute("SELECT reason FROM login_events WHERE id > ? AND event = 'login'"
                      " ORDER BY id", (since_id,)).fetchall()
    db.close()
    return [r[0] for r in rows]


def last_audit_id(gw):
    db = sqlite3.connect(os.path.join(gw.state_dir, "mailgate.db"))
    (n,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM login_events").fetchone()
    db.close()
    return n


def audited_login(gw):
    """One IMAP login and its audit row's reason (the broker writes rows every 200 ms)."""
    since = last_audit_id(gw)
    done = imap_login(gw)
    [reason] = wait_until(lambda: audit_reasons(gw, since), timeout=10, what="the audit row")
    return done, reason


def test_check_config_says_when_the_secret_changed(gw, idp):
    r = gw.cli("token", "get")
    assert r.returncode == 0, r.stderr
    [(principal, credential)] = stored_credentials(gw)
    assert principal.startswith("app:") and re.fullmatch(r"[0-9a-f]{32}", credential)
    with open(gw.secret_file) as f:
        assert f.read().strip() not in credential  # a digest, not the secret
    r = gw.cli("check-config")
    assert r.returncode == 0 and not CHANGED.search(r.stdout), r.stdout
    with secret(gw, WRONG):
        r = gw.cli("check-config")
        assert r.returncode == 0, r.stderr
        assert CHANGED.search(r.stdout), r.stdout
        assert WRONG not in r.stdout + r.stderr
        # the cached token of the old secret is not served: the new one is tried, and refused
        before = idp.stats()["token_requests"]
        r = gw.cli("token", "get")
        assert r.returncode == 1, r.stdout
        assert "source: cached" not in r.stdout and "AADSTS7000215" in r.stderr, r.stderr
        assert idp.stats()["token_requests"] == before + 1
    # back to the secret the stored token was obtained with: nothing to say
    r = gw.cli("check-config")
    assert r.returncode == 0 and not CHANGED.search(r.stdout), r.stdout
    assert "source: cached" in gw.cli("token", "get").stdout


def test_reload_with_a_new_secret_drops_the_cached_token(gw):
    gw.start()
    assert audited_login(gw)[0].startswith("l1 OK")  # a token of the good secret is cached
    try:
        with secret(gw, WRONG):
            offset = reload(gw)
            done, reason = audited_login(gw)
            assert done.startswith("l1 NO") and reason == "idp error", (done, reason)
            gw.wait_for_log(r"client secret changed since the cached token was obtained", offset)
            gw.wait_for_log(r"AADSTS7000215", offset)  # the IdP's refusal, in the log
    finally:
        reload(gw)
    # the right secret again: no 30 s backoff left over from the wrong one's refusal
    done, reason = audited_login(gw)
    assert done.startswith("l1 OK") and reason == "ok", (done, reason)


def test_restart_with_a_new_secret_does_not_load_the_stored_token(gw):
    assert imap_login(gw).startswith("l1 OK")
    good = gw.settings["client_secret"]
    offset = gw.log_offset()
    try:
        gw.restart(client_secret=WRONG)  # the harness writes the secret file from its settings
        gw.wait_for_log(r"provider microsoft: the client secret changed since the stored token "
                        r"of app:\S+ was obtained; a new one will be requested", offset)
        done, reason = audited_login(gw)
        assert done.startswith("l1 NO") and reason == "idp error", (done, reason)
        # the row of the good secret stays: check-config still tells
        assert CHANGED.search(gw.cli("check-config").stdout)
    finally:
        gw.restart(client_secret=good)
    assert imap_login(gw).startswith("l1 OK")
