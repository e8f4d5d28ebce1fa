"""The shared test world: identities, the fake IdP process, and one call that starts it all."""
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field

from . import certs as certs_mod
from .idp import IdpClient
from .procs import free_port, port_accepts, stop_process, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

TENANT = "contoso.onmicrosoft.com"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "Q~test.Secret_" + "x" * 26
# a second registered app, so one test can revoke its tokens without touching the main gateway's
CLIENT_ID2 = "22222222-3333-4444-5555-666666666666"
CLIENT_SECRET2 = "Q~second.Secret_" + "y" * 24
# an app registered with POP.AccessAsApp only (no IMAP or SMTP role, no mailboxes)
CLIENT_ID_POP_ONLY = "33333333-4444-5555-6666-777777777777"
CLIENT_SECRET_POP_ONLY = "Q~pop.only.Secret_" + "z" * 22
SCOPE = "https://outlook.office365.com/.default"
DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"  # exists nowhere: the app has no FullAccess on it
DAVE = f"dave@{DOMAIN}"  # the POP3 mailbox (DELE tests re-seed it; IMAP tests never touch it)
MAILBOXES = [ALICE, BOB, DAVE]


def idp_config(mailboxes=None):
    def app(secret, name):
        return {"tenant": TENANT, "secret": secret, "name": name,
                "mailboxes": list(mailboxes or MAILBOXES),
                "roles": ["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"]}

    return {"tenants": {TENANT: {"tid": TENANT_ID, "domain": DOMAIN}},
            "apps": {CLIENT_ID: app(CLIENT_SECRET, "mailgate"),
                     CLIENT_ID2: app(CLIENT_SECRET2, "mailgate second app"),
                     CLIENT_ID_POP_ONLY: {"tenant": TENANT, "secret": CLIENT_SECRET_POP_ONLY,
                                          "name": "mailgate pop-only app", "mailboxes": [],
                                          "roles": ["POP.AccessAsApp"]}},
            "token_lifetime": 3599}


def with_app_certificate(config, certset):
    """Registers certs/app.pem as a certificate credential of the main app (CLIENT_ID), next to
    its secret, as Entra ID allows both."""
    if getattr(certset, "app_cert", None):
        with open(certset.app_cert) as f:
            config["apps"][CLIENT_ID]["certificates"] = [f.read()]
    return config


class IdpServer:
    """The fake Entra ID as a subprocess (stopped by PID) plus its client."""

    def __init__(self, workdir, certset, mailboxes=None):
        self.workdir = workdir
        self.certs = certset
        self.port = free_port()
        self.intro_port = free_port()
        self.config_path = os.path.join(workdir, "idp.json")
        self.log_path = os.path.join(workdir, "idp.log")
        with open(self.config_path, "w") as f:
            json.dump(with_app_certificate(idp_config(mailboxes), certset), f, indent=1)
        self.proc = None
        self.client = IdpClient(self.port, self.intro_port, certset.ca)

    @property
    def token_endpoint(self):
        return f"https://127.0.0.1:{self.port}/{{tenant}}/oauth2/v2.0/token"

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "idp.py"), "--port", str(self.port), "--intro-port",
             str(self.intro_port), "--cert", self.certs.fullchain, "--key", self.certs.key,
             "--config", self.config_path],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is None and port_accepts(self.port)
                   and port_accepts(self.intro_port), timeout=15, what="fake IdP")
        wait_until(lambda: self.client.stats() is not None, timeout=10, what="IdP control API")
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def token(self):
        return self.client.token(TENANT, CLIENT_ID, CLIENT_SECRET)


@dataclass
class Stack:
    workdir: str
    certs: object
    idp: IdpServer
    dovecot: object
    seeded: dict = field(default_factory=dict)
    sink: object = None

    def stop(self):
        self.dovecot.stop()
        self.idp.stop()
        if self.sink:
            self.sink.stop()

    def reseed_pop3(self):
        """Puts the POP3 test mailbox (DAVE) back to its seeded state; returns its messages."""
        from .dovecot import pop3_plan, reseed_mailbox
        self.seeded[DAVE] = reseed_mailbox(self.dovecot, self.idp.token(), DAVE,
                                           pop3_plan(DAVE))
        return self.seeded[DAVE]


def start_stack(workdir, seed=True):
    """Certificates, fake IdP and private Dovecot (seeded) in workdir. Caller stops it."""
    from .dovecot import Dovecot, seed_mailboxes
    from .smtp_sink import SmtpSink

    os.makedirs(workdir, exist_ok=True)
    cs = certs_mod.make_certs(os.path.join(workdir, "certs"))
    idp = IdpServer(workdir, cs).start()
    try:
        sink = SmtpSink(os.path.join(workdir, "sink")).start()
    except Exception:
        idp.stop()
        raise
    dc = Dovecot(os.path.join(workdir, "dovecot"), cs, idp.intro_port, MAILBOXES,
                 sink_port=sink.port)
    try:
        dc.start()
    except Exception:
        idp.stop()
        sink.stop()
        raise
    stack = Stack(workdir=workdir, certs=cs, idp=idp, dovecot=dc, sink=sink)
    if seed:
        try:
            stack.seeded = seed_mailboxes(dc, idp.token())
            stack.reseed_pop3()
        except Exception:
            stack.stop()
            raise
    return stack


def new_uuid():
    return str(uuid.uuid4())
