"""The shared test world: identities, the fake IdP process, and one call that starts it all."""
import hashlib
import json
import ssl
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field

from . import certs as certs_mod
from .idp_client import DELEGATED_SCOPE, IdpClient  # noqa: F401  (DELEGATED_SCOPE for tests)
from .idp_google import MAIL_SCOPE as GOOGLE_SCOPE
from .owner import give_to_gateway_user
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
# Dovecot has their mailboxes; only the IdP refuses them (ROPC: MFA required / account disabled)
ERIN = f"erin@{DOMAIN}"  # "mfa": true
FRANK = f"frank@{DOMAIN}"  # "disabled": true
MAILBOXES = [ALICE, BOB, DAVE, ERIN, FRANK]
# the users' Entra ID passwords (ROPC); CAROL has no account
ENTRA_PASSWORDS = {ALICE: "Alice-Entra-Pw1", BOB: "Bob's Entra pw 2", DAVE: "dave-Entra-3",
                   ERIN: "Erin-Entra-Mfa-4", FRANK: "Frank-Entra-Disabled-5"}
# a public client app for delegated flows (device code, ROPC, refresh): no secret, no roles
CLIENT_ID_DELEGATED = "44444444-5555-6666-7777-888888888888"
DELEGATED_SCOPES = ["IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send"]

# Google: a service account with domain-wide delegation, and an OAuth client for user consent
GOOGLE_PROJECT = "mailgate-test"
GOOGLE_SA_EMAIL = f"mailgate@{GOOGLE_PROJECT}.iam.gserviceaccount.com"
GOOGLE_SA_CLIENT_ID = "104857600123456789012"
GOOGLE_SA_MAILBOXES = [ALICE, BOB, DAVE]  # ERIN is a user but not delegated
GOOGLE_CLIENT_ID = "123456789012-mailgatetestclient0000000000000.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-" + "g" * 28


def idp_config(mailboxes=None):
    def app(secret, name):
        return {"tenant": TENANT, "secret": secret, "name": name,
                "mailboxes": list(mailboxes or MAILBOXES),
                "roles": ["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"]}

    users = {m: {"password": pw, "mfa": m == ERIN, "disabled": m == FRANK}
             for m, pw in ENTRA_PASSWORDS.items()}
    return {"tenants": {TENANT: {"tid": TENANT_ID, "domain": DOMAIN}},
            "apps": {CLIENT_ID: app(CLIENT_SECRET, "mailgate"),
                     CLIENT_ID2: app(CLIENT_SECRET2, "mailgate second app"),
                     CLIENT_ID_POP_ONLY: {"tenant": TENANT, "secret": CLIENT_SECRET_POP_ONLY,
                                          "name": "mailgate pop-only app", "mailboxes": [],
                                          "roles": ["POP.AccessAsApp"]},
                     CLIENT_ID_DELEGATED: {"tenant": TENANT, "name": "mailgate delegated",
                                           "public_client": True, "mailboxes": [], "roles": [],
                                           "delegated_scopes": list(DELEGATED_SCOPES)}},
            "users": users,
            "google": {"service_accounts": {}, "clients": {
                GOOGLE_CLIENT_ID: {"secret": GOOGLE_CLIENT_SECRET}}},
            "token_lifetime": 3599}


def google_private_key_id(cert_pem):
    """40 hex digits naming the service account key, as in Google's key files."""
    return hashlib.sha1(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()


def with_google_service_account(config, certset):
    """Registers certs/google-sa.pem as the key of the service account GOOGLE_SA_EMAIL."""
    with open(certset.google_sa_cert) as f:
        pem = f.read()
    config["google"]["service_accounts"][GOOGLE_SA_EMAIL] = {
        "certificate": pem, "private_key_id": google_private_key_id(pem),
        "client_id": GOOGLE_SA_CLIENT_ID, "mailboxes": list(GOOGLE_SA_MAILBOXES),
        "scopes": [GOOGLE_SCOPE]}
    return config


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
            config = with_app_certificate(idp_config(mailboxes), certset)
            json.dump(with_google_service_account(config, certset), f, indent=1)
        self.proc = None
        self.client = IdpClient(self.port, self.intro_port, certset.ca)

    @property
    def token_endpoint(self):
        return f"https://127.0.0.1:{self.port}/{{tenant}}/oauth2/v2.0/token"

    @property
    def device_endpoint(self):
        return f"https://127.0.0.1:{self.port}/{{tenant}}/oauth2/v2.0/devicecode"

    @property
    def jwks_uri(self):
        return f"https://127.0.0.1:{self.port}/{TENANT}/discovery/v2.0/keys"

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

    @property
    def google_token_uri(self):
        return f"https://127.0.0.1:{self.port}/google/token"

    def google_service_account_key(self):
        """GOOGLE_SA_EMAIL's key file contents, in Google's JSON key format."""
        with open(self.certs.google_sa_key) as f:
            private_key = f.read()
        with open(self.certs.google_sa_cert) as f:
            key_id = google_private_key_id(f.read())
        cert_url = "https://www.googleapis.com/robot/v1/metadata/x509/" + GOOGLE_SA_EMAIL
        return {"type": "service_account", "project_id": GOOGLE_PROJECT,
                "private_key_id": key_id, "private_key": private_key,
                "client_email": GOOGLE_SA_EMAIL, "client_id": GOOGLE_SA_CLIENT_ID,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.google_token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": cert_url.replace("@", "%40"),
                "universe_domain": "googleapis.com"}

    def google_service_account_file(self, directory):
        """Writes the service account key file into directory (0600); returns its path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "google-service-account.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.google_service_account_key(), f, indent=2)
        give_to_gateway_user(path)
        return path


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

    def google_service_account_file(self, directory):
        """A Google service account JSON key file (token_uri = the fake IdP) in directory."""
        return self.idp.google_service_account_file(directory)

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
