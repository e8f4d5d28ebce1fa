"""The login audit (issue 11): every login attempt and every end of a logged-in session is a
row of the store's login_events, written by the broker from the workers' IPC_AUDIT records;
[gateway] audit_log gets the same records as JSON lines. One gateway with IMAP, POP3 and SMTP
listeners, default_domain (so the audit's user is the canonical name) and a low lockout
threshold (bob gets locked out)."""
import csv
import io
import json
import os
import pwd
import signal
import sqlite3
import subprocess

import pytest

from conftest import USERS, connect, plain_b64, quoted
from harness.lineclient import LineClient
from harness.procs import wait_until
from harness.procs import free_port
from harness.stack import ALICE, BOB, CLIENT_ID, DAVE, DOMAIN, SCOPE, TENANT

LOCKOUT_THRESHOLD = 3


def failing_providers(g):
    """[provider broken]: the IdP refuses its client secret (AADSTS7000215); [provider down]:
    tokens are fine, its IMAP server's port is closed."""
    common = [f"type = microsoft", f"tenant = {TENANT}", f"client_id = {CLIENT_ID}",
              f"token_endpoint = {g.settings['token_endpoint']}", f"scope = {SCOPE}",
              f"ca_file = {g.settings['ca_file']}"]
    return "\n".join(["", "[provider broken]", *common, "client_secret = Q~not-the-secret",
                      f"imap_server = {g.settings['imap_server']}", "",
                      "[provider down]", *common, f"client_secret_file = {g.secret_file}",
                      f"imap_server = localhost:{free_port()}", ""])


@pytest.fixture(scope="module")
def gw(fleet):
    g = fleet.new("audit", start=False, protocols=("imap", "pop3", "smtp"),
                  gateway_lines=[f"lockout_threshold = {LOCKOUT_THRESHOLD}",
                                 "lockout_duration = 10m", f"default_domain = {DOMAIN}"])
    g.audit_log = os.path.join(g.dir, "audit.jsonl")
    open(g.audit_log, "w").close()
    entry = pwd.getpwnam("mailgate")  # the broker appends after dropping root to this user
    os.chown(g.audit_log, entry.pw_uid, entry.pw_gid)
    g.settings["gateway_lines"].append(f"audit_log = {g.audit_log}")
    g.add_listener("imaps-deny", "imap", "implicit", "allow = 10.0.0.0/8")
    g.settings["extra"] = failing_providers(g)
    g.write_config()
    # users whose login fails beyond the gateway: at the IdP, and at an unreachable upstream
    g.add_user("idpfail", USERS["alice"][0], mailbox=ALICE, provider="broken", protocols=None)
    g.add_user("downuser", USERS["alice"][0], mailbox=ALICE, provider="down", protocols=None)
    # a protocol switched off: POP3 for "special" (audited as "protocol disabled")
    assert g.cli("user", "set", "special", "--pop3", "off").returncode == 0
    assert g.cli("user", "set", "unicode", "--enabled", "off").returncode == 0
    return g.start()


def events(gw, **where):
    """The login_events rows matching where (column = value), oldest first, as dicts."""
    db = sqlite3.connect(os.path.join(gw.state_dir, "mailgate.db"))
    db.row_factory = sqlite3.Row
    sql = "SELECT * FROM login_events"
    if where:
        sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
    rows = [dict(r) for r in db.execute(sql + " ORDER BY id", tuple(where.values()))]
    db.close()
    return rows


def wait_events(gw, count=1, **where):
    return wait_until(lambda: len(events(gw, **where)) >= count and events(gw, **where),
                      timeout=10, what=f"{count} audit rows {where}")


def imap_login(gw, user, password, client_id=None):
    c = connect(gw)
    if client_id:
        _, done = c.command("i1", f'ID ("name" "{client_id[0]}" "version" "{client_id[1]}")')
        assert done.startswith("i1 OK"), done
    _, done = c.command("l1", f"LOGIN {quoted(user)} {quoted(password)}")
    return c, done


def test_ok_login_and_session_end_with_client_id_bytes_and_duration(gw):
    c, done = imap_login(gw, "alice", USERS["alice"][0], client_id=("AuditClient", "7.1"))
    assert done.startswith("l1 OK"), done
    _, sel = c.command("s1", "SELECT INBOX")
    assert sel.startswith("s1 OK"), sel
    c.command("o1", "LOGOUT")
    c.close()
    [login] = wait_events(gw, event="login", client_id="AuditClient/7.1")
    assert login["result"] == "ok" and login["reason"] == "ok"
    assert login["protocol"] == "imap" and login["listener"] == "imaps"
    assert login["client_addr"] == "127.0.0.1" and 0 < login["client_port"] < 65536
    assert login["user"] == ALICE and login["login"] == "alice"
    assert login["mailbox"] == USERS["alice"][1]
    [end] = wait_events(gw, event="end", session=login["session"])
    assert end["result"] == "ok" and end["client_id"] == "AuditClient/7.1"
    # SELECT and LOGOUT went up, Dovecot's answers came back
    assert end["bytes_in"] > len("s1 SELECT INBOX\r\n") and end["bytes_out"] > 100
    assert end["duration_ms"] >= login["duration_ms"] >= 0


