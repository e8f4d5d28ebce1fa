"""Fake Google OAuth 2.0 (paths under /google/, see idp.py for the whole API): service account
JWT bearer grant with domain-wide delegation, refresh tokens of consented users (never rotated),
the device code endpoint's refusal of the mail scope, introspection of "ya29." tokens."""
import secrets
import time

if __package__:  # imported as harness.idp_google
    from . import idp_jwt as jws
else:  # run from idp.py as a script: tests/harness is on sys.path
    import idp_jwt as jws

MAIL_SCOPE = "https://mail.google.com/"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300
BAD_SIGNATURE = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
EXPIRED_OR_REVOKED = (400, {"error": "invalid_grant",
                            "error_description": "Token has been expired or revoked."})


def google_error(status, error, description=None):
    body = {"error": error}
    if description is not None:
        body["error_description"] = description
    return status, body


def known_users(state):
    """Google Workspace users of the test domain: the IdP's users and every delegated
    mailbox ("users" in the google config replaces this)."""
    google = state.google
    if "users" in google:
        return {u.lower() for u in google["users"]}
    users = set(state.users)
    for sa in google.get("service_accounts", {}).values():
        users.update(m.lower() for m in sa.get("mailboxes", []))
    return users


def issue_access_token(state, owner, mailbox, scope):
    """An opaque "ya29." access token, stored for introspection."""
    token = "ya29.a0" + jws.b64url(secrets.token_bytes(120))
    now = int(time.time())
    state.tokens[token] = {"kind": "google", "app_id": owner, "user": mailbox,
                           "claims": {"iat": now, "exp": now + state.token_lifetime,
                                      "scope": scope, "sub": mailbox}}
    state.count("google_tokens_issued")
    return token


# -- service account: JWT bearer ----------------------------------------------------------------

def _check_assertion_time(claims):
    iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
    if not isinstance(iat, int) or not isinstance(exp, int):
        return False
    return 0 < exp - iat <= MAX_ASSERTION_LIFETIME and iat - CLOCK_SKEW <= now < exp + CLOCK_SKEW


def jwt_bearer_grant(state, form, audiences):
    """grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer; audiences: the URLs this
    request may name as aud (the token endpoint it was posted to)."""
    if not form.get("assertion"):
        return google_error(400, "invalid_request", "Missing required parameter: assertion")
    try:
        header, claims, signing_input, signature = jws.split_jws(form["assertion"])
    except ValueError:
        return google_error(400, "invalid_grant", "Bad Request")
    sa_email = claims.get("iss")
    sa = state.google.get("service_accounts", {}).get(sa_email)
    if sa is None:
        return google_error(400, "invalid_grant", "Invalid grant: account not found")
    if header.get("alg") != "RS256" or header.get("kid", sa["private_key_id"]) != \
            sa["private_key_id"]:
        return BAD_SIGNATURE
    key = jws.public_key_of(sa.get("certificate") or sa["public_key"])
    if not jws.rsa_verify(key, "RS256", signing_input, signature):
        return BAD_SIGNATURE
    if claims.get("aud") not in audiences:
        return google_error(400, "invalid_grant", f"Invalid JWT: Failed audience check. The "
                            f"expected value was {audiences[0]} but the actual value was "
                            f"{claims.get('aud')}.")
    if not _check_assertion_time(claims):
        return google_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived "
                            "token (60 minutes) and in a reasonable timeframe. Check your iat "
                            "and exp values in the JWT claim.")
    scopes = (claims.get("scope") or "").split()
    if not scopes:
        return google_error(400, "invalid_scope", "Empty or missing scope not allowed.")
    sub = (claims.get("sub") or "").lower()
    if sub not in known_users(state):
        return google_error(400, "invalid_grant", "Invalid email or User ID")
    delegated = {m.lower() for m in sa.get("mailboxes", [])}
    if sub not in delegated or not set(scopes) <= set(sa.get("scopes", [MAIL_SCOPE])):
        return google_error(401, "unauthorized_client", "Client is unauthorized to retrieve "
                            "access tokens using this method, or client not authorized for "
                            "any of the scopes requested.")
    token = issue_access_token(state, sa_email, sub, " ".join(scopes))
    return 200, {"access_token": token, "expires_in": state.token_lifetime,
                 "token_type": "Bearer"}


