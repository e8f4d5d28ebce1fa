"""Fake Entra ID: errors, client authentication, access tokens, the client credentials grant
and introspection (see idp.py for the whole API). The user grants are in idp_delegated.py."""
import datetime
import math
import secrets
import time
import uuid

if __package__:  # imported as harness.idp_entra
    from . import idp_jwt as jws
else:  # run from idp.py as a script: tests/harness is on sys.path
    import idp_jwt as jws

GOOD_SCOPES = ("https://outlook.office365.com/.default", "https://ps.outlook.com/.default",
               "https://outlook.office.com/.default")
SERVICE_ROLES = {"imap": "IMAP.AccessAsApp", "pop3": "POP.AccessAsApp",
                 "submission": "SMTP.SendAsApp"}
SERVICE_SCOPES = {"imap": "IMAP.AccessAsUser.All", "pop3": "POP.AccessAsUser.All",
                  "submission": "SMTP.Send"}
DEFAULT_ROLES = ["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"]
EXCHANGE_AUDIENCE = "https://outlook.office.com"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds of nbf/exp leeway, as Entra allows


def utc_now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def aad_error(status, error, code, description, **extra):
    """(status, body) of an Entra ID error answer; extra fields (suberror) are added."""
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = utc_now_text()
    body = {"error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {corr}\r\nTimestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": trace,
            "correlation_id": corr, **extra}
    if code == 7000215:
        body["error_uri"] = "https://login.microsoftonline.com/error?code=7000215"
    return status, body


def missing_parameter(field):
    return aad_error(400, "invalid_request", 900144,
                     f"The request body must contain the following parameter: '{field}'.")


def invalid_grant(code, description, **extra):
    return aad_error(400, "invalid_grant", code, description, **extra)


# -- client authentication ----------------------------------------------------------------------

def check_client_assertion(state, app_id, app, form, audience):
    """None when the client assertion is good, else an aad_error (status, body)."""
    def bad(code, text, status=401):
        return aad_error(status, "invalid_client", code, text)

    if form.get("client_assertion_type") != JWT_BEARER:
        return aad_error(400, "invalid_request", 700023,
                         "Invalid client_assertion_type: expected " + JWT_BEARER)
    try:
        header, claims, signing_input, signature = jws.split_jws(form.get("client_assertion", ""))
    except ValueError:
        return bad(50027, "JWT token is invalid or is malformed.", 400)
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        return bad(5002738, f"Invalid JWT token. '{alg}' is not a supported signature algorithm.")
    pems = app.get("certificates", [])
    key_name = "x5t#S256" if header.get("x5t#S256") else "x5t"
    used = header.get(key_name)
    match = [pem for pem in pems if jws.cert_thumbprints(pem)[key_name] == used]
    if not match:
        return bad(700027, f"The certificate with identifier used to sign the client assertion "
                           f"is not registered on application. [Reason - The key was not found., "
                           f"Thumbprint of key used by client: '{used}', Please visit the Azure "
                           f"Portal, Graph Explorer or directly use MS Graph to see configured "
                           f"keys for app Id '{app_id}'.]")
    if not jws.rsa_verify(jws.public_key_of(match[0]), alg, signing_input, signature):
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


def find_app(state, tenant_name, form):
    """(app_id, app, None) or (None, None, error) for the tenant and client_id of a request."""
    if tenant_name not in state.tenants:
        return None, None, aad_error(
            400, "invalid_request", 90002,
            f"Tenant '{tenant_name}' not found. Check to make sure you have the correct tenant "
            "ID and are signing into the correct cloud.")
    app_id = form.get("client_id")
    if not app_id:
        return None, None, missing_parameter("client_id")
    app = state.apps.get(app_id)
    if app is None or app.get("tenant") != tenant_name:
        return None, None, aad_error(
            400, "unauthorized_client", 700016,
            f"Application with identifier '{app_id}' was not found in the directory "
            f"'{tenant_name}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may have "
            "sent your authentication request to the wrong tenant.")
    return app_id, app, None


def authenticate_client(state, tenant_name, form, audience, user_flow):
    """(app_id, app, None) or (None, None, error). A public client ("public_client": true) may
    run user flows (device code, ROPC, refresh) without credentials and must not send any."""
    app_id, app, problem = find_app(state, tenant_name, form)
    if problem:
        return None, None, problem
    has_assertion = "client_assertion" in form or "client_assertion_type" in form
    if app.get("public_client") and user_flow:
        if has_assertion or form.get("client_secret"):
            problem = aad_error(401, "invalid_client", 700025,
                                "Client is public so neither 'client_assertion' nor "
                                "'client_secret' should be presented.")
    elif has_assertion:
        problem = check_client_assertion(state, app_id, app, form, audience)
    elif not form.get("client_secret") or not app.get("secret"):
        problem = aad_error(401, "invalid_client", 7000218,
                            "The request body must contain the following parameter: "
                            "'client_assertion' or 'client_secret'.")
    elif not secrets.compare_digest(form["client_secret"], app["secret"]):
        problem = aad_error(401, "invalid_client", 7000215,
                            "Invalid client secret provided. Ensure the secret being sent in the "
                            "request is the client secret value, not the client secret ID, for a "
                            f"secret added to app '{app_id}'.")
    return (None, None, problem) if problem else (app_id, app, None)


