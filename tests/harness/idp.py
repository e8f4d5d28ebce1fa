#!/usr/bin/python3
"""A fake Microsoft Entra ID v2.0 token endpoint (client credentials) for tests.

Run as its own process, stopped by its PID:
    python3 tests/harness/idp.py --port P --intro-port Q --cert C --key K --config JSON|FILE

HTTPS on --port:
    POST /{tenant}/oauth2/v2.0/token      client credentials grant (form body)
    GET  /_control/stats                  request counters, last introspection headers
    POST /_control/reset                  counters, faults and config overrides back to start
    POST /_control/fault                  {"status":500|503|429, "count":N|-1, "retry_after":S,
                                           "delay":SECONDS, "drop":true}
    POST /_control/config                 {"token_lifetime":S, "revoke_all":true,
                                           "revoke_app":CLIENT_ID, "secrets":{client_id:S},
                                           "grants":{client_id:[mailbox,...]},
                                           "certificates":{client_id:[PEM,...]}}
Plain HTTP on --intro-port (for Dovecot's oauth2 passdb, introspection_mode = post):
    POST /introspect  token=...           RFC 7662 style answer

Config JSON: {"tenants": {"contoso.onmicrosoft.com": {"tid": UUID, "domain": "example.test"}},
              "apps": {CLIENT_ID: {"tenant": NAME, "secret": S, "name": S, "roles": [...],
                                   "mailboxes": [...], "certificates": [PEM, ...]}},
              "token_lifetime": 3599}

Exchange lets an app token open every mailbox the app was granted FullAccess on, while Dovecot
compares the SASL user with one "username" from introspection (through username_format) and does
not tell us the SASL user. So the answer's username is "<app>@<domain of its grants>" and the
harness configures Dovecot with username_format = %Ld (domain only); which mailboxes the app may
open is checked by a second Dovecot passdb (a "grants" file, see dovecot.py). Revoking tokens or
removing all of an app's grants here makes introspection answer {"active": false}.

Certificate credentials: a request with client_assertion_type = ...:jwt-bearer and a signed
client_assertion (RS256 or PS256) is checked like Entra ID does: x5t#S256 (else x5t) names one of
the app's "certificates" (else AADSTS700027), the signature verifies with that certificate's key
(the openssl CLI does the RSA; else AADSTS700027), aud is the token endpoint, iss = sub = the
client id (AADSTS700021), nbf/exp hold now (AADSTS700024) and the jti was not seen before.
"""
import argparse
import base64
import datetime
import functools
import hashlib
import json
import math
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_SCOPES = ("https://outlook.office365.com/.default", "https://ps.outlook.com/.default",
               "https://outlook.office.com/.default")
SERVICE_ROLES = {"imap": "IMAP.AccessAsApp", "pop3": "POP.AccessAsApp",
                 "submission": "SMTP.SendAsApp"}
DEFAULT_ROLES = ["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def utc_now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


class State:
    """Everything the endpoints share; one lock guards it."""

    def __init__(self, config):
        self.lock = threading.Lock()
        self.initial = json.loads(json.dumps(config))
        self.reset()

    def reset(self):
        cfg = json.loads(json.dumps(self.initial))
        self.tenants = cfg.get("tenants", {})
        self.apps = cfg.get("apps", {})
        self.token_lifetime = int(cfg.get("token_lifetime", 3599))
        self.tokens = {}  # access token -> claims
        self.seen_jti = set()  # client assertion ids (replay check)
        self.fault = None
        self.stats = {"token_requests": 0, "tokens_issued": 0, "token_errors": 0,
                      "token_faults": 0, "introspect_requests": 0, "introspect_active": 0,
                      "control_requests": 0, "per_endpoint": {},
                      "last_introspect_headers": {}, "last_token_error": None}

    def count(self, key, amount=1):
        self.stats[key] = self.stats.get(key, 0) + amount

    def count_endpoint(self, path):
        per = self.stats["per_endpoint"]
        per[path] = per.get(path, 0) + 1

    def take_fault(self):
        """The fault to apply to this token request, if any (and counts it down)."""
        f = self.fault
        if not f:
            return None
        if f.get("count", -1) == 0:
            self.fault = None
            return None
        if f.get("count", -1) > 0:
            f["count"] -= 1
        return dict(f)


def make_token(state, app_id, app, tenant_name):
    tenant = state.tenants[tenant_name]
    tid = tenant["tid"]
    now = int(time.time())
    lifetime = state.token_lifetime
    header = {"typ": "JWT", "nonce": b64url(secrets.token_bytes(32)), "alg": "RS256",
              "x5t": b64url(secrets.token_bytes(20)), "kid": b64url(secrets.token_bytes(20))}
    claims = {"aud": "https://outlook.office.com", "iss": f"https://sts.windows.net/{tid}/",
              # rounded up: a token must not expire before the expires_in it is sold with
              "iat": now, "nbf": now, "exp": math.ceil(time.time() + lifetime),
              "aio": b64url(secrets.token_bytes(48)),
              "app_displayname": app.get("name", "mailgate test app"), "appid": app_id,
              "appidacr": "1", "idp": f"https://sts.windows.net/{tid}/",
              "oid": str(uuid.uuid4()), "rh": "0." + b64url(secrets.token_bytes(40)) + ".",
              "roles": app.get("roles", DEFAULT_ROLES), "sid": str(uuid.uuid4()),
              "sub": str(uuid.uuid4()), "tid": tid, "uti": b64url(secrets.token_bytes(16)),
              "ver": "1.0", "wids": ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
              "xms_tcdt": now - 86400 * 400}
    token = ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()),
                      b64url(secrets.token_bytes(256))])
    state.tokens[token] = {"claims": claims, "tenant": tenant_name, "app_id": app_id}
    return token, lifetime


