"""Runs the mailgate binary: config file, users through the CLI, `serve` as a subprocess.

The binary is $MAILGATE_BIN, default build-test/mailgate relative to the repository root.
"""
import os
import re
import socket
import ssl
import subprocess

from .owner import give_to_gateway_user
from .procs import child_pids, free_port, port_accepts, stop_process, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                     "ThreadSanitizer", "MemorySanitizer")
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
IMAP_BANNER = "The mailgate IMAP4 service is ready."
POP3_BANNER = "The mailgate POP3 service is ready."  # the defaults: not set in the config
SMTP_BANNER = "ESMTP The mailgate SMTP service is ready."
SMTP_HOSTNAME = "mx.mailgate.test"
GREETING_PREFIX = {"imap": "* OK", "pop3": "+OK", "smtp": "220 "}
# what a client outside a listener's allow = hears instead (the listener is up all the same)
REFUSAL_PREFIX = {"imap": "* BYE", "pop3": "-ERR", "smtp": "554 "}
# listener name -> protocol; names not listed are IMAP
PROTOCOL_OF = {"pop3s": "pop3", "pop3": "pop3", "submission": "smtp", "smtps": "smtp"}
PROVIDER_KEYS = ("pop3_server", "pop3_tls", "smtp_server", "smtp_tls")


def mailgate_bin():
    path = os.environ.get("MAILGATE_BIN", os.path.join(ROOT, "build-test", "mailgate"))
    return os.path.abspath(path)


def child_env(asan_options=""):
    """asan_options: more ASAN_OPTIONS (colon-separated) for this process only."""
    env = dict(os.environ)
    env.update(SANITIZER_ENV)
    if asan_options:
        env["ASAN_OPTIONS"] += ":" + asan_options
    return env


def render_config(gw):
    """mailgate.conf text for a Gateway's settings. The provider section is named "microsoft"
    whatever its type (settings provider_type, flow, sasl; no tenant unless type = microsoft).
    Settings gateway_lines / tls_lines: more "key = value" lines for [gateway] / [tls];
    listener_lines: {listener name: more lines for its section}; listener_hosts: {listener name:
    the host part of its address instead of 127.0.0.1, e.g. "[::]"}."""
    s = gw.settings
    lines = ["[gateway]", f"state_dir = {gw.state_dir}", f"log_level = {s['log_level']}",
             f"workers = {s['workers']}", f"login_timeout = {s['login_timeout']}",
             f"idle_timeout = {s['idle_timeout']}", f"auth_cache_ttl = {s['auth_cache_ttl']}",
             f"auth_failure_delay = {s['auth_failure_delay']}",
             f"token_timeout = {s['token_timeout']}", *s.get("gateway_lines", ()), "",
             "[tls]", f"certificate = {gw.certs.fullchain}", f"private_key = {gw.certs.key}",
             *s.get("tls_lines", []), ""]
    for name, (mode, port) in gw.listeners.items():
        proto = gw.protocol(name)
        host = s.get("listener_hosts", {}).get(name, "127.0.0.1")
        extra = list(s.get("listener_lines", {}).get(name, ()))
        lines += [f"[listen {name}]", f"protocol = {proto}", f"address = {host}:{port}",
                  f"tls = {mode}", *extra]
        if proto == "imap" and not any(x.startswith("banner") for x in extra):
            lines.append(f"banner = {IMAP_BANNER}")
        if proto == "smtp":
            lines.append(f"hostname = {s.get('hostname', SMTP_HOSTNAME)}")
        lines.append("")
    ptype = s.get("provider_type", "microsoft")
    lines += ["[provider microsoft]", f"type = {ptype}"]
    if ptype == "microsoft":
        lines.append(f"tenant = {s['tenant']}")
    lines += [f"{k} = {s[k]}" for k in ("flow", "sasl") if s.get(k)]
    lines += [f"client_id = {s['client_id']}", *credential_lines(gw),
              f"token_endpoint = {s['token_endpoint']}", f"scope = {s['scope']}",
              f"imap_server = {s['imap_server']}", f"ca_file = {s['ca_file']}"]
    lines += [f"{k} = {s[k]}" for k in PROVIDER_KEYS if s.get(k)] + [""]
    return "\n".join(lines) + s.get("extra", "")


