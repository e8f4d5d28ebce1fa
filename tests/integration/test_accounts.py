"""Accounts: login names (the name table of README "Login names"), mailbox grants, per-user
protocol switches, [defaults] for new users, reserved names. One gateway with
default_domain = example.test and IMAP, POP3 and SMTP listeners; alice (added as the short
name "alice") may open her own mailbox and, by grant, bob's and dave's (Dovecot has those and
the app has FullAccess on them)."""
import json
import sqlite3
import time
import uuid

import pytest

from conftest import connect, plain_b64, quoted
from harness.gateway import login_lines
from harness.lineclient import LineClient
from harness.stack import ALICE, BOB, DAVE, DOMAIN

PASSWORD = "Accounts-alice-1"
AUTH_FAILED_IMAP = "NO [AUTHENTICATIONFAILED]"
SMTP_AUTH_OK = "235 2.7.0 Authentication successful"
SMTP_AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
FAILURE_DELAY = 0.1  # the harness's auth_failure_delay
SHARED_DAVE = f"alice@{DOMAIN}\\dave"


@pytest.fixture(scope="module")
def gw(fleet):
    g = fleet.new("accounts", users=False, start=False, protocols=("imap", "pop3", "smtp"),
                  # refusals count like wrong passwords: no lockout for this many of them
                  gateway_lines=[f"default_domain = {DOMAIN}", "lockout_threshold = 0"])
    g.add_user("alice", PASSWORD, mailbox=ALICE)
    g.start()
    assert g.cli("grant", "add", "alice", "bob").returncode == 0  # granted while running
    assert g.cli("grant", "add", "alice", DAVE, "--pop3").returncode == 0
    return g


def outcome(gw, user, offset):
    """The login log line of `user` (as typed) logged after offset. The log quotes '\\'."""
    quoted_user = user.replace("\\", "\\\\")

    def find():
        return [f for f in login_lines(gw.log_since(offset)) if f.get("user") == quoted_user]
    from harness.procs import wait_until
    return wait_until(find, timeout=10, what=f"login line of {user}")[-1]


def imap_login(gw, user, password=PASSWORD):
    """(tagged answer, seconds it took, the login line)."""
    offset = gw.log_offset()
    c = connect(gw)
    started = time.monotonic()
    _, done = c.command("L1", f"LOGIN {quoted(user)} {quoted(password)}")
    took = time.monotonic() - started
    c.close()
    return done, took, outcome(gw, user, offset)


def pop3_login(gw, user, password=PASSWORD, then=None):
    offset = gw.log_offset()
    with LineClient(gw.port("pop3s"), tls=True, ca_file=gw.certs.ca) as c:
        assert c.cmd(f"USER {user}").startswith("+OK")
        answer = c.cmd(f"PASS {password}")
        extra = c.cmd(then) if then and answer.startswith("+OK") else None
    return answer, extra, outcome(gw, user, offset)


def smtp_session(gw):
    c = LineClient(gw.port("submission"), tls=False, ca_file=gw.certs.ca)
    assert c.smtp("EHLO client.test")[-1].startswith("250 ")
    assert c.smtp("STARTTLS")[0].startswith("220")
    c.wrap()
    assert c.smtp("EHLO client.test")[-1].startswith("250 ")
    return c


# -- the name table -------------------------------------------------------------------------------

OWN = [
    "alice",                                 # short name in default_domain
    f"alice@{DOMAIN}",                       # UPN
    f"ALICE@{DOMAIN.upper()}",               # names compare without case
    f"{DOMAIN}\\alice",                      # domain\user
    "example/alice",                         # NetBIOS-style domain, '/' separator
    f"alice@{DOMAIN}\\alice",                # upn\alias naming her own mailbox
]
SHARED = [
    f"alice@{DOMAIN}\\bob",                  # upn\alias, alias a local part
    f"alice@{DOMAIN}/{BOB}",                 # upn\alias, alias an address
    "example\\alice\\bob",                   # domain\user\alias
    f"{DOMAIN}/alice/{BOB}",
]
INVALID = [
    "a@b@example.test",                      # 0 separators, 2 @
    f"alice@{DOMAIN}\\bob\\x",               # 2 separators, 1 @
    "a\\b\\c\\d",                            # 3 separators
    "\\alice",                               # empty part
    "alice\\",
    "example\\alice@x",                      # @ after the first separator of domain\user
    f"alice@{DOMAIN}\\a@b@c",                # alias with two @
]


