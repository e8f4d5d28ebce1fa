"""The protocol log (issue 11, Exchange's ProtocolLogEnabled): with protocol_log = on a listener's
sessions have their command lines in state_dir/protocol-log/protocol.log: before and during the
login both client <-> gateway and gateway <-> upstream, with passwords, SASL responses and the
access token replaced by <redacted>; after the login only commands and status lines, never
message content. A listener with protocol_log = off logs nothing; the file is rotated by size;
a reload turns the log on for new sessions."""
import base64
import os
import re
import signal
import uuid

import pytest

from conftest import USERS, plain_b64, quoted
from harness.imapclient import RawImap
from harness.lineclient import LineClient
from harness.procs import wait_until
from harness.stack import ALICE

REDACTED = "<redacted>"
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f]{8} \S+ (C:|S:|U>|U<|#:) ")


@pytest.fixture(scope="module")
def gw(fleet):
    g = fleet.new("protolog", start=False, protocols=("imap", "pop3", "smtp"),
                  gateway_lines=["protocol_log = on"])
    g.add_listener("imaps-quiet", "imap", "implicit", "protocol_log = off")
    g.write_config()
    return g.start()


def log_dir(gw):
    return os.path.join(gw.state_dir, "protocol-log")


def log_text(gw):
    """Every protocol log file's text, the rotated ones too."""
    d = log_dir(gw)
    if not os.path.isdir(d):
        return ""
    parts = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
            parts.append(f.read())
    return "".join(parts)


def session_lines(gw, session_marker, closed=True):
    """The lines of the session whose lines contain session_marker, once it has closed."""
    def find():
        text = log_text(gw)
        for m in re.finditer(r"^\S+ ([0-9a-f]{8}) \S+ .*" + re.escape(session_marker), text, re.M):
            sid = m.group(1)
            lines = [line for line in text.splitlines() if line.split(" ")[1:2] == [sid]]
            if not closed or any(line.endswith("#: closed") for line in lines):
                return lines
        return None
    return wait_until(find, timeout=10, what=f"protocol log of the session with {session_marker}")


def body(lines):
    """The part after the direction label of each line."""
    return [line.split(" ", 3)[3] for line in lines]


def assert_clean(gw, *secrets):
    text = log_text(gw)
    for secret in secrets:
        assert secret and secret not in text, f"{secret[:40]!r} is in the protocol log"
    for line in text.splitlines():
        assert LINE_RE.match(line), line


def issued_tokens(stack):
    return stack.idp.client.issued_tokens()


def imap(gw, listener="imaps"):
    return RawImap(gw.port(listener), tls=True, ca_file=gw.certs.ca)


def test_imap_login_fetch_and_upstream_login_are_redacted(gw, stack):
    marker = uuid.uuid4().hex
    secret_body = f"body text {marker} that must never be logged"
    password = USERS["alice"][0]
    c = imap(gw)
    _, done = c.command("a1", f"LOGIN alice {quoted(password)}")
    assert done.startswith("a1 OK"), done
    msg = (f"From: <{ALICE}>\r\nSubject: protolog {marker}\r\n\r\n{secret_body}\r\n").encode()
    c.send(b"a2 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    _, done = c.read_until_tagged("a2")
    assert done.startswith("a2 OK"), done
    _, done = c.command("a3", "SELECT INBOX")
    untagged, done = c.command("a4", f"UID SEARCH SUBJECT {marker}")
    uid = [line for line in untagged if line.startswith("* SEARCH")][0].split()[-1]
    untagged, done = c.command("a5", f"UID FETCH {uid} BODY[]")
    assert done.startswith("a5 OK") and any(secret_body in x for x in untagged), untagged
    c.command("a6", f"UID STORE {uid} +FLAGS (\\Deleted)")
    c.command("a7", "EXPUNGE")
    c.command("a8", "LOGOUT")
    c.close()
    lines = body(session_lines(gw, "a4 UID SEARCH"))
    assert f"C: a1 LOGIN alice {REDACTED}" in lines
    assert any(x.startswith("S: a1 OK") for x in lines), lines
    # the gateway's own upstream login: the XOAUTH2 response (with the token) is redacted
    assert any(re.match(r"U> \S+ AUTHENTICATE XOAUTH2 <redacted>$", x) for x in lines), lines
    assert any(x.startswith("U< * OK") for x in lines), lines
    # after the login: commands (literal as {N}) and tagged responses, no untagged data
    assert f"C: a2 APPEND INBOX {{{len(msg)}+}}" in lines
    assert f"C: a5 UID FETCH {uid} BODY[]" in lines
    assert any(x.startswith("S: a5 OK") for x in lines), lines
    assert not any(x.startswith("S: *") for x in lines[lines.index(f"C: a5 UID FETCH {uid} BODY[]"):])
    assert_clean(gw, password, secret_body, *issued_tokens(stack))


def test_imap_authenticate_plain_continuation_and_literal_login(gw, stack):
    password = USERS["alice"][0]
    response = plain_b64("alice", password)
    c = imap(gw)
    c.send("b1 AUTHENTICATE PLAIN\r\n")
    assert c.readline().startswith("+")
    c.send(response + "\r\n")
    _, done = c.read_until_tagged("b1")
    assert done.startswith("b1 OK"), done
    c.command("b2", "LOGOUT")
    c.close()
    lines = body(session_lines(gw, "b1 AUTHENTICATE"))
    assert "C: b1 AUTHENTICATE PLAIN" in lines
    assert f"C: {REDACTED}" in lines
    # LOGIN with the password as a literal: its bytes are passed over unseen
    special = USERS["special"][0].encode()
    c = imap(gw)
    c.send(b"c1 LOGIN special {%d}\r\n" % len(special))
    assert c.readline().startswith("+")
    c.send(special + b"\r\n")
    _, done = c.read_until_tagged("c1")
    assert done.startswith("c1 OK"), done
    c.command("c2", "LOGOUT")
    c.close()
    lines = body(session_lines(gw, "c1 LOGIN"))
    assert f"C: c1 LOGIN special {REDACTED}" in lines, lines
    assert_clean(gw, password, response, special.decode(), *issued_tokens(stack))


def test_pop3_user_pass_and_auth_plain(gw, stack):
    seeded = stack.reseed_pop3()
    assert seeded
    password = USERS["dave"][0]
    c = LineClient(gw.port("pop3s"), tls=True, ca_file=gw.certs.ca)
    assert c.cmd("USER dave").startswith("+OK")
    assert c.cmd(f"PASS {password}").startswith("+OK")
    assert c.cmd("RETR 1").startswith("+OK")
    retrieved = c.pop3_multiline()
    assert c.cmd("QUIT").startswith("+OK")
    c.close()
    lines = body(session_lines(gw, "C: USER dave"))
    assert f"C: PASS {REDACTED}" in lines
    assert "C: RETR 1" in lines and any(x.startswith("S: +OK") for x in lines)
    assert any(re.match(r"S: <\d+ lines of content not logged>", x) for x in lines), lines
    assert any(x == "U> AUTH XOAUTH2" or x.startswith("U> AUTH XOAUTH2 <redacted>")
               for x in lines), lines
    content = [x.decode() for x in retrieved.split(b"\r\n") if len(x) > 12]
    response = plain_b64("dave", password)
    c = LineClient(gw.port("pop3s"), tls=True, ca_file=gw.certs.ca)
    assert c.cmd(f"AUTH PLAIN {response}").startswith("+OK")
    assert c.cmd("QUIT").startswith("+OK")
    c.close()
    lines = body(session_lines(gw, "C: AUTH PLAIN"))
    assert f"C: AUTH PLAIN {REDACTED}" in lines
    assert_clean(gw, password, response, *content, *issued_tokens(stack))


def smtp_client(gw):
    c = LineClient(gw.port("smtps"), tls=True, ca_file=gw.certs.ca)
    assert c.smtp("EHLO client.test")[-1].startswith("250 ")
    return c


def test_smtp_auth_plain_and_login_then_data(gw, stack):
    password = USERS["alice"][0]
    response = plain_b64("alice", password)
    c = smtp_client(gw)
    assert c.smtp(f"AUTH PLAIN {response}")[0].startswith("235")
    c.smtp("QUIT")
    c.close()
    lines = body(session_lines(gw, "C: AUTH PLAIN"))
    assert f"C: AUTH PLAIN {REDACTED}" in lines
    marker = uuid.uuid4().hex
    secret_body = f"message body {marker} never in the log"
    user_b64 = base64.b64encode(b"alice").decode()
    pass_b64 = base64.b64encode(password.encode()).decode()
    c = smtp_client(gw)
    assert c.smtp("AUTH LOGIN")[0].startswith("334")
    assert c.smtp(user_b64)[0].startswith("334")
    assert c.smtp(pass_b64)[0].startswith("235")
    assert c.smtp(f"MAIL FROM:<{ALICE}>")[0].startswith("250")
    assert c.smtp("RCPT TO:<someone@remote.test>")[0].startswith("250")
    assert c.smtp("DATA")[0].startswith("354")
    reply = c.smtp(f"Subject: {marker}\r\n\r\n{secret_body}\r\n.")
    assert reply[0].startswith("250"), reply
    c.smtp("QUIT")
    c.close()
    lines = body(session_lines(gw, "C: AUTH LOGIN"))
    assert lines.count(f"C: {REDACTED}") == 2, lines
    assert "C: DATA" in lines and any(x.startswith("S: 354") for x in lines)
    assert "C: <3 lines of content not logged>" in lines, lines
    assert any(x.startswith("U> AUTH XOAUTH2") for x in lines), lines
    assert_clean(gw, password, response, pass_b64, secret_body, marker, *issued_tokens(stack))


def test_listener_with_protocol_log_off_logs_nothing(gw):
    c = imap(gw, "imaps-quiet")
    _, done = c.command("q1", f"LOGIN alice {quoted(USERS['alice'][0])}")
    assert done.startswith("q1 OK"), done
    c.command("q2", "LOGOUT")
    c.close()
    # a logged session after it: once its lines are there, the quiet one's would be too
    c = imap(gw)
    c.command("z1", "NOOP")
    c.command("z2", "LOGOUT")
    c.close()
    session_lines(gw, "C: z1 NOOP")
    assert " imaps-quiet " not in log_text(gw)


def test_rotation_keeps_the_log_bounded(fleet):
    g = fleet.new("protolog-rotate", gateway_lines=["protocol_log = on",
                                                    "protocol_log_max = 4K"])
    for i in range(30):
        c = RawImap(g.imaps_port, tls=True, ca_file=g.certs.ca)
        c.command(f"r{i}", "CAPABILITY")
        c.command("x", "LOGOUT")
        c.close()
    session_lines(g, "C: r29 CAPABILITY")
    names = sorted(os.listdir(log_dir(g)))
    assert "protocol.log.1" in names, names
    assert len(names) <= 6, names  # protocol.log and at most 5 rotated files
    for name in names:
        assert os.path.getsize(os.path.join(log_dir(g), name)) <= 4096 + 16384, name


def test_reload_turns_the_log_on_for_new_sessions(fleet):
    g = fleet.new("protolog-reload", workers=1)
    c = RawImap(g.imaps_port, tls=True, ca_file=g.certs.ca)
    c.command("n1", "NOOP")
    c.close()
    g.settings["gateway_lines"] = ["protocol_log = on"]
    g.write_config()
    offset = g.log_offset()
    os.kill(g.proc.pid, signal.SIGHUP)
    g.wait_for_log(r"reloaded ", offset, timeout=20)

    def logged():
        c = RawImap(g.imaps_port, tls=True, ca_file=g.certs.ca)
        c.command("m1", "NOOP")
        c.close()
        return "C: m1 NOOP" in log_text(g)
    wait_until(logged, timeout=15, interval=0.5, what="a session logged after the reload")
    assert "C: n1 NOOP" not in log_text(g)


def test_large_append_and_fetch_relay_intact_without_content(gw, stack):
    """4 MB each way through the relay while the log watches: byte-exact, and only the commands
    and tagged answers are logged (the literals' bytes are passed over)."""
    marker = uuid.uuid4().hex
    line = f"large {marker} line of message text, never logged\r\n".encode()
    msg = (f"From: <{ALICE}>\r\nSubject: big {marker}\r\n\r\n".encode()
           + line * ((4 << 20) // len(line)))
    c = imap(gw)
    _, done = c.command("d1", f"LOGIN alice {quoted(USERS['alice'][0])}")
    assert done.startswith("d1 OK"), done
    c.send(b"d2 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    _, done = c.read_until_tagged("d2")
    assert done.startswith("d2 OK"), done
    c.command("d3", "SELECT INBOX")
    untagged, _ = c.command("d4", f"UID SEARCH SUBJECT {marker}")
    uid = [x for x in untagged if x.startswith("* SEARCH")][0].split()[-1]
    c.send(f"d5 UID FETCH {uid} BODY.PEEK[]\r\n")
    head = c.readline()
    size = int(re.search(r"\{(\d+)\}$", head).group(1))
    assert c.read_bytes(size) == msg
    _, done = c.read_until_tagged("d5")
    assert done.startswith("d5 OK"), done
    c.command("d6", f"UID STORE {uid} +FLAGS (\\Deleted)")
    c.command("d7", "EXPUNGE")
    c.command("d8", "LOGOUT")
    c.close()
    lines = body(session_lines(gw, "d4 UID SEARCH"))
    assert f"C: d2 APPEND INBOX {{{len(msg)}+}}" in lines
    assert any(x.startswith("S: d5 OK") for x in lines), lines
    assert len(lines) < 40, lines
    assert_clean(gw, "never logged", *issued_tokens(stack))