# -- consented users: refresh tokens ------------------------------------------------------------

def _client_problem(state, form):
    client = state.google.get("clients", {}).get(form.get("client_id") or "")
    if client is None:
        return google_error(401, "invalid_client", "The OAuth client was not found.")
    if not secrets.compare_digest((form.get("client_secret") or "").encode(),
                                  client.get("secret", "").encode()):
        return google_error(401, "invalid_client", "Unauthorized")
    return None


def refresh_grant(state, form):
    if not form.get("refresh_token"):
        return google_error(400, "invalid_request", "Missing required parameter: refresh_token")
    problem = _client_problem(state, form)
    if problem:
        return problem
    entry = state.google_refresh.get(form["refresh_token"])
    if entry is None or entry["revoked"] or entry["client_id"] != form["client_id"]:
        return EXPIRED_OR_REVOKED
    token = issue_access_token(state, entry["client_id"], entry["user"], entry["scope"])
    return 200, {"access_token": token, "expires_in": state.token_lifetime,
                 "scope": entry["scope"], "token_type": "Bearer"}


def control_refresh(state, args):
    """POST /_control/google_refresh {"client_id", "mailbox"[, "scope"]}: the refresh token a
    consented user's authorization would have given."""
    if args.get("client_id") not in state.google.get("clients", {}):
        return 400, {"error": "unknown client_id"}
    mailbox = (args.get("mailbox") or "").lower()
    if mailbox not in known_users(state):
        return 400, {"error": "unknown mailbox"}
    token = "1//0g" + jws.b64url(secrets.token_bytes(75))
    state.google_refresh[token] = {"client_id": args["client_id"], "user": mailbox,
                                   "scope": args.get("scope", MAIL_SCOPE), "revoked": False}
    return 200, {"refresh_token": token}


def revoke_refresh(state, mailbox):
    for entry in state.google_refresh.values():
        if entry["user"] == mailbox.lower():
            entry["revoked"] = True


def valid_refresh_counts(state):
    counts = {}
    for entry in state.google_refresh.values():
        if not entry["revoked"]:
            counts[entry["user"]] = counts.get(entry["user"], 0) + 1
    return counts


# -- the rest of the surface --------------------------------------------------------------------

def token(state, form, audiences):
    """POST /google/token."""
    grant = form.get("grant_type")
    if grant == JWT_BEARER_GRANT:
        state.count("google_jwt_grants")
        return jwt_bearer_grant(state, form, audiences)
    if grant == "refresh_token":
        state.count("google_refresh_grants")
        return refresh_grant(state, form)
    if not grant:
        return google_error(400, "invalid_request", "Missing required parameter: grant_type")
    return google_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")


def device_code(state, form):
    """POST /google/device/code: Google refuses the Gmail scope for limited-input devices.
    Codes for other scopes are issued but can never be approved (no test needs it)."""
    if form.get("client_id") not in state.google.get("clients", {}):
        return google_error(401, "invalid_client", "The OAuth client was not found.")
    if MAIL_SCOPE in (form.get("scope") or "").split():
        return google_error(400, "invalid_scope")
    return 200, {"device_code": "AH-1Ng" + jws.b64url(secrets.token_bytes(60)),
                 "user_code": "GQVQ-JKEC", "expires_in": 1800, "interval": 5,
                 "verification_url": "https://www.google.com/device"}


def introspect(entry):
    claims = entry["claims"]
    if MAIL_SCOPE not in claims["scope"].split():
        return {"active": False}
    return {"active": True, "username": entry["user"], "client_id": entry["app_id"],
            "token_type": "Bearer", "scope": claims["scope"], "exp": claims["exp"],
            "iat": claims["iat"]}
