"""Fixtures: one test stack per session (certs, fake Entra ID, private Dovecot, gateway).

MAILGATE_BIN selects the binary (default build-test/mailgate). Tests that need the gateway are
skipped when it is not built; test_harness.py checks the stand-ins on their own.
MAILGATE_KEEP_TMP=1 keeps the session directory (logs) for inspection.
"""
import base64
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from harness import stack as stack_mod  # noqa: E402
from harness.gateway import Gateway, mailgate_bin  # noqa: E402
from harness.imapclient import RawImap  # noqa: E402
from harness.stack import ALICE, BOB, CAROL, DAVE  # noqa: E402

# name -> (password, mailbox). Passwords exercise IMAP quoting, literals and UTF-8.
USERS = {
    "alice": ("alice-Secret-1", ALICE),
    "bob": ("Bob's secret 2", BOB),
    "special": ('p"q{1}\\r(o)o%t*', ALICE),
    "unicode": ("pässwörd-☃-密码", ALICE),
    "carol": ("carol-Secret-3", CAROL),  # the app has no FullAccess on carol's mailbox
    "dave": ("dave-Pop3-Secret-4", DAVE),  # the POP3 mailbox (re-seeded by pop3 tests)
}


GATEWAY_USER = "mailgate"  # [gateway] user's default: the workers' unprivileged user


def ensure_gateway_user():
    """As root (CI), `serve` refuses to start without [gateway] user: create it like `make
    install` does (a system user without a home directory; adduser is Debian's package)."""
    if os.geteuid() != 0:
        return
    if subprocess.run(["id", GATEWAY_USER], capture_output=True).returncode == 0:
        return
    subprocess.run(["adduser", "--system", "--group", "--no-create-home", GATEWAY_USER],
                   check=True, capture_output=True)


