"""Fake Entra ID user (delegated) flows: scopes, device code (RFC 8628), refresh tokens with
rotation and revocation, resource owner password credentials (see idp.py for the whole API)."""
import secrets
import time

if __package__:  # imported as harness.idp_delegated
    from . import idp_entra as entra
    from .idp_jwt import b64url
else:  # run from idp.py as a script: tests/harness is on sys.path
    import idp_entra as entra
    from idp_jwt import b64url

RESOURCES = ("https://outlook.office365.com/", "https://outlook.office.com/")
DEFAULT_DELEGATED = ["IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send"]
OIDC_SCOPES = ("openid", "profile", "email")
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
POLL_TOLERANCE = 0.05  # seconds a poll may come early without counting as too fast
SLOW_DOWN_STEP = 5  # seconds added to a code's interval per slow_down (RFC 8628 3.5)


def parse_scopes(app_id, app, text):
    """(delegated scope names, offline_access?, None) or (None, None, error) for a scope
    parameter like "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access"."""
    if not text:
        return None, None, entra.aad_error(
            400, "invalid_scope", 70011,
            "The provided request must include a 'scope' input parameter.")
    allowed = app.get("delegated_scopes", DEFAULT_DELEGATED)
    wanted, offline = [], False
    for item in text.split():
        if item == "offline_access":
            offline = True
            continue
        if item in OIDC_SCOPES:
            continue
        name = next((item[len(r):] for r in RESOURCES if item.startswith(r)), None)
        if not name:
            return None, None, entra.aad_error(
                400, "invalid_scope", 70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope "
                f"'{item}' is not valid.")
        if name == ".default":
            wanted += allowed
        elif name in allowed:
            wanted.append(name)
        else:
            return None, None, entra.invalid_grant(
                65001, f"The user or administrator has not consented to use the application "
                       f"with ID '{app_id}' named '{app.get('name', app_id)}'. Send an "
                       f"interactive authorization request for this user and resource.")
    if not wanted:
        return None, None, entra.aad_error(
            400, "invalid_scope", 70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"'{text}' does not name a resource.")
    return list(dict.fromkeys(wanted)), offline, None


def user_problem(state, tenant_name, mailbox):
    """None if mailbox is an enabled user of the tenant, else an AADSTS error."""
    user = state.users.get((mailbox or "").lower())
    domain = state.tenants[tenant_name].get("domain")
    if user is None or (domain and not mailbox.lower().endswith("@" + domain.lower())):
        return entra.invalid_grant(
            50034, f"The user account {{EUII Hidden}} does not exist in the "
                   f"'{state.tenants[tenant_name]['tid']}' directory. To sign into this "
                   "application, the account must be added to the directory.")
    if user.get("disabled"):
        return entra.invalid_grant(50057, "The user account is disabled.")
    return None


def issue_user_tokens(state, app_id, app, tenant_name, mailbox, scopes, offline):
    """The 200 answer of a user grant: access token and, with offline_access, a refresh
    token (stored, so it can be redeemed, rotated and revoked)."""
    mailbox = mailbox.lower()
    amr = ["pwd", "mfa"] if state.users[mailbox].get("mfa") else ["pwd"]
    token, lifetime = entra.make_user_token(state, app_id, app, tenant_name, mailbox, scopes,
                                            amr)
    body = {"token_type": "Bearer", "scope": " ".join(scopes), "expires_in": lifetime,
            "ext_expires_in": lifetime, "access_token": token}
    if offline:
        refresh = "0.AXoA" + b64url(secrets.token_bytes(800))
        state.refresh_tokens[refresh] = {"user": mailbox, "app_id": app_id,
                                         "tenant": tenant_name, "scopes": scopes,
                                         "status": "valid"}
        body["refresh_token"] = refresh
    return 200, body


# -- resource owner password credentials --------------------------------------------------------