@pytest.mark.parametrize("user,password,reason", [
    ("alice", "not-her-password", "wrong password"),
    ("nosuchuser", "whatever-1", "unknown user"),
    ("carol", USERS["carol"][0], "upstream refused"),  # the app has no FullAccess on carol
    (f"{ALICE}\\bob", USERS["alice"][0], "mailbox not granted"),  # upn\alias, no grant
    ("unicode", USERS["unicode"][0], "user disabled"),
    ("idpfail", USERS["alice"][0], "idp error"),  # the IdP refuses the provider's secret
    ("downuser", USERS["alice"][0], "upstream unavailable"),
])
def test_failed_imap_login_has_its_reason(gw, user, password, reason):
    c, done = imap_login(gw, user, password)
    c.close()
    assert done.startswith("l1 NO"), done
    rows = wait_events(gw, event="login", login=user, reason=reason)
    assert rows[-1]["result"] == "fail" and rows[-1]["protocol"] == "imap"
    # the IdP's refusal keeps its AADSTS code (and only that); other outcomes have no detail
    assert rows[-1]["detail"] == ("AADSTS7000215" if reason == "idp error" else ""), rows[-1]


def test_locked_out_is_audited(gw):
    for _ in range(LOCKOUT_THRESHOLD):
        c, done = imap_login(gw, "bob", "wrong-for-bob")
        c.close()
    c, done = imap_login(gw, "bob", USERS["bob"][0])  # the right password, but locked out
    c.close()
    assert done.startswith("l1 NO"), done
    wait_events(gw, event="login", user=BOB, reason="locked out")
    assert len(events(gw, user=BOB, reason="wrong password")) == LOCKOUT_THRESHOLD
    # the lockout the broker made, as `user show` lists it (issue 11: active lockouts)
    show = gw.cli("user", "show", "bob")
    assert show.returncode == 0, show.stderr
    assert "lockouts:\n  from 127.0.0.1 until " in show.stdout, show.stdout


def test_address_not_allowed_is_audited(gw):
    """A client outside allow = never logs in, but the refusal is in the audit with its address
    and listener (the harness's readiness probe already made one)."""
    s = gw.greeting("imaps-deny")
    assert s.startswith("* BYE"), s
    [row, *_] = wait_events(gw, event="login", listener="imaps-deny")
    assert row["reason"] == "address not allowed" and row["result"] == "fail", row
    assert row["client_addr"].startswith("127.0.0.1"), row


def test_protocol_disabled_is_audited(gw):
    with LineClient(gw.port("pop3s"), tls=True, ca_file=gw.certs.ca) as c:
        assert c.cmd("USER special").startswith("+OK")
        assert c.cmd(f"PASS {USERS['special'][0]}").startswith("-ERR")
    [row] = wait_events(gw, event="login", user=f"special@{DOMAIN}", protocol="pop3")
    assert row["reason"] == "protocol disabled" and row["result"] == "fail"
    assert row["listener"] == "pop3s"


def test_smtp_login_records_the_ehlo_name(gw):
    c = LineClient(gw.port("smtps"), tls=True, ca_file=gw.certs.ca)
    assert c.greeting.startswith("220")
    assert c.smtp("EHLO laptop.audit.test")[-1].startswith("250 ")
    answer = c.smtp("AUTH PLAIN " + plain_b64("dave", USERS["dave"][0]))
    assert answer[-1].startswith("235"), answer
    c.smtp("QUIT")
    c.close()
    [login] = wait_events(gw, event="login", protocol="smtp", user=DAVE)
    assert login["client_id"] == "laptop.audit.test" and login["result"] == "ok"
    [end] = wait_events(gw, event="end", session=login["session"])
    assert end["bytes_out"] > 0