def aad_error(status, error, code, description):
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = utc_now_text()
    body = {"error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {corr}\r\nTimestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": trace,
            "correlation_id": corr}
    if code == 7000215:
        body["error_uri"] = "https://login.microsoftonline.com/error?code=7000215"
    return status, body


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds of nbf/exp leeway, as Entra allows


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=64)
def cert_info(pem):
    """{"x5t", "x5t#S256", "pubkey"} of a registered PEM certificate."""
    der = ssl.PEM_cert_to_DER_cert(pem)
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem.encode(),
                         capture_output=True, check=True).stdout.decode()
    return {"x5t": b64url(hashlib.sha1(der).digest()),
            "x5t#S256": b64url(hashlib.sha256(der).digest()), "pubkey": pub}


def rsa_verify(pubkey_pem, alg, signing_input, signature):
    """True when signature (RS256 or PS256, PSS salt = digest length) verifies."""
    with tempfile.TemporaryDirectory(prefix="idp-jws-") as d:
        files = {"pub.pem": pubkey_pem.encode(), "input": signing_input, "sig": signature}
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        cmd = ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig"]
        if alg == "PS256":
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
        r = subprocess.run(cmd + ["input"], cwd=d, capture_output=True)
        return r.returncode == 0


def check_client_assertion(state, app_id, app, form, audience):
    """None when the client assertion is good, else an aad_error (status, body)."""
    def bad(code, text, status=401):
        return aad_error(status, "invalid_client", code, text)

    if form.get("client_assertion_type") != JWT_BEARER:
        return aad_error(400, "invalid_request", 700023,
                         "Invalid client_assertion_type: expected " + JWT_BEARER)
    try:
        h64, c64, s64 = form.get("client_assertion", "").split(".")
        header, claims = json.loads(b64url_decode(h64)), json.loads(b64url_decode(c64))
        signature = b64url_decode(s64)
    except (ValueError, TypeError):
        return bad(50027, "JWT token is invalid or is malformed.", 400)
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return bad(50027, "JWT token is invalid or is malformed.", 400)
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        return bad(5002738, f"Invalid JWT token. '{alg}' is not a supported signature algorithm.")
    registered = [cert_info(pem) for pem in app.get("certificates", [])]
    if header.get("x5t#S256"):
        match = [c for c in registered if c["x5t#S256"] == header["x5t#S256"]]
        used = header["x5t#S256"]
    else:
        match = [c for c in registered if c["x5t"] == header.get("x5t")]
        used = header.get("x5t")
    if not match:
        return bad(700027, f"The certificate with identifier used to sign the client assertion "
                           f"is not registered on application. [Reason - The key was not found., "
                           f"Thumbprint of key used by client: '{used}', Please visit the Azure "
                           f"Portal, Graph Explorer or directly use MS Graph to see configured "
                           f"keys for app Id '{app_id}'.]")
    if not rsa_verify(match[0]["pubkey"], alg, f"{h64}.{c64}".encode(), signature):
        return bad(700027, "Client assertion failed signature validation.")
    if claims.get("iss") != app_id or claims.get("sub") != app_id:
        return bad(700021, "Client assertion application identifier doesn't match 'client_id' "
                           "parameter.")
    if claims.get("aud") != audience:
        return bad(50027, f"Invalid JWT token. Audience '{claims.get('aud')}' is not the token "
                          f"endpoint '{audience}'.", 400)
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, int) or not isinstance(nbf, int):
        return bad(50027, "JWT token is invalid or is malformed (exp/nbf).", 400)
    if exp + CLOCK_SKEW < now or nbf - CLOCK_SKEW > now:
        return bad(700024, f"Client assertion is not within its valid time range. Current time: "
                           f"{utc_now_text()}, assertion valid from {nbf}, expiry time of "
                           f"assertion {exp}.")
    jti = claims.get("jti")
    if not jti or not isinstance(jti, str) or jti in state.seen_jti:
        return bad(50027, "Invalid JWT token. The jti was already used (replay)."
                   if jti else "Invalid JWT token. No jti.", 400)
    state.seen_jti.add(jti)
    state.count("assertions_accepted")
    state.stats["last_assertion_alg"] = alg
    return None