def credential_lines(gw):
    """client_secret_file, or with settings client_certificate + client_private_key (and
    optionally client_assertion_alg) certificate credentials instead."""
    s = gw.settings
    if not s.get("client_certificate"):
        return [f"client_secret_file = {gw.secret_file}"]
    lines = [f"client_certificate = {s['client_certificate']}",
             f"client_private_key = {s['client_private_key']}"]
    if s.get("client_assertion_alg"):
        lines.append(f"client_assertion_alg = {s['client_assertion_alg']}")
    return lines


class Gateway:
    """One gateway instance. settings override the defaults below (see render_config)."""

    def __init__(self, directory, certset, idp, dovecot, name="gw", protocols=("imap",),
                 **settings):
        """protocols: which listener pairs to configure: imap (imaps implicit + imap starttls),
        pop3 (pop3s implicit + pop3 starttls), smtp (submission starttls + smtps implicit).
        With pop3/smtp the provider points at Dovecot's pop3s (implicit) and submission
        (starttls) unless settings say otherwise (pop3_server, smtp_server, ...)."""
        from .stack import CLIENT_ID, CLIENT_SECRET, SCOPE, TENANT

        self.dir = os.path.abspath(os.path.join(directory, name))
        self.name = name
        self.certs = certset
        self.state_dir = os.path.join(self.dir, "state")
        self.config_path = os.path.join(self.dir, "mailgate.conf")
        self.secret_file = os.path.join(self.dir, "client-secret")
        self.log_path = os.path.join(self.dir, "mailgate.log")
        self.listeners = {}
        if "imap" in protocols:
            self.listeners.update(imaps=("implicit", free_port()), imap=("starttls", free_port()))
        if "pop3" in protocols:
            self.listeners.update(pop3s=("implicit", free_port()), pop3=("starttls", free_port()))
        if "smtp" in protocols:
            self.listeners.update(submission=("starttls", free_port()),
                                  smtps=("implicit", free_port()))
        self.settings = {
            "log_level": "debug", "workers": 2, "login_timeout": "60s", "idle_timeout": "30m",
            "auth_cache_ttl": "10m", "auth_failure_delay": "100ms", "token_timeout": "3s",
            "tenant": TENANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "token_endpoint": idp.token_endpoint if idp else "https://127.0.0.1:1/{tenant}/t",
            "scope": SCOPE, "ca_file": certset.ca,
            "imap_server": f"localhost:{dovecot.imaps_port}" if dovecot else "localhost:993"}
        if dovecot and "pop3" in protocols:
            self.settings.update(pop3_server=f"localhost:{dovecot.pop3s_port}", pop3_tls="implicit")
        if dovecot and "smtp" in protocols:
            self.settings.update(smtp_server=f"localhost:{dovecot.submission_port}",
                                 smtp_tls="starttls")
        self.settings.update(settings)
        self.protocol_of = {}  # listeners added with add_listener
        self.proc = None
        self._log = None
        self.launcher = []  # a command that execs serve, e.g. setpriv as systemd's User= does

    def protocol(self, listener):
        return self.protocol_of.get(listener) or PROTOCOL_OF.get(listener, "imap")

    def add_listener(self, name, protocol, mode, *lines, host=None):
        """One more [listen NAME] (before start or a restart): tls = mode, more lines."""
        self.listeners[name] = (mode, free_port())
        self.protocol_of[name] = protocol
        self.settings.setdefault("listener_lines", {})[name] = list(lines)
        if host:
            self.settings.setdefault("listener_hosts", {})[name] = host

    def port(self, listener):
        return self.listeners[listener][1]

    # -- ports ----------------------------------------------------------------------------------
    @property
    def imaps_port(self):
        return self.listeners["imaps"][1]

    @property
    def imap_port(self):
        return self.listeners["imap"][1]

    # -- files and CLI --------------------------------------------------------------------------
    def write_config(self):
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.secret_file, "w") as f:
            f.write(self.settings["client_secret"] + "\n")
        give_to_gateway_user(self.secret_file)  # group or others: refused
        with open(self.config_path, "w") as f:
            f.write(render_config(self))
        return self.config_path

    def cli(self, *args, stdin=None, timeout=60, config=None):
        """Runs `mailgate -c CONF ARGS...`; returns CompletedProcess (text)."""
        result = subprocess.run([mailgate_bin(), "-c", config or self.config_path, *args],
                                input=stdin, capture_output=True, text=True, timeout=timeout,
                                env=child_env())
        self.cli_output = getattr(self, "cli_output", "") + result.stderr
        return result

    def add_user(self, name, password, mailbox=None, provider=None,
                 protocols=("imap", "pop3", "smtp")):
        """`user add` (password None: --no-password), then `user set` to switch on the protocols
        the tests use (a new user gets [defaults]: only IMAP on unless the config says
        otherwise)."""
        args = ["user", "add", name] + (["--password-stdin"] if password is not None
                                         else ["--no-password"])
        if mailbox:
            args += ["--mailbox", mailbox]
        if provider:
            args += ["--provider", provider]
        r = self.cli(*args, stdin=None if password is None else password + "\n")
        if r.returncode != 0:
            raise RuntimeError(f"user add {name} failed ({r.returncode}): {r.stderr}")
        if protocols is not None:
            self.set_protocols(name, protocols)
        return r

    def set_protocols(self, name, protocols):
        """Switches on exactly `protocols` of imap, pop3, smtp for user name."""
        switches = []
        for proto in ("imap", "pop3", "smtp"):
            switches += [f"--{proto}", "on" if proto in protocols else "off"]
        r = self.cli("user", "set", name, *switches)
        if r.returncode != 0:
            raise RuntimeError(f"user set {name} failed ({r.returncode}): {r.stderr}")
        return r

    # -- serve ----------------------------------------------------------------------------------
    def start(self, timeout=30):
        if not os.path.exists(self.config_path):
            self.write_config()
        self._log = open(self.log_path, "ab")
        binary = self.settings.get("binary") or mailgate_bin()
        self.proc = subprocess.Popen([*self.launcher, binary, "-c", self.config_path,
                                      "serve"],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     env=child_env(self.settings.get("asan_options", "")))
        try:
            wait_until(self._ready, timeout=timeout, interval=0.05, what="mailgate greeting")
        except (TimeoutError, RuntimeError) as e:
            self.stop()
            raise RuntimeError(f"mailgate did not start: {e}\n{self.log_text()[-4000:]}")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"mailgate exited with {self.proc.returncode}")
        for mode, port in self.listeners.values():
            if not port_accepts(port):
                return False
        # Every worker must be up. The broker binds the listeners, so one greeting per listener
        # proves only one worker; the others count as up once they have entered their sandbox
        # (seccomp is the last step of a worker's setup: certificates and the CA file are loaded
        # by then, so a measurement that starts now sees no worker still warming up).
        if not self.workers_sandboxed():
            return False
        return all(self.greeting(name).startswith((GREETING_PREFIX[self.protocol(name)],
                                                    REFUSAL_PREFIX[self.protocol(name)]))
                   for name in self.listeners)

    def workers_sandboxed(self):
        pids = self.worker_pids()
        if len(pids) != int(self.settings["workers"]):
            return False
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    if not re.search(r"^Seccomp:\s+2$", f.read(), re.M):
                        return False
            except OSError:
                return False
        return True

    def greeting(self, listener="imaps"):
        mode, port = self.listeners[listener]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            if mode == "implicit":
                with self.client_tls().wrap_socket(raw, server_hostname="localhost") as s:
                    return s.makefile("rb").readline().decode()
            return raw.makefile("rb").readline().decode()

    def client_tls(self):
        return ssl.create_default_context(cafile=self.certs.ca)

    def stop(self, timeout=15):
        status = stop_process(self.proc, timeout)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return status

    def restart(self, **settings):
        self.stop()
        self.settings.update(settings)
        self.write_config()
        return self.start()

    # -- observation ----------------------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_offset(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def wait_for_log(self, pattern, offset=0, timeout=10):
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log_since(offset)), timeout=timeout,
                          what=f"log line /{pattern}/")

    def sanitizer_findings(self):
        text = self.log_text() + getattr(self, "cli_output", "")
        return [line for line in text.splitlines()
                if any(marker in line for marker in SANITIZER_MARKERS)]

    def worker_pids(self):
        return child_pids(self.proc.pid) if self.proc else []

    def process_pids(self):
        return ([self.proc.pid] if self.proc else []) + self.worker_pids()

    def workers_rss_kib(self):
        """The workers' resident memory (VmRSS) together, in KiB."""
        total = 0
        for pid in self.worker_pids():
            with open(f"/proc/{pid}/status") as f:
                total += int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))
        return total


def login_lines(log_text):
    """Parsed `login ...` log lines: list of dicts of key=value (quoted values unquoted)."""
    out = []
    for line in log_text.splitlines():
        if " login " not in line or "result=" not in line:
            continue
        fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line.split(" login ", 1)[1]))
        out.append({k: v[1:-1] if v.startswith('"') else v for k, v in fields.items()})
    return out
