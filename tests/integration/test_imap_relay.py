"""After login the gateway is a byte pump: large fetches, appends, IDLE, many sessions."""
import imaplib
import os
import re
import ssl
import threading

from conftest import USERS, connect, login
from harness.dovecot import sha256, small_message
from harness.stack import ALICE, BOB


def imaplib_login(gw, user):
    ctx = ssl.create_default_context(cafile=gw.certs.ca)
    m = imaplib.IMAP4_SSL("localhost", gw.imaps_port, ssl_context=ctx, timeout=60)
    m.login(user, USERS[user][0])
    return m


def test_five_megabyte_message_is_byte_exact(gateway, stack):
    subject, original = stack.seeded[ALICE][2]
    assert len(original) == 5 * 1024 * 1024
    m = imaplib_login(gateway, "alice")
    try:
        m.select("INBOX", readonly=True)
        typ, data = m.uid("FETCH", "3", "(BODY.PEEK[])")
        assert typ == "OK"
        assert sha256(data[0][1]) == sha256(original)
    finally:
        m.logout()


def test_fetch_matches_direct_fetch(gateway, stack):
    via = imaplib_login(gateway, "alice")
    direct = stack.dovecot.login_xoauth2(ALICE, stack.idp.token())
    try:
        for m in (via, direct):
            m.select("INBOX", readonly=True)
        query = "(FLAGS RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[TEXT])"
        assert via.uid("FETCH", "1:2", query) == direct.uid("FETCH", "1:2", query)
    finally:
        via.logout()
        direct.logout()


def test_append_through_gateway_round_trips(gateway, stack):
    body = os.urandom(1024 * 1024).hex().encode()  # 2 MB of text, client -> upstream
    msg = small_message("Round trip", ALICE, "")[:-2] + b"\r\n" + body + b"\r\n"
    m = imaplib_login(gateway, "alice")
    try:
        m.create("RoundTrip")
        typ, _ = m.append("RoundTrip", None, None, msg)
        assert typ == "OK"
        m.select("RoundTrip")
        typ, data = m.search(None, "ALL")
        last = data[0].split()[-1]
        typ, data = m.fetch(last, "(BODY.PEEK[])")
        assert sha256(data[0][1]) == sha256(msg)
    finally:
        m.logout()
    # and Dovecot really has it
    direct = stack.dovecot.login_xoauth2(ALICE, stack.idp.token())
    try:
        typ, data = direct.status("RoundTrip", "(MESSAGES)")
        assert typ == "OK" and b"MESSAGES" in data[0]
    finally:
        direct.logout()


def test_idle_sees_append_from_other_session(gateway):
    watcher = login(gateway, "bob")
    with watcher:
        untagged, done = watcher.command("w1", "SELECT INBOX")
        assert done.startswith("w1 OK")
        exists = max(int(line.split()[1]) for line in untagged if line.endswith(" EXISTS"))
        watcher.send("w2 IDLE\r\n")
        assert watcher.readline().startswith("+")

        other = imaplib_login(gateway, "bob")
        try:
            assert other.append("INBOX", None, None, small_message("Ping", BOB))[0] == "OK"
        finally:
            other.logout()

        watcher.sock.settimeout(15)
        while True:
            line = watcher.readline()
            m = re.match(r"\* (\d+) EXISTS", line)
            if m:
                assert int(m.group(1)) == exists + 1
                break
        watcher.send("DONE\r\n")
        _, done = watcher.read_until_tagged("w2")
        assert done.startswith("w2 OK"), done


def test_logout_after_login(gateway):
    c = login(gateway, "alice")
    with c:
        untagged, done = c.command("a2", "LOGOUT")
        assert any(line.startswith("* BYE") for line in untagged)
        assert done.startswith("a2 OK")
        assert c.closed_by_peer()


def test_noop_id_capability_after_login(gateway):
    c = login(gateway, "alice")
    with c:
        _, done = c.command("a2", "NOOP")
        assert done.startswith("a2 OK")
        untagged, done = c.command("a3", 'ID ("name" "pytest")')
        assert done.startswith("a3 OK") and any(u.startswith("* ID") for u in untagged)
        untagged, done = c.command("a4", "CAPABILITY")
        assert done.startswith("a4 OK") and "IDLE" in untagged[0]


def test_parallel_sessions(gateway, stack):
    expected = sha256(stack.seeded[ALICE][0][1])
    errors = []

    def session(i):
        try:
            m = imaplib_login(gateway, "alice" if i % 2 else "special")
            m.select("INBOX", readonly=True)
            typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
            if sha256(data[0][1]) != expected:
                errors.append(f"session {i}: wrong bytes")
            m.logout()
        except Exception as e:  # collected and asserted below
            errors.append(f"session {i}: {e!r}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_upstream_greeting_not_leaked_after_login(gateway):
    """The client sees exactly one tagged OK for its LOGIN, no second greeting."""
    with connect(gateway) as c:
        untagged, done = c.command("a1", "LOGIN alice alice-Secret-1")
        assert done.startswith("a1 OK")
        assert not [u for u in untagged if u.startswith("* OK") and "Dovecot" in u], untagged
        _, done = c.command("a2", "NOOP")
        assert done.startswith("a2 OK")
        assert not c.buf