def check_token_request(state, tenant_name, form, audience=None):
    """Returns (status, body) for a client credentials request: a token or an AADSTS error."""
    if tenant_name not in state.tenants:
        return aad_error(400, "invalid_request", 90002,
                         f"Tenant '{tenant_name}' not found. Check to make sure you have the "
                         "correct tenant ID and are signing into the correct cloud.")
    for field in ("grant_type", "client_id"):
        if not form.get(field):
            return aad_error(400, "invalid_request", 900144,
                             f"The request body must contain the following parameter: "
                             f"'{field}'.")
    if form["grant_type"] != "client_credentials":
        return aad_error(400, "unsupported_grant_type", 70003,
                         "The app requested an unsupported grant type "
                         f"'{form['grant_type']}'.")
    app_id = form["client_id"]
    app = state.apps.get(app_id)
    if app is None or app.get("tenant") != tenant_name:
        return aad_error(400, "unauthorized_client", 700016,
                         f"Application with identifier '{app_id}' was not found in the "
                         f"directory '{tenant_name}'. This can happen if the application has "
                         "not been installed by the administrator of the tenant or consented "
                         "to by any user in the tenant. You may have sent your authentication "
                         "request to the wrong tenant.")
    if "client_assertion" in form or "client_assertion_type" in form:
        problem = check_client_assertion(state, app_id, app, form, audience)
        if problem:
            return problem
    elif not secrets.compare_digest(form.get("client_secret", ""), app.get("secret", "")):
        return aad_error(401, "invalid_client", 7000215,
                         "Invalid client secret provided. Ensure the secret being sent in the "
                         "request is the client secret value, not the client secret ID, for a "
                         f"secret added to app '{app_id}'.")
    scope = form.get("scope", "")
    if not scope:
        return aad_error(400, "invalid_scope", 70011,
                         "The provided request must include a 'scope' input parameter.")
    if scope not in GOOD_SCOPES:
        return aad_error(400, "invalid_scope", 70011,
                         f"The provided value for the input parameter 'scope' is not valid. "
                         f"The scope {scope} is not valid.")
    token, lifetime = make_token(state, app_id, app, tenant_name)
    return 200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                 "access_token": token}


