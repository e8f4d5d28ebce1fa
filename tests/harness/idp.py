#!/usr/bin/python3
"""A fake Microsoft Entra ID v2.0 and Google OAuth 2.0 for tests (one process, two ports).

Run as its own process, stopped by its PID:
    python3 tests/harness/idp.py --port P --intro-port Q --cert C --key K --config JSON|FILE
Modules: idp.py (servers, routing, control API), idp_entra.py (errors, client authentication,
access tokens, client credentials, introspection), idp_delegated.py (user flows),
idp_google.py (Google), idp_jwt.py (JWS helpers), idp_client.py (the tests' client).

HTTPS on --port, Entra ID (tenant = a key of "tenants"):
    POST /{tenant}/oauth2/v2.0/token       grant_type = client_credentials (secret or
                                           certificate assertion), password (ROPC),
                                           refresh_token, urn:ietf:params:oauth:grant-type:
                                           device_code (a poll), authorization_code (+ PKCE)
    POST /{tenant}/oauth2/v2.0/devicecode  client_id, scope [, client_secret] -> device_code,
                                           user_code (9 chars), verification_uri, expires_in,
                                           interval, message
    GET  /{tenant}/oauth2/v2.0/authorize   the sign-in page of the authorization code flow with
                                           PKCE (idp_authorize.py); POST: its form
    GET  /{tenant}/discovery/v2.0/keys     JWKS of the key that signs every access token
    GET  /{tenant}/v2.0/.well-known/openid-configuration
HTTPS on --port, Google:
    POST /google/token                     grant_type = urn:ietf:params:oauth:grant-type:
                                           jwt-bearer (service account, domain-wide
                                           delegation) or refresh_token (+ client_id/secret)
    POST /google/device/code               the Gmail scope -> 400 {"error": "invalid_scope"}
    GET  /google/oauth2/v3/certs           JWKS of the Google-side key
Control (HTTPS, from 127.0.0.1 only):
    GET  /_control/stats                   counters (token_requests, tokens_issued,
                                           token_errors, device_codes_issued, device_polls,
                                           slow_down_sent, device_codes_pending, refresh_grants,
                                           refresh_tokens_valid, password_grants,
                                           google_jwt_grants, google_refresh_grants,
                                           google_tokens_issued, introspect_requests, ...),
                                           last_introspect_headers, last_token_error,
                                           config (the current token_lifetime, rotate_refresh,
                                           device_code_lifetime, device_interval,
                                           force_slow_down)
    GET  /_control/refresh_tokens          {mailbox: number of valid Entra refresh tokens}
    GET  /_control/google_refresh_tokens   {mailbox: number of valid Google refresh tokens}
    GET  /_control/device_codes            [{user_code, client_id, status, interval, ...}]
    POST /_control/reset                   counters, faults, tokens, codes, config overrides
                                           back to start (the signing keys stay)
    POST /_control/fault                   {"status":500|503|429, "count":N|-1, "retry_after":S,
                                           "delay":SECONDS, "drop":true, "path_contains":TEXT}
                                           on every token-issuing POST (Entra token and
                                           devicecode, Google token and device code) whose
                                           path contains path_contains (default: all)
    POST /_control/config                  {"token_lifetime":S, "revoke_all":true,
                                           "revoke_app":CLIENT_ID, "secrets":{client_id:S},
                                           "grants":{client_id:[mailbox,...]},
                                           "certificates":{client_id:[PEM,...]},
                                           "redirect_uris":{client_id:[URI,...]},
                                           "auth_code_lifetime":S,
                                           "roles":{client_id:[ROLE,...]} (tokens issued
                                           from then on; issued ones keep theirs),
                                           "rotate_refresh":BOOL, "revoke_refresh":MAILBOX,
                                           "device_code_lifetime":S, "device_interval":S,
                                           "force_slow_down":N, "users":{mailbox:{...}} (merged)}
    POST /_control/tokens                  {"tokens": [every Entra access token (JWT) issued
                                           and not revoked], "google_tokens": [...]}
    POST /_control/device                  {"user_code":C, "action":"approve"|"deny",
                                           "user":MAILBOX}: what the user does in the browser;
                                           without user_code the newest pending code
    POST /_control/device_auto             {"user":MAILBOX, "action":..., "after":SECONDS}: the
                                           next device code issued is approved/denied that
                                           long after it was issued
    POST /_control/google_refresh          {"client_id", "mailbox"} -> {"refresh_token": ...}
Plain HTTP on --intro-port (for Dovecot's oauth2 passdb, introspection_mode = post):
    POST /introspect  token=...           RFC 7662 style answer

Config JSON: {"tenants": {"contoso.onmicrosoft.com": {"tid": UUID, "domain": "example.test"}},
              "apps": {CLIENT_ID: {"tenant": NAME, "secret": S, "name": S, "roles": [...],
                                   "mailboxes": [...], "certificates": [PEM, ...],
                                   "public_client": BOOL, "delegated_scopes": [...]}},
              "users": {MAILBOX: {"password": S, "mfa": BOOL, "disabled": BOOL}},
              "google": {"service_accounts": {CLIENT_EMAIL: {"certificate" or "public_key": PEM,
                                              "private_key_id": KID, "client_id": DIGITS,
                                              "mailboxes": [...], "scopes": [...]}},
                         "clients": {CLIENT_ID: {"secret": S}}},
              "token_lifetime": 3599, "rotate_refresh": true, "device_code_lifetime": 900,
              "device_interval": 5}

App-only tokens (client credentials). Exchange lets an app token open every mailbox the app was
granted FullAccess on, while Dovecot compares the SASL user with one "username" from
introspection (through username_format) and does not tell us the SASL user. So the answer's
username is "<app>@<domain of its grants>" and the harness configures Dovecot with
username_format = %Ld (domain only); which mailboxes the app may open is checked by a second
Dovecot passdb (a "grants" file, see dovecot.py). Revoking tokens or removing all of an app's
grants here makes introspection answer {"active": false}.

Access tokens are RS256 JWTs signed with a key made at start (kid = x5t in the header and in
the JWKS). App tokens carry roles; delegated tokens (device code, ROPC, refresh) carry
aud https://outlook.office.com, scp (e.g. "IMAP.AccessAsUser.All SMTP.Send"), upn =
unique_name = the mailbox, oid (stable per user), tid, appid and no roles. The token answer's
"scope" lists the granted scopes without the resource prefix; offline_access adds a
refresh_token. An app without "delegated_scopes" may get the three Exchange scopes; a scope
it may not have -> AADSTS65001. A public client runs user flows without a secret (and must not
send one: AADSTS700025); a confidential one without a secret -> 401 AADSTS7000218.

Delegated tokens in introspection: active only while the user exists and is enabled and scp
has the service's scope (imap IMAP.AccessAsUser.All, pop3 POP.AccessAsUser.All, submission
SMTP.Send); username = the upn, so username_format = %Ld passes and the grants passdb checks
the SASL user. Dovecot does not send the SASL user to introspection (send_auth_headers gives
service, local and remote address only), so this harness cannot refuse alice's token used
with user=bob; the gateway's own tests must check that it sends the token's user.

Device codes: a poll sooner than the code's interval after its previous poll (the first poll
is never too soon) or while force_slow_down > 0 -> slow_down and interval += 5. Order of
answers: unknown -> invalid_grant 70000, used -> 54005, expired -> expired_token 70020,
too fast -> slow_down, denied -> authorization_declined, pending -> authorization_pending
70016, approved -> tokens (the code is used up). Refresh tokens: each use returns a new one;
with rotate_refresh the old one then fails (70000); revoke_refresh -> 50173. ROPC: wrong
password 50126, unknown user 50034, disabled 50057, mfa 50076 (suberror basic_action).

Google: the JWT bearer assertion must be RS256 by a configured service account (kid =
private_key_id), aud = the URL it was posted to, exp - iat <= 3600, scope within the SA's
scopes, sub one of its mailboxes (unknown sub -> "Invalid email or User ID"; known but not
delegated -> unauthorized_client). Access tokens are opaque "ya29." strings; introspection
answers username = the mailbox, active when the scope has https://mail.google.com/. Refresh
tokens are never rotated; revoke_refresh revokes Google's too.

Certificate credentials: a request with client_assertion_type = ...:jwt-bearer and a signed
client_assertion (RS256 or PS256) is checked like Entra ID does: x5t#S256 (else x5t) names one of
the app's "certificates" (else AADSTS700027), the signature verifies with that certificate's key
(else AADSTS700027), aud is the token endpoint, iss = sub = the client id (AADSTS700021),
nbf/exp hold now (AADSTS700024) and the jti was not seen before.
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if __package__:  # imported as harness.idp
    from . import idp_authorize as authorize
    from . import idp_delegated as delegated, idp_entra as entra, idp_google as google
    from .idp_client import IdpClient  # noqa: F401  (re-exported for older imports)
    from .idp_jwt import SigningKey
else:  # run as a script: tests/harness is sys.path[0]
    import idp_authorize as authorize
    import idp_delegated as delegated
    import idp_entra as entra
    import idp_google as google
    from idp_jwt import SigningKey

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# grant_type -> (handler, stats counter)
ENTRA_GRANTS = {"client_credentials": (entra.client_credentials, None),
                "password": (delegated.password_grant, "password_grants"),
                "refresh_token": (delegated.refresh_grant, "refresh_grants"),
                "authorization_code": (authorize.authorization_code_grant, "code_grants"),
                DEVICE_GRANT: (delegated.device_code_grant, None)}


class State:
    """Everything the endpoints share; one lock guards it."""

    def __init__(self, config):
        self.lock = threading.Lock()
        self.initial = json.loads(json.dumps(config))
        self.signing_key = SigningKey("fake Entra ID token signing")
        self.google_key = SigningKey("fake Google token signing")
        self.reset()

    def reset(self):
        cfg = json.loads(json.dumps(self.initial))
        self.tenants = cfg.get("tenants", {})
        self.apps = cfg.get("apps", {})
        self.users = {m.lower(): u for m, u in cfg.get("users", {}).items()}
        self.google = cfg.get("google", {})
        self.token_lifetime = int(cfg.get("token_lifetime", 3599))
        self.rotate_refresh = bool(cfg.get("rotate_refresh", True))
        self.device_code_lifetime = float(cfg.get("device_code_lifetime", 900))
        self.device_interval = int(cfg.get("device_interval", 5))
        self.force_slow_down = 0
        self.tokens = {}  # access token -> {"kind", "claims", "app_id", ...}
        self.refresh_tokens = {}  # Entra refresh token -> entry (idp_delegated)
        self.google_refresh = {}  # Google refresh token -> entry (idp_google)
        self.device_codes = {}  # device_code -> entry (idp_delegated)
        self.device_auto = None
        self.auth_code_lifetime = float(cfg.get("auth_code_lifetime", 600))
        self.authorize_requests = {}  # the sign-in page's pending requests (idp_authorize)
        self.auth_codes = {}  # authorization code -> entry (idp_authorize)
        self.seen_jti = set()  # client assertion ids (replay check)
        self.fault = None
        self.stats = {"token_requests": 0, "tokens_issued": 0, "token_errors": 0,
                      "token_faults": 0, "introspect_requests": 0, "introspect_active": 0,
                      "control_requests": 0, "device_codes_issued": 0, "device_polls": 0,
                      "slow_down_sent": 0, "refresh_grants": 0, "password_grants": 0,
                      "google_jwt_grants": 0, "google_refresh_grants": 0,
                      "google_tokens_issued": 0, "code_grants": 0, "auth_codes_issued": 0,
                      "last_authorize": None, "per_endpoint": {},
                      "last_introspect_headers": {}, "last_token_error": None}

    def count(self, key, amount=1):
        self.stats[key] = self.stats.get(key, 0) + amount

    def count_endpoint(self, path):
        per = self.stats["per_endpoint"]
        per[path] = per.get(path, 0) + 1

    def snapshot_stats(self):
        stats = json.loads(json.dumps(self.stats))
        stats["device_codes_pending"] = len(delegated.pending_device_codes(self))
        stats["refresh_tokens_valid"] = sum(delegated.valid_refresh_counts(self).values())
        stats["config"] = {key: getattr(self, key) for key in self.TUNABLES}
        return stats

    def take_fault(self, path):
        """The fault to apply to this token request, if any (and counts it down)."""
        f = self.fault
        if not f or f.get("path_contains", "") not in path:
            return None
        if f.get("count", -1) == 0:
            self.fault = None
            return None
        if f.get("count", -1) > 0:
            f["count"] -= 1
        return dict(f)

    # /_control/config settings: name -> type (their current values are in stats["config"])
    TUNABLES = {"token_lifetime": int, "rotate_refresh": bool, "device_code_lifetime": float,
                "device_interval": int, "force_slow_down": int, "auth_code_lifetime": float}

    def apply_config(self, args):
        """POST /_control/config."""
        for key, kind in self.TUNABLES.items():
            if key in args:
                setattr(self, key, kind(args[key]))
        if args.get("revoke_all"):
            self.tokens.clear()
        if args.get("revoke_app"):  # one app's tokens only
            self.tokens = {t: e for t, e in self.tokens.items()
                           if e["app_id"] != args["revoke_app"]}
        if args.get("revoke_refresh"):
            delegated.revoke_refresh(self, args["revoke_refresh"])
            google.revoke_refresh(self, args["revoke_refresh"])
        for mailbox, changes in args.get("users", {}).items():
            self.users.setdefault(mailbox.lower(), {}).update(changes)
        for field, key in (("grants", "mailboxes"), ("secrets", "secret"),
                           ("certificates", "certificates"), ("roles", "roles"),
                           ("redirect_uris", "redirect_uris")):
            for app_id, value in args.get(field, {}).items():
                self.apps[app_id][key] = list(value) if isinstance(value, list) else value


def entra_token(state, tenant_name, form, audience):
    """POST /{tenant}/oauth2/v2.0/token: (status, body)."""
    if tenant_name not in state.tenants:
        return entra.find_app(state, tenant_name, form)[2]
    grant = form.get("grant_type")
    if not grant:
        return entra.missing_parameter("grant_type")
    if grant not in ENTRA_GRANTS:
        return entra.aad_error(400, "unsupported_grant_type", 70003,
                               f"The app requested an unsupported grant type '{grant}'.")
    handler, counter = ENTRA_GRANTS[grant]
    if counter:
        state.count(counter)
    return handler(state, tenant_name, form, audience)


def introspect(state, token, service):
    entry = state.tokens.get(token)
    if entry is None or entry["claims"]["exp"] <= time.time():
        return {"active": False}
    if entry["kind"] == "google":
        return google.introspect(entry)
    return entra.introspect(state, entry, service)


def openid_configuration(base, tenant_name, tid):
    root = f"{base}/{tenant_name}"
    return {"issuer": f"https://login.microsoftonline.com/{tid}/v2.0",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "grant_types_supported": list(ENTRA_GRANTS),
            "id_token_signing_alg_values_supported": ["RS256"]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-entra-id/1.0"

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("idp: " + (fmt % args) + "\n")

    @property
    def state(self):
        return self.server.state

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def send_json(self, status, body, extra_headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store, no-cache")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def local_client(self):
        return self.client_address[0] == "127.0.0.1"

    def base_url(self):
        return f"https://{self.headers.get('Host', '')}"

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if not self.server.control:
            return self.send_json(404, {"error": "not_found"})
        if path.startswith("/_control/"):
            return self.control_get(path[len("/_control/"):])
        if path == "/google/oauth2/v3/certs":
            return self.send_json(200, {"keys": [self.state.google_key.jwk(alg="RS256")]})
        parts = path.strip("/").split("/")
        tenant = self.state.tenants.get(parts[0])
        if tenant and parts[1:] == ["discovery", "v2.0", "keys"]:
            issuer = f"https://login.microsoftonline.com/{tenant['tid']}/v2.0"
            return self.send_json(200, {"keys": [self.state.signing_key.jwk(issuer=issuer)]})
        if tenant and parts[1:] == ["oauth2", "v2.0", "authorize"]:
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            return self.authorize_page(parts[0], {k: v[0] for k, v in query.items()}, False)
        if tenant and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return self.send_json(200, openid_configuration(self.base_url(), parts[0],
                                                            tenant["tid"]))
        self.send_json(404, {"error": "not_found"})

    def control_get(self, command):
        if not self.local_client():
            return self.send_json(403, {"error": "forbidden"})
        with self.state.lock:
            st = self.state
            st.count("control_requests")
            if command == "stats":
                answer = st.snapshot_stats()
            elif command == "refresh_tokens":
                answer = delegated.valid_refresh_counts(st)
            elif command == "google_refresh_tokens":
                answer = google.valid_refresh_counts(st)
            elif command == "device_codes":
                answer = [{"user_code": c["user_code"], "client_id": c["app_id"],
                           "status": c["status"], "interval": c["interval"],
                           "user": c["user"], "scopes": c["scopes"],
                           "expires_in": round(c["expires"] - time.time(), 1)}
                          for c in st.device_codes.values()]
            else:
                return self.send_json(404, {"error": "unknown control command"})
        self.send_json(200, answer)

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.send_json(413, {"error": "request_too_large"})
        if self.server.control and path.startswith("/_control/"):
            return self.control(path[len("/_control/"):], body)
        if not self.server.control and path == "/introspect":
            return self.introspect(body)
        parts = path.strip("/").split("/")
        if self.server.control and len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"] \
                and parts[3] in ("token", "devicecode"):
            return self.token(path, body, parts[0], parts[3])
        if self.server.control and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "authorize"]:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            return self.authorize_page(parts[0], {k: v[0] for k, v in form.items()}, True)
        if self.server.control and path in ("/google/token", "/google/device/code"):
            return self.token(path, body, None, path)
        self.send_json(404, {"error": "not_found"})

    def authorize_page(self, tenant_name, params, posted):
        """The sign-in page (idp_authorize): HTML or a redirect."""
        with self.state.lock:
            handler = authorize.authorize_post if posted else authorize.authorize_get
            status, headers, page = handler(self.state, tenant_name, params)
        data = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def apply_fault(self, fault):
        """Sends the injected failure; False when the fault only delays the request."""
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("drop"):
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if not fault.get("status"):
            return False
        headers = []
        if fault.get("retry_after") is not None:
            headers.append(("Retry-After", str(fault["retry_after"])))
        status = int(fault["status"])
        err = "temporarily_unavailable" if status != 429 else "throttled"
        self.send_json(status, entra.aad_error(status, err, 90033 if status != 429 else 50196,
                                               "Injected fault.")[1], headers)
        return True

    def token(self, path, body, tenant_name, endpoint):
        """Every token-issuing endpoint: counting, faults, then the endpoint's logic."""
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                          keep_blank_values=True).items()}
        with self.state.lock:
            self.state.count("token_requests")
            self.state.count_endpoint(self.path)
            fault = self.state.take_fault(path)
            if fault:
                self.state.count("token_faults")
        if fault and self.apply_fault(fault):
            return
        with self.state.lock:
            status, answer = self.dispatch(path, form, tenant_name, endpoint)
            if "access_token" in answer:
                self.state.count("tokens_issued")
            elif status != 200:
                self.state.count("token_errors")
                self.state.stats["last_token_error"] = answer["error"]
        self.send_json(status, answer)

    def dispatch(self, path, form, tenant_name, endpoint):
        st, audience = self.state, self.base_url() + path
        if endpoint == "token":
            return entra_token(st, tenant_name, form, audience)
        if endpoint == "devicecode":
            return delegated.device_code_request(st, tenant_name, form, audience)
        if endpoint == "/google/device/code":
            return google.device_code(st, form)
        port = self.server.server_address[1]
        audiences = [audience] + [f"https://{h}:{port}{path}" for h in ("127.0.0.1", "localhost")]
        return google.token(st, form, audiences)

    CONTROL_POSTS = {"device": delegated.control_device,
                     "device_auto": delegated.control_device_auto,
                     "google_refresh": google.control_refresh}

    def control(self, command, body):
        if not self.local_client():
            return self.send_json(403, {"error": "forbidden"})
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "bad json"})
        with self.state.lock:
            st = self.state
            st.count("control_requests")
            if command in self.CONTROL_POSTS:
                status, answer = self.CONTROL_POSTS[command](st, args)
                return self.send_json(status, answer)
            if command == "reset":
                st.reset()
            elif command == "fault":
                st.fault = args if args else None
            elif command == "tokens":  # every access token issued and not revoked (tests)
                kinds = {t: e["kind"] for t, e in st.tokens.items()}
                return self.send_json(200, {
                    "tokens": [t for t, k in kinds.items() if k != "google"],
                    "google_tokens": [t for t, k in kinds.items() if k == "google"]})
            elif command == "config":
                st.apply_config(args)
            else:
                return self.send_json(404, {"error": "unknown control command"})
        self.send_json(200, {"ok": True})

    def introspect(self, body):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        auth_headers = {k: v for k, v in self.headers.items()
                        if k.lower().startswith("x-dovecot-auth")}
        with self.state.lock:
            self.state.count("introspect_requests")
            self.state.count_endpoint("/introspect")
            self.state.stats["last_introspect_headers"] = auth_headers
            answer = introspect(self.state, token, auth_headers.get("X-Dovecot-Auth-Service"))
            if answer["active"]:
                self.state.count("introspect_active")
        self.send_json(200, answer)


class TlsThreadingServer(ThreadingHTTPServer):
    """TLS handshake in the request thread, so a silent client cannot block accept()."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, ssl_ctx=None, control=True, verbose=False):
        super().__init__(addr, Handler)
        self.state, self.ssl_ctx, self.control, self.verbose = state, ssl_ctx, control, verbose

    def finish_request(self, request, client_address):
        request.settimeout(30)
        if self.ssl_ctx is not None:
            try:
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def load_config(text):
    if text.lstrip().startswith("{"):
        return json.loads(text)
    with open(text) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--intro-port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--config", required=True, help="JSON text or a JSON file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    state = State(load_config(args.config))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    https = TlsThreadingServer(("127.0.0.1", args.port), state, ctx, True, args.verbose)
    plain = TlsThreadingServer(("127.0.0.1", args.intro_port), state, None, False, args.verbose)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    print(f"idp: listening on https://127.0.0.1:{args.port} and "
          f"http://127.0.0.1:{args.intro_port}", file=sys.stderr, flush=True)
    try:
        https.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