def password_grant(state, tenant_name, form, audience):
    app_id, app, problem = entra.authenticate_client(state, tenant_name, form, audience, True)
    if problem:
        return problem
    for field in ("username", "password"):
        if not form.get(field):
            return entra.missing_parameter(field)
    scopes, offline, problem = parse_scopes(app_id, app, form.get("scope"))
    if problem:
        return problem
    mailbox = form["username"].lower()
    user = state.users.get(mailbox)
    if user is not None and not secrets.compare_digest(form["password"].encode(),
                                                       user.get("password", "").encode()):
        return entra.invalid_grant(50126, "Error validating credentials due to invalid "
                                          "username or password.")
    problem = user_problem(state, tenant_name, mailbox)
    if problem:
        return problem
    if user.get("mfa"):
        return entra.invalid_grant(
            50076, "Due to a configuration change made by your administrator, or because you "
                   "moved to a new location, you must use multi-factor authentication to "
                   "access '00000002-0000-0ff1-ce00-000000000000'.", suberror="basic_action")
    return issue_user_tokens(state, app_id, app, tenant_name, mailbox, scopes, offline)


# -- refresh tokens -----------------------------------------------------------------------------

def refresh_grant(state, tenant_name, form, audience):
    app_id, app, problem = entra.authenticate_client(state, tenant_name, form, audience, True)
    if problem:
        return problem
    if not form.get("refresh_token"):
        return entra.missing_parameter("refresh_token")
    entry = state.refresh_tokens.get(form["refresh_token"])
    if entry is None or entry["app_id"] != app_id or entry["tenant"] != tenant_name:
        return entra.invalid_grant(70000, "The provided value for the 'refresh_token' is not "
                                          "valid.")
    if entry["status"] == "revoked":
        return entra.invalid_grant(
            50173, "The provided grant has expired due to it being revoked, a fresh auth token "
                   "is needed. The user might have changed or reset their password.")
    if entry["status"] == "rotated":
        return entra.invalid_grant(70000, "The provided value for the 'refresh_token' is not "
                                          "valid. It was already redeemed.")
    problem = user_problem(state, tenant_name, entry["user"])
    if problem:
        return problem
    scopes = entry["scopes"]
    if form.get("scope"):
        scopes, _, problem = parse_scopes(app_id, app, form["scope"])
        if problem:
            return problem
    if state.rotate_refresh:
        entry["status"] = "rotated"
    status, body = issue_user_tokens(state, app_id, app, tenant_name, entry["user"], scopes,
                                     True)
    state.refresh_tokens[body["refresh_token"]]["scopes"] = entry["scopes"]
    return status, body


def revoke_refresh(state, mailbox):
    for entry in state.refresh_tokens.values():
        if entry["user"] == mailbox.lower() and entry["status"] == "valid":
            entry["status"] = "revoked"


def valid_refresh_counts(state):
    """{mailbox: number of redeemable refresh tokens} for every configured user."""
    counts = {m: 0 for m in state.users}
    for entry in state.refresh_tokens.values():
        if entry["status"] == "valid":
            counts[entry["user"]] = counts.get(entry["user"], 0) + 1
    return counts


# -- device code --------------------------------------------------------------------------------

def device_code_request(state, tenant_name, form, audience):
    """POST /{tenant}/oauth2/v2.0/devicecode."""
    app_id, app, problem = entra.authenticate_client(state, tenant_name, form, audience, True)
    if problem:
        return problem
    scopes, offline, problem = parse_scopes(app_id, app, form.get("scope"))
    if problem:
        return problem
    now = time.time()
    user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(9))
    device_code = "DAQABIQEAAAB" + b64url(secrets.token_bytes(150))
    code = {"user_code": user_code, "app_id": app_id, "tenant": tenant_name, "scopes": scopes,
            "offline": offline, "issued": now, "expires": now + state.device_code_lifetime,
            "interval": state.device_interval, "last_poll": None, "status": "pending",
            "user": None, "auto": None}
    if state.device_auto:
        code["auto"] = dict(state.device_auto, at=now + float(state.device_auto["after"]))
        state.device_auto = None
    state.device_codes[device_code] = code
    state.count("device_codes_issued")
    return 200, {"user_code": user_code, "device_code": device_code,
                 "verification_uri": VERIFICATION_URI,
                 "expires_in": int(state.device_code_lifetime), "interval": code["interval"],
                 "message": f"To sign in, use a web browser to open the page "
                            f"{VERIFICATION_URI} and enter the code {user_code} to "
                            f"authenticate."}