@pytest.fixture(scope="session")
def workdir():
    ensure_gateway_user()
    d = tempfile.mkdtemp(prefix="mailgate-it-")
    yield d
    if not os.environ.get("MAILGATE_KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"\nmailgate test state kept in {d}")


@pytest.fixture(scope="session")
def stack(workdir):
    st = stack_mod.start_stack(os.path.join(workdir, "stack"))
    yield st
    st.stop()


@pytest.fixture(scope="session")
def certs(stack):
    return stack.certs


@pytest.fixture(scope="session")
def idp(stack):
    return stack.idp.client


def require_binary():
    if not os.access(mailgate_bin(), os.X_OK):
        pytest.skip(f"mailgate binary not built ({mailgate_bin()})")


class Fleet:
    """Every gateway instance of the session; all are stopped and checked at the end."""

    def __init__(self, workdir, stack):
        self.workdir, self.stack, self.instances = workdir, stack, []
        self.users_source = None

    def new(self, name, users=True, start=True, protocols=("imap",), **settings):
        require_binary()
        gw = Gateway(os.path.join(self.workdir, "gateways"), self.stack.certs, self.stack.idp,
                     self.stack.dovecot, name=name, protocols=protocols, **settings)
        self.instances.append(gw)
        gw.write_config()
        if users:
            self._add_users(gw)
        return gw.start() if start else gw

    def _add_users(self, gw):
        if self.users_source is None:
            # Made once by a gateway of default settings, never started: not the first test's
            # gateway, whose settings (default_domain) and later changes (a protocol switched
            # off, a lockout) must not reach the others.
            src = Gateway(os.path.join(self.workdir, "gateways"), self.stack.certs,
                          self.stack.idp, self.stack.dovecot, name="users-source")
            src.write_config()
            for user, (password, mailbox) in USERS.items():
                src.add_user(user, password, mailbox=mailbox)
            self.users_source = src.state_dir
        # Argon2 hashing is slow under ASan: every gateway gets a copy of the users' store
        copy_store(self.users_source, gw.state_dir)

    def stop_all(self):
        problems = []
        for gw in self.instances:
            status = gw.stop()
            if status not in (0, None):
                problems.append(f"{gw.name}: exit status {status} after SIGTERM")
            problems += [f"{gw.name}: {line}" for line in gw.sanitizer_findings()]
        return problems


def copy_store(src_dir, dst_dir):
    os.makedirs(dst_dir, exist_ok=True)
    for name in os.listdir(src_dir):
        if name.endswith(".db"):
            src = sqlite3.connect(os.path.join(src_dir, name))
            dst = sqlite3.connect(os.path.join(dst_dir, name))
            src.backup(dst)
            # the users only: cached tokens are the source gateway's (sealed with its key), and
            # tests count the rows of their own gateway
            dst.execute("DELETE FROM tokens")
            dst.commit()
            dst.close()
            src.close()


@pytest.fixture(scope="session")
def fleet(workdir, stack):
    f = Fleet(workdir, stack)
    yield f
    problems = f.stop_all()
    # The sanitizer/exit check of every gateway log: fails the session at teardown.
    assert not problems, "gateway problems:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def gateway(fleet):
    """The main gateway: both listeners, all USERS."""
    return fleet.new("main")


@pytest.fixture(scope="session")
def mail_gateway(fleet):
    """A gateway with IMAP, POP3 (pop3s implicit + pop3 starttls) and SMTP (submission
    starttls + smtps implicit) listeners; provider pop3_server/smtp_server = Dovecot."""
    return fleet.new("mail", protocols=("imap", "pop3", "smtp"))


@pytest.fixture(autouse=True)
def clear_idp_faults(request):
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").idp.client.fault()


# -- helpers used by the tests ------------------------------------------------------------------

def connect(gw, tls=True):
    port = gw.imaps_port if tls else gw.imap_port
    return RawImap(port, tls=tls, ca_file=gw.certs.ca)


def plain_b64(user, password, authzid=""):
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def login(gw, user, tls=True):
    """A RawImap logged in (atom/quoted LOGIN) as one of USERS; asserts OK."""
    c = connect(gw, tls)
    if not tls:
        c.starttls()
    password = USERS[user][0]
    _, done = c.command("L1", f"LOGIN {user} {quoted(password)}")
    assert done.startswith("L1 OK"), done
    return c


def quoted(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gateway_fds(gw):
    """Socket fds of the worker processes (listeners, IPC, clients, upstreams); of the serve
    process itself if it has no workers."""
    from harness.procs import tcp_connections_count
    return sum(tcp_connections_count(pid) for pid in (gw.worker_pids() or gw.process_pids()))


def assert_logged_in(c, done, tag):
    assert done.startswith(f"{tag} OK"), done
    # after the OK the session is Dovecot's: SELECT must work through the relay
    untagged, sel = c.command("z1", "SELECT INBOX")
    assert sel.startswith("z1 OK"), sel
    assert any(re.match(r"\* \d+ EXISTS", line) for line in untagged), untagged


def try_login(gw, user="alice", password=None, tls=True):
    """The tagged answer to one LOGIN on a fresh connection."""
    with RawImap(gw.imaps_port if tls else gw.imap_port, tls=tls, ca_file=gw.certs.ca) as c:
        if not tls:
            c.starttls()
        password = USERS[user][0] if password is None else password
        _, done = c.command("f1", f"LOGIN {quoted(user)} {quoted(password)}")
        return done


def s_client(args, commands, ca):
    """openssl s_client -quiet; sends each command after reading its tagged answer."""
    p = subprocess.Popen(["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile",
                          ca, "-servername", "localhost", *args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    try:
        if "-starttls" not in args:
            lines.append(p.stdout.readline().decode().rstrip("\r\n"))
        for tag, text in commands:
            p.stdin.write(f"{tag} {text}\r\n".encode())
            p.stdin.flush()
            while True:
                line = p.stdout.readline().decode()
                if not line:
                    return lines
                lines.append(line.rstrip("\r\n"))
                if line.startswith(tag + " "):
                    break
    finally:
        p.stdin.close()
        p.wait(timeout=15)
    return lines


def fresh_gateway(fleet, prefix, **settings):
    """A new POP3+SMTP gateway (empty token cache, no back-off state) for one fault test."""
    return fleet.new(f"{prefix}-{len(fleet.instances)}", protocols=("pop3", "smtp"), **settings)


__all__ = ["fresh_gateway", "USERS", "connect", "login", "plain_b64", "quoted", "gateway_fds", "assert_logged_in",
           "try_login", "s_client"]