def test_audit_log_has_json_lines_without_passwords(gw):
    wait_events(gw, event="end", protocol="smtp")  # after the tests above
    stored = events(gw)
    def lines():
        with open(gw.audit_log) as f:
            return [json.loads(line) for line in f]
    records = wait_until(lambda: len(lines()) >= len(stored) and lines(), timeout=10,
                         what="the JSON lines")
    assert {r["session"] for r in records} >= {r["session"] for r in stored}
    idp = [r for r in records if r["login"] == "idpfail"]
    assert idp and idp[0]["reason"] == "idp error" and idp[0]["detail"] == "AADSTS7000215"
    ok = [r for r in records if r["client_id"] == "AuditClient/7.1" and r["event"] == "login"]
    assert ok and ok[0]["result"] == "ok" and ok[0]["client_addr"] == "127.0.0.1"
    assert ok[0]["time"].endswith("Z") and ok[0]["user"] == ALICE
    text = open(gw.audit_log).read()
    for password in [p for p, _ in USERS.values()] + ["not-her-password", "wrong-for-bob"]:
        assert password not in text
        assert json.dumps(password)[1:-1] not in text


# -- reports ------------------------------------------------------------------------------------

def report(gw, *args):
    r = gw.cli("report", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_report_logins_in_three_formats(gw):
    wait_events(gw, event="login", reason="locked out")
    rows = json.loads(report(gw, "logins", "--format", "json"))
    stored = events(gw)
    assert len(rows) == len(stored)
    assert {r["reason"] for r in rows} >= {"ok", "wrong password", "unknown user",
                                           "upstream refused", "locked out",
                                           "protocol disabled", "mailbox not granted",
                                           "user disabled", "idp error",
                                           "upstream unavailable", "address not allowed"}
    assert rows[0]["time"] >= rows[-1]["time"]  # newest first
    ends = [r for r in rows if r["event"] == "end"]
    assert ends and all(isinstance(r["bytes_out"], int) for r in ends)
    assert {r["detail"] for r in rows if r["reason"] == "idp error"} == {"AADSTS7000215"}
    csv_rows = list(csv.DictReader(io.StringIO(report(gw, "logins", "--format", "csv"))))
    assert [r["session"] for r in csv_rows] == [r["session"] for r in rows]
    assert [r["detail"] for r in csv_rows] == [r["detail"] for r in rows]
    assert {r["client_id"] for r in csv_rows} >= {"AuditClient/7.1", "laptop.audit.test"}
    table = report(gw, "logins").splitlines()
    assert table[0].split()[:3] == ["time", "event", "protocol"]
    assert len(table) == len(rows) + 1
    ok = [line.split() for line in table if "AuditClient/7.1" in line and " login " in line]
    assert ok and ok[0][1:4] == ["login", "imap", "imaps"] and ok[0][-6:-4] == ["ok", "ok"]


def test_report_logins_filters(gw):
    fails = json.loads(report(gw, "logins", "--result", "fail", "--format", "json"))
    assert fails and all(r["result"] == "fail" for r in fails)
    bob = json.loads(report(gw, "logins", "--user", "bob", "--format", "json"))
    assert len(bob) == LOCKOUT_THRESHOLD + 1 and {r["user"] for r in bob} == {BOB}
    pop3 = json.loads(report(gw, "logins", "--protocol", "pop3", "--format", "json"))
    assert pop3 and {r["protocol"] for r in pop3} == {"pop3"}
    assert gw.cli("report", "logins", "--since", "yesterday").returncode == 2
    bad = gw.cli("report", "logins", "--result", "maybe")
    assert bad.returncode == 2 and "--result" in bad.stderr


def test_report_usage_in_three_formats(gw):
    wait_events(gw, event="end", protocol="smtp")
    doc = json.loads(report(gw, "usage", "--format", "json"))
    # the store names users as they were added: "alice", or "alice@DOMAIN" under default_domain
    name = {r["user"].split("@")[0]: r["user"] for r in doc["usage"]}
    usage = {(r["user"].split("@")[0], r["protocol"]): r for r in doc["usage"]}
    alice = usage[("alice", "imap")]
    assert alice["enabled"] == "yes" and alice["logins"] == 1 and alice["failures"] >= 1
    assert alice["last_client"] == "127.0.0.1 AuditClient/7.1" and alice["bytes_out"] > 100
    assert usage[("special", "pop3")]["enabled"] == "no"
    assert usage[("unicode", "imap")]["enabled"] == "no"  # --enabled off
    assert usage[("dave", "smtp")]["logins"] == 1
    switch_off = f"mailgate user set {name['alice']} --pop3 off"
    unused = {(u["user"].split("@")[0], u["protocol"]): u["command"] for u in doc["unused"]}
    assert unused[("alice", "pop3")] == switch_off
    assert ("alice", "imap") not in unused and ("special", "pop3") not in unused
    csv_rows = list(csv.DictReader(io.StringIO(report(gw, "usage", "--format", "csv"))))
    assert {(r["user"].split("@")[0], r["protocol"]) for r in csv_rows} == set(usage)
    [alice_pop3] = [r for r in csv_rows if r["user"] == name["alice"] and r["protocol"] == "pop3"]
    assert alice_pop3["switch_off_command"] == switch_off and alice_pop3["logins"] == "0"
    table = report(gw, "usage")
    head, _, tail = table.partition("Enabled but unused")
    lines = [line.split() for line in head.strip().splitlines()]
    assert lines[0] == ["user", "protocol", "enabled", "logins", "failures", "last_login",
                        "bytes_in", "bytes_out", "last_client"]
    assert len(lines) == len(usage) + 1
    [alice_imap] = [cells for cells in lines if cells[:2] == [name["alice"], "imap"]]
    assert alice_imap[2:4] == ["yes", "1"] and alice_imap[-1] == "AuditClient/7.1"
    [special_pop3] = [cells for cells in lines if cells[:2] == [name["special"], "pop3"]]
    assert special_pop3[2:4] == ["no", "0"]
    assert f"  {switch_off}\n" in tail
    assert f"mailgate user set {name['alice']} --imap off" not in tail


# -- retention ----------------------------------------------------------------------------------

def insert_event(gw, session, days_ago):
    """A login row dated days_ago, written with the sqlite3 CLI as an administrator would."""
    sql = ("INSERT INTO login_events (at, event, session, protocol, listener, client_addr,"
           " client_port, client_id, login, user, mailbox, result, reason, duration_ms,"
           " bytes_in, bytes_out) VALUES (CAST(strftime('%s','now') AS INTEGER) - "
           f"{days_ago} * 86400, 'login', '{session}', 'pop3', 'pop3s', '192.0.2.9', 1110, '',"
           f" 'bob', '{BOB}', '', 'ok', 'ok', 1, 0, 0);")
    subprocess.run(["sqlite3", os.path.join(gw.state_dir, "mailgate.db"), sql], check=True,
                   timeout=30)


def test_retention_prunes_old_rows_at_start(gw):
    insert_event(gw, "0ld0ld00", 100)  # beyond the default audit_retention = 90d
    insert_event(gw, "4e4e4e4e", 89)
    assert len(events(gw, session="0ld0ld00")) == 1
    offset = gw.log_offset()
    gw.restart()
    gw.wait_for_log(r"audit: pruned 1 login events", offset=offset)
    assert events(gw, session="0ld0ld00") == []
    assert len(events(gw, session="4e4e4e4e")) == 1
    # 89 days ago is outside --since 30d, inside --since 90d
    assert not json.loads(report(gw, "logins", "--user", "bob", "--protocol", "pop3",
                                 "--format", "json"))
    old = json.loads(report(gw, "logins", "--since", "90d", "--protocol", "pop3",
                            "--user", "bob", "--format", "json"))
    assert [r["session"] for r in old] == ["4e4e4e4e"]


# -- audit_log on reload ------------------------------------------------------------------------

def gateway_file(path):
    """An empty file the broker (the gateway user after dropping root) may append to, as
    logrotate's `create 0640 mailgate mailgate` makes it."""
    open(path, "w").close()
    entry = pwd.getpwnam("mailgate")
    os.chown(path, entry.pw_uid, entry.pw_gid)


def reload_and_login(gw, client_name):
    offset = gw.log_offset()
    os.kill(gw.proc.pid, signal.SIGHUP)
    gw.wait_for_log(r"reloaded ", offset, timeout=20)
    c, done = imap_login(gw, "alice", USERS["alice"][0], client_id=(client_name, "1"))
    c.close()
    assert done.startswith("l1 OK"), done
    wait_events(gw, event="end", client_id=f"{client_name}/1")


def json_clients(path):
    with open(path) as f:
        return {json.loads(line)["client_id"] for line in f}


def test_reload_reopens_the_audit_log_for_logrotate(gw):
    """logrotate moves the file, creates a new one and sends SIGHUP: the records after the
    reload go to the new file, none is lost in the moved one."""
    rotated = gw.audit_log + ".1"
    os.rename(gw.audit_log, rotated)
    gateway_file(gw.audit_log)
    reload_and_login(gw, "AfterRotate")
    assert wait_until(lambda: "AfterRotate/1" in json_clients(gw.audit_log), timeout=10)
    assert "AfterRotate/1" not in json_clients(rotated)
    assert "AuditClient/7.1" in json_clients(rotated)


def test_reload_follows_a_new_audit_log_path(gw):
    old = gw.audit_log
    new = os.path.join(gw.dir, "audit-new.jsonl")
    gateway_file(new)
    lines = gw.settings["gateway_lines"]
    lines[lines.index(f"audit_log = {old}")] = f"audit_log = {new}"
    gw.write_config()
    gw.audit_log = new
    reload_and_login(gw, "AfterPathChange")
    assert wait_until(lambda: "AfterPathChange/1" in json_clients(new), timeout=10)
    assert "AfterPathChange/1" not in json_clients(old)