def _apply_auto(code, now):
    auto = code["auto"]
    if auto and code["status"] == "pending" and now >= auto["at"]:
        code["status"] = "approved" if auto["action"] == "approve" else "denied"
        code["user"] = auto.get("user")
        code["auto"] = None


def _poll_too_fast(state, code, now):
    """True when this poll earns a slow_down (forced, or sooner than the interval after the
    previous poll; the first poll is never too fast)."""
    if state.force_slow_down > 0:
        state.force_slow_down -= 1
        return True
    last = code["last_poll"]
    return last is not None and now - last < code["interval"] - POLL_TOLERANCE


def device_code_grant(state, tenant_name, form, audience):
    """grant_type=urn:ietf:params:oauth:grant-type:device_code (a poll)."""
    app_id, app, problem = entra.authenticate_client(state, tenant_name, form, audience, True)
    if problem:
        return problem
    state.count("device_polls")
    if not form.get("device_code"):
        return entra.missing_parameter("device_code")
    code = state.device_codes.get(form["device_code"])
    if code is None or code["app_id"] != app_id:
        return entra.invalid_grant(70000, "The provided value for the input parameter "
                                          "'device_code' is not valid.")
    now = time.time()
    _apply_auto(code, now)
    if code["status"] == "used":
        return entra.invalid_grant(54005, "OAuth2 Authorization code was already redeemed, "
                                          "please retry with a new valid code or use an "
                                          "existing refresh token.")
    if now >= code["expires"]:
        return entra.aad_error(400, "expired_token", 70020, "The provided value for the input "
                               "parameter 'device_code' is not valid. This device code has "
                               "expired.")
    too_fast = _poll_too_fast(state, code, now)
    code["last_poll"] = now
    if too_fast:
        code["interval"] += SLOW_DOWN_STEP
        state.count("slow_down_sent")
        return entra.aad_error(400, "slow_down", 70016, "OAuth 2.0 device flow error. Polling "
                               f"too fast: wait at least {code['interval']} seconds between "
                               "polls.", interval=code["interval"])
    if code["status"] == "denied":
        return entra.aad_error(400, "authorization_declined", 70000,
                               "The user has declined to authorize the application.")
    if code["status"] == "pending":
        return entra.aad_error(400, "authorization_pending", 70016,
                               "OAuth 2.0 device flow error. Authorization is pending. "
                               "Continue polling.")
    code["status"] = "used"
    problem = user_problem(state, tenant_name, code["user"])  # disabled since approval
    if problem:
        return problem
    return issue_user_tokens(state, app_id, app, tenant_name, code["user"], code["scopes"],
                             code["offline"])


def pending_device_codes(state):
    now = time.time()
    for code in state.device_codes.values():
        _apply_auto(code, now)
    return [c for c in state.device_codes.values()
            if c["status"] == "pending" and now < c["expires"]]


def control_device(state, args):
    """POST /_control/device: (status, body). Approves or denies a code like the user would
    in the browser (by user_code, else the newest pending code)."""
    action, wanted = args.get("action"), args.get("user_code")
    if action not in ("approve", "deny"):
        return 400, {"error": "action must be approve or deny"}
    pending = pending_device_codes(state)
    if wanted:
        norm = wanted.replace("-", "").upper()
        pending = [c for c in pending if c["user_code"] == norm]
    if not pending:
        return 404, {"error": "no such pending device code"}
    code = max(pending, key=lambda c: c["issued"])
    if action == "approve":
        problem = user_problem(state, code["tenant"], args.get("user") or "")
        if problem:
            return 409, {"error": "user cannot approve", "detail": problem[1]["error_codes"]}
        code["user"] = args["user"].lower()
    code["status"] = "approved" if action == "approve" else "denied"
    return 200, {"ok": True, "user_code": code["user_code"]}


def control_device_auto(state, args):
    """POST /_control/device_auto: the next device code issued is approved/denied `after`
    seconds after it was issued."""
    if args.get("action") not in ("approve", "deny"):
        return 400, {"error": "action must be approve or deny"}
    if args["action"] == "approve" and (args.get("user") or "").lower() not in state.users:
        return 400, {"error": "unknown user"}
    state.device_auto = {"action": args["action"], "user": (args.get("user") or "").lower(),
                         "after": float(args.get("after", 0))}
    return 200, {"ok": True}