@pytest.mark.parametrize("name", OWN)
def test_names_of_own_mailbox(gw, name):
    done, _, line = imap_login(gw, name)
    assert done.startswith("L1 OK"), done
    assert line["mailbox"] == ALICE and line["cause"] == "ok", line


@pytest.mark.parametrize("name", SHARED)
def test_names_of_granted_mailbox(gw, name):
    done, _, line = imap_login(gw, name)
    assert done.startswith("L1 OK"), done
    assert line["mailbox"] == BOB and line["cause"] == "ok", line


def test_shared_mailbox_content_over_imap(gw):
    c = connect(gw)
    _, done = c.command("L1", f"LOGIN {quoted('alice@' + DOMAIN + chr(92) + 'bob')} {PASSWORD}")
    assert done.startswith("L1 OK"), done
    untagged, done = c.command("S1", "SELECT INBOX")
    assert done.startswith("S1 OK"), done
    untagged, done = c.command("F1", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert done.startswith("F1 OK") and any("Hi Bob" in u for u in untagged), untagged
    c.close()


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_fail_like_a_wrong_password(gw, name):
    done, took, line = imap_login(gw, name)
    assert AUTH_FAILED_IMAP in done, done
    assert took >= FAILURE_DELAY * 0.9
    assert line["result"] == "fail" and line["cause"] == "invalid name", line


def test_unknown_user_and_wrong_password(gw):
    done, _, line = imap_login(gw, f"nobody@{DOMAIN}")
    assert AUTH_FAILED_IMAP in done and line["cause"] == "unknown user", line
    done, _, line = imap_login(gw, "alice", "not-her-password")
    assert AUTH_FAILED_IMAP in done and line["cause"] == "wrong password", line
    # one separator and no @ is domain\user: user "dave@alice", nobody here
    done, _, line = imap_login(gw, "alice\\dave")
    assert AUTH_FAILED_IMAP in done and line["cause"] == "unknown user", line


# -- grants ---------------------------------------------------------------------------------------

def test_not_granted_fails_exactly_like_a_wrong_password(gw):
    wrong, wrong_took, wrong_line = imap_login(gw, "alice", "not-her-password")
    denied, denied_took, denied_line = imap_login(gw, f"alice@{DOMAIN}\\carol")
    assert denied.split(" ", 1)[1] == wrong.split(" ", 1)[1]  # the same words after the tag
    assert denied_took >= FAILURE_DELAY * 0.9 and wrong_took >= FAILURE_DELAY * 0.9
    assert denied_line["cause"] == "mailbox not granted", denied_line
    assert denied_line["result"] == wrong_line["result"] == "fail"
    assert "carol" not in denied  # no hint that the mailbox exists or not


def test_grant_protocols_and_revocation_apply_at_next_login(gw):
    # dave's grant is POP3 only: IMAP to it is refused, POP3 works
    done, _, line = imap_login(gw, SHARED_DAVE)
    assert AUTH_FAILED_IMAP in done and line["cause"] == "mailbox not granted", line
    # re-adding replaces the protocols; the running gateway sees it at the next login (the
    # password is in the auth cache by now: the cache must not bypass the grant)
    assert gw.cli("grant", "add", "alice", "dave", "--imap").returncode == 0
    done, _, line = imap_login(gw, SHARED_DAVE)
    assert done.startswith("L1 OK") and line["mailbox"] == DAVE, (done, line)
    answer, _, line = pop3_login(gw, SHARED_DAVE)
    assert answer.startswith("-ERR") and line["cause"] == "mailbox not granted", line
    assert gw.cli("grant", "add", "alice", DAVE, "--pop3").returncode == 0
    r = gw.cli("grant", "del", "alice", "bob")
    assert r.returncode == 0, r.stderr
    done, _, line = imap_login(gw, f"alice@{DOMAIN}\\bob")
    assert AUTH_FAILED_IMAP in done and line["cause"] == "mailbox not granted", line
    assert gw.cli("grant", "add", "alice", "bob").returncode == 0
    r = gw.cli("grant", "del", "alice", "bob")
    assert r.returncode == 0
    r = gw.cli("grant", "del", "alice", "bob")
    assert r.returncode == 1 and "has no grant" in r.stderr
    assert gw.cli("grant", "add", "alice", "bob").returncode == 0


def test_shared_mailbox_over_pop3(gw):
    answer, stat, line = pop3_login(gw, f"alice@{DOMAIN}/dave", then="STAT")
    assert answer.startswith("+OK"), answer
    assert stat.startswith("+OK"), stat
    assert line["mailbox"] == DAVE and line["cause"] == "ok", line


def test_send_as_granted_mailbox_needs_send(gw, stack):
    name = f"alice@{DOMAIN}\\bob"
    with smtp_session(gw) as c:
        assert c.smtp(f"AUTH PLAIN {plain_b64(name, PASSWORD)}") == [SMTP_AUTH_OK]
        marker = uuid.uuid4().hex
        assert c.smtp(f"MAIL FROM:<{BOB}>")[0].startswith("250")
        assert c.smtp("RCPT TO:<someone@remote.test>")[0].startswith("250")
        assert c.smtp("DATA")[0].startswith("354")
        body = (f"From: <{BOB}>\r\nSubject: shared {marker}\r\n"
                f"Message-ID: <{marker}@example.test>\r\n\r\nSent as bob by alice.\r\n.")
        assert c.smtp(body)[0].startswith("250")
    from harness.procs import wait_until
    needle = f"<{marker}@example.test>".encode()
    (msg,) = wait_until(lambda: [m for m in stack.sink.messages() if needle in m["data"]],
                        timeout=30, what="the message at the sink")
    assert msg["mail_from"].startswith(f"FROM:<{BOB}>")
    # without --send: refused like a wrong password
    assert gw.cli("grant", "add", "alice", "bob", "--imap", "--pop3").returncode == 0
    offset = gw.log_offset()
    with smtp_session(gw) as c:
        assert c.smtp(f"AUTH PLAIN {plain_b64(name, PASSWORD)}") == [SMTP_AUTH_FAILED]
    assert outcome(gw, name, offset)["cause"] == "mailbox not granted"
    assert gw.cli("grant", "add", "alice", "bob").returncode == 0


def test_grant_list_json_and_user_show(gw):
    r = gw.cli("grant", "list", "alice", "--json")
    assert r.returncode == 0, r.stderr
    rows = {g["mailbox"]: g for g in json.loads(r.stdout)}
    assert rows[BOB]["protocols"] == ["imap", "pop3", "send"]
    assert rows[DAVE]["protocols"] == ["pop3"]
    assert rows[BOB]["user"] == ALICE
    r = gw.cli("grant", "list")
    assert r.returncode == 0 and BOB in r.stdout and "pop3" in r.stdout
    r = gw.cli("grant", "add", "alice", ALICE)
    assert r.returncode == 1 and "own mailbox" in r.stderr
    r = gw.cli("grant", "add", "nobody", BOB)
    assert r.returncode == 1 and "no such user" in r.stderr
    # a lockout as the broker records it (by the canonical name, without port)
    db = sqlite3.connect(f"{gw.state_dir}/mailgate.db")
    db.execute("INSERT INTO lockouts VALUES (?, ?, ?)", (ALICE, "192.0.2.7", int(time.time()) + 600))
    db.commit()
    db.close()
    r = gw.cli("user", "show", "alice")
    assert r.returncode == 0, r.stderr
    assert f"user: {ALICE}" in r.stdout and "imap: on" in r.stdout
    assert f"  {BOB} (imap pop3 send)" in r.stdout
    assert "from 192.0.2.7 until" in r.stdout
    assert gw.cli("user", "unlock", "alice").returncode == 0
    assert "from 192.0.2.7" not in gw.cli("user", "show", f"alice@{DOMAIN}").stdout


# -- switches and defaults --------------------------------------------------------------------

def test_switches_apply_at_next_login(gw):
    try:
        assert gw.cli("user", "set", "alice", "--pop3", "off").returncode == 0
        answer, _, line = pop3_login(gw, "alice")
        assert answer.startswith("-ERR") and line["cause"] == "protocol disabled", line
        # alice's switches hold for the mailboxes she opens too, whatever the grant says
        answer, _, line = pop3_login(gw, SHARED_DAVE)
        assert answer.startswith("-ERR") and line["cause"] == "protocol disabled", line
        done, _, line = imap_login(gw, "alice")
        assert done.startswith("L1 OK"), done
        assert gw.cli("user", "set", "--all", "--enabled", "off").returncode == 0
        done, _, line = imap_login(gw, "alice")
        assert AUTH_FAILED_IMAP in done and line["cause"] == "user disabled", line
    finally:
        assert gw.cli("user", "set", "--all", "--enabled", "on", "--pop3", "on").returncode == 0
    answer, _, line = pop3_login(gw, "alice")
    assert answer.startswith("+OK") and line["cause"] == "ok", line
    r = gw.cli("user", "set", "alice", "--imap", "maybe")
    assert r.returncode == 2
    r = gw.cli("user", "set", "alice")
    assert r.returncode == 2


def test_new_users_take_defaults(gw, fleet):
    r = gw.cli("user", "add", "newbie", "--mailbox", BOB, "--password-stdin", stdin="Newbie-1\n")
    assert r.returncode == 0, r.stderr
    show = gw.cli("user", "show", "newbie").stdout
    assert "imap: on" in show and "pop3: off" in show and "smtp: off" in show, show
    answer, _, line = pop3_login(gw, "newbie", "Newbie-1")
    assert answer.startswith("-ERR") and line["cause"] == "protocol disabled", line
    # a configured mailbox plan
    planned = fleet.new("accounts-plan", users=False, start=False,
                        extra="\n[defaults]\nimap = off\npop3 = on\nsmtp = on\n")
    r = planned.cli("user", "add", "planned", "--mailbox", BOB, "--password-stdin",
                    stdin="Planned-1\n")
    assert r.returncode == 0, r.stderr
    show = planned.cli("user", "show", "planned").stdout
    assert "imap: off" in show and "pop3: on" in show and "smtp: on" in show, show
    # without default_domain a short name stays short
    assert "user: planned\n" in show


@pytest.mark.parametrize("name", ["anonymous", "Guest", f"guest@{DOMAIN}", "anonymous@other.test"])
def test_reserved_names_refused(gw, name):
    r = gw.cli("user", "add", name, "--mailbox", BOB, "--password-stdin", stdin="x-Secret-1\n")
    assert r.returncode == 2 and "reserved name" in r.stderr, r.stderr


def test_reserved_names_never_log_in(gw):
    # even when such a row got into the store some other way
    db = sqlite3.connect(f"{gw.state_dir}/mailgate.db")
    hash_ = db.execute("SELECT password_hash FROM users WHERE name = ?", (ALICE,)).fetchone()[0]
    db.execute("INSERT INTO users (name, mailbox, provider, password_hash, created_at, updated_at)"
               " VALUES (?, ?, 'microsoft', ?, 0, 0)", (f"guest@{DOMAIN}", BOB, hash_))
    db.commit()
    db.close()
    done, _, line = imap_login(gw, "guest")
    assert AUTH_FAILED_IMAP in done and line["cause"] == "invalid name", line


def test_short_and_full_name_are_one_user_in_the_cli(gw):
    r = gw.cli("user", "add", f"alice@{DOMAIN}", "--password-stdin", stdin="x-Secret-1\n")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = gw.cli("user", "list", "--json")
    names = [u["name"] for u in json.loads(r.stdout)]
    assert ALICE in names and "alice" not in names