def introspect(state, token, service):
    entry = state.tokens.get(token)
    if entry is None or entry["claims"]["exp"] <= time.time():
        return {"active": False}
    claims = entry["claims"]
    app = state.apps.get(entry["app_id"])
    role = SERVICE_ROLES.get(service or "imap")
    if app is None or (role and role not in claims["roles"]):
        return {"active": False}
    mailboxes = app.get("mailboxes", [])
    if not mailboxes:
        return {"active": False}
    domain = mailboxes[0].rpartition("@")[2]
    return {"active": True, "username": f"{entry['app_id']}@{domain}",
            "client_id": entry["app_id"], "token_type": "Bearer", "scope": "",
            "aud": claims["aud"], "iss": claims["iss"], "exp": claims["exp"],
            "iat": claims["iat"], "tid": claims["tid"], "roles": " ".join(claims["roles"]),
            "grants": " ".join(mailboxes)}


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

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/_control/stats" and self.server.control:
            if not self.local_client():
                return self.send_json(403, {"error": "forbidden"})
            with self.state.lock:
                self.state.count("control_requests")
                return self.send_json(200, json.loads(json.dumps(self.state.stats)))
        self.send_json(404, {"error": "not_found"})

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
        if (self.server.control and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]):
            return self.token(parts[0], body)
        self.send_json(404, {"error": "not_found"})

    def local_client(self):
        return self.client_address[0] == "127.0.0.1"

    def token(self, tenant_name, body):
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                          keep_blank_values=True).items()}
        with self.state.lock:
            self.state.count("token_requests")
            self.state.count_endpoint(self.path)
            fault = self.state.take_fault()
            if fault:
                self.state.count("token_faults")
        if fault:
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault.get("drop"):
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault.get("status"):
                headers = []
                if fault.get("retry_after") is not None:
                    headers.append(("Retry-After", str(fault["retry_after"])))
                status = int(fault["status"])
                err = "temporarily_unavailable" if status != 429 else "throttled"
                return self.send_json(status, aad_error(status, err, 90033 if status != 429
                                                        else 50196, "Injected fault.")[1],
                                      headers)
        with self.state.lock:
            audience = f"https://{self.headers.get('Host', '')}{self.path}"
            status, answer = check_token_request(self.state, tenant_name, form, audience)
            if status == 200:
                self.state.count("tokens_issued")
            else:
                self.state.count("token_errors")
                self.state.stats["last_token_error"] = answer["error"]
        self.send_json(status, answer)

    def control(self, command, body):
        if not self.local_client():
            return self.send_json(403, {"error": "forbidden"})
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "bad json"})
        with self.state.lock:
            st = self.state
            if command == "reset":
                st.reset()
            elif command == "fault":
                st.fault = args if args else None
            elif command == "tokens":  # every access token issued and not revoked (tests)
                st.count("control_requests")
                issued = list(st.tokens)
                return self.send_json(200, {"tokens": issued})
            elif command == "config":
                if "token_lifetime" in args:
                    st.token_lifetime = int(args["token_lifetime"])
                if args.get("revoke_all"):
                    st.tokens.clear()
                if args.get("revoke_app"):  # one app's tokens only
                    st.tokens = {t: e for t, e in st.tokens.items()
                                 if e["app_id"] != args["revoke_app"]}
                for app_id, mailboxes in args.get("grants", {}).items():
                    st.apps[app_id]["mailboxes"] = list(mailboxes)
                for app_id, secret in args.get("secrets", {}).items():
                    st.apps[app_id]["secret"] = secret
                for app_id, pems in args.get("certificates", {}).items():
                    st.apps[app_id]["certificates"] = list(pems)
            else:
                return self.send_json(404, {"error": "unknown control command"})
            st.count("control_requests")
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


# ---- client side, for tests -------------------------------------------------------------------

class IdpClient:
    """Talks to a running fake IdP: control API and (for direct upstream logins) the token
    endpoint."""

    def __init__(self, port, intro_port, ca_file):
        self.port, self.intro_port = port, intro_port
        self.base = f"https://127.0.0.1:{port}"
        self.ctx = ssl.create_default_context(cafile=ca_file)

    def _request(self, path, body=None, form=False, timeout=10):
        data = None
        headers = {}
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers,
                                     method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def stats(self):
        return self._request("/_control/stats")[1]

    def reset(self):
        return self._request("/_control/reset", {})[1]

    def fault(self, **spec):
        """fault(status=503, count=-1, retry_after=5, delay=2.0, drop=True); fault() clears."""
        return self._request("/_control/fault", spec)[1]

    def config(self, **changes):
        return self._request("/_control/config", changes)[1]

    def issued_tokens(self):
        """Every access token the IdP has issued (and not revoked) since its last reset."""
        return self._request("/_control/tokens", {})[1]["tokens"]

    def token_request(self, tenant, client_id, client_secret, scope=GOOD_SCOPES[0],
                      grant_type="client_credentials"):
        return self._request(f"/{tenant}/oauth2/v2.0/token",
                             {"grant_type": grant_type, "client_id": client_id,
                              "client_secret": client_secret, "scope": scope}, form=True)

    def token(self, tenant, client_id, client_secret):
        status, body = self.token_request(tenant, client_id, client_secret)
        if status != 200:
            raise RuntimeError(f"token request failed: {status} {body.get('error')}")
        return body["access_token"]

    def introspect(self, token, service="imap"):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.intro_port}/introspect",
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"X-Dovecot-Auth-Service": service})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