# -- access tokens ------------------------------------------------------------------------------

def _common_claims(state, app_id, app, tenant_name):
    tid = state.tenants[tenant_name]["tid"]
    now = int(time.time())
    return {"aud": EXCHANGE_AUDIENCE, "iss": f"https://sts.windows.net/{tid}/",
            # rounded up: a token must not expire before the expires_in it is sold with
            "iat": now, "nbf": now, "exp": math.ceil(time.time() + state.token_lifetime),
            "aio": jws.b64url(secrets.token_bytes(48)),
            "app_displayname": app.get("name", "mailgate test app"), "appid": app_id,
            "appidacr": "1" if app.get("secret") else "0",
            "idp": f"https://sts.windows.net/{tid}/",
            "rh": "0." + jws.b64url(secrets.token_bytes(40)) + ".", "sid": str(uuid.uuid4()),
            "tid": tid, "uti": jws.b64url(secrets.token_bytes(16)), "ver": "1.0",
            "xms_tcdt": now - 86400 * 400}


def _sign_and_store(state, claims, entry):
    header = {"typ": "JWT", "nonce": jws.b64url(secrets.token_bytes(32)), "alg": "RS256",
              "x5t": state.signing_key.kid}
    token = state.signing_key.sign(header, claims)
    state.tokens[token] = {"claims": claims, **entry}
    return token


def make_token(state, app_id, app, tenant_name):
    """An app-only access token (client credentials): roles, no scp."""
    claims = _common_claims(state, app_id, app, tenant_name)
    claims.update(oid=str(uuid.uuid4()), roles=app.get("roles", DEFAULT_ROLES),
                  sub=str(uuid.uuid4()), wids=["0997a1d0-0d1d-4acb-b408-d5ca73121e90"])
    token = _sign_and_store(state, claims, {"kind": "app", "tenant": tenant_name,
                                            "app_id": app_id})
    return token, state.token_lifetime


def user_oid(mailbox):
    """A stable object id per user, as Entra keeps one."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, mailbox.lower()))


def make_user_token(state, app_id, app, tenant_name, mailbox, scopes, amr=("pwd",)):
    """A delegated access token for mailbox: scp (space separated), upn, no roles."""
    claims = _common_claims(state, app_id, app, tenant_name)
    name = mailbox.partition("@")[0].capitalize()
    claims.update(acct=0, acr="1", amr=list(amr), app_displayname=app.get("name", "mailgate"),
                  family_name="Test", given_name=name, idtyp="user", ipaddr="127.0.0.1",
                  name=f"{name} Test", oid=user_oid(mailbox), puid=secrets.token_hex(8).upper(),
                  scp=" ".join(scopes), sub=jws.b64url(secrets.token_bytes(32)),
                  unique_name=mailbox, upn=mailbox)
    token = _sign_and_store(state, claims, {"kind": "delegated", "tenant": tenant_name,
                                            "app_id": app_id, "user": mailbox})
    return token, state.token_lifetime


def client_credentials(state, tenant_name, form, audience):
    """(status, body) for grant_type=client_credentials: a token or an AADSTS error."""
    app_id, app, problem = authenticate_client(state, tenant_name, form, audience, False)
    if problem:
        return problem
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


# -- introspection (Dovecot's oauth2 passdb) ----------------------------------------------------

def introspect(state, entry, service):
    """The RFC 7662 answer for a known, unexpired Entra token entry."""
    claims = entry["claims"]
    app = state.apps.get(entry["app_id"])
    if app is None:
        return {"active": False}
    if entry["kind"] == "delegated":
        return _introspect_delegated(state, entry, claims, service)
    role = SERVICE_ROLES.get(service or "imap")
    if role and role not in claims["roles"]:
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


def _introspect_delegated(state, entry, claims, service):
    needed = SERVICE_SCOPES.get(service or "imap")
    user = state.users.get(entry["user"])
    if user is None or user.get("disabled"):
        return {"active": False}
    if needed and needed not in claims["scp"].split():
        return {"active": False}
    return {"active": True, "username": claims["upn"], "client_id": entry["app_id"],
            "token_type": "Bearer", "scope": claims["scp"], "aud": claims["aud"],
            "iss": claims["iss"], "exp": claims["exp"], "iat": claims["iat"],
            "tid": claims["tid"], "upn": claims["upn"], "oid": claims["oid"]}
