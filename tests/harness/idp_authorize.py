"""Fake Entra ID v2.0 authorization code flow with PKCE: the authorize page
(GET/POST /{tenant}/oauth2/v2.0/authorize) and grant_type=authorization_code at the token
endpoint (see idp.py for the whole API).

GET shows a small sign-in page: the account prefilled from login_hint, a password field, an
"Accept" button (id accept) and a "Cancel" button (id decline). Problems Entra shows on its own
page instead of redirecting (unknown tenant or app, a redirect_uri the app has not registered,
no PKCE) are answered 400 with the AADSTS text. The POST is the form: wrong password -> the page
again; decline -> redirect_uri?error=access_denied&error_description=AADSTS65004 ...&state=;
accept -> redirect_uri?code=...&state=...&session_state=... The code is good once, for
auth_code_lifetime seconds (Entra: 10 minutes), for the same client and redirect_uri, with a
code_verifier whose S256 is the code_challenge: unknown code -> invalid_grant 70000, expired
-> 70008, used -> 54005, another redirect_uri -> 50011, wrong verifier -> 501481."""
import base64
import hashlib
import html
import secrets
import time
import urllib.parse
import uuid

if __package__:
    from . import idp_delegated as delegated, idp_entra as entra
    from .idp_jwt import b64url
else:
    import idp_delegated as delegated
    import idp_entra as entra
    from idp_jwt import b64url

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body><h1>Sign in</h1><p id="app">{app} wants to read and send your mail.</p>{problem}
<form method="post" action="{action}">
<input type="hidden" name="request" value="{request}">
<label>Account <input id="login" name="login" value="{login}"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="accept" name="action" value="accept" type="submit">Accept</button>
<button id="decline" name="action" value="decline" type="submit">Cancel</button>
</form></body></html>
"""


def _s256(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()


def _page_error(code, text):
    return 400, {}, f"<!DOCTYPE html><html><body><h1>Sorry, but we're having trouble signing " \
                    f"you in.</h1><p id=\"error\">AADSTS{code}: {html.escape(text)}</p>" \
                    f"</body></html>"


def _redirect(uri, params):
    sep = "&" if "?" in uri else "?"
    return 302, {"Location": uri + sep + urllib.parse.urlencode(params)}, ""


def _page(state, tenant_name, request_id, problem=""):
    req = state.authorize_requests[request_id]
    app = state.apps[req["app_id"]]
    problem_html = f'<p id="problem">{html.escape(problem)}</p>' if problem else ""
    return 200, {}, PAGE.format(app=html.escape(app.get("name", req["app_id"])),
                                problem=problem_html, request=request_id,
                                action=f"/{tenant_name}/oauth2/v2.0/authorize",
                                login=html.escape(req["login_hint"]))


def authorize_get(state, tenant_name, query):
    """(status, headers, html) for GET /{tenant}/oauth2/v2.0/authorize."""
    state.stats["last_authorize"] = dict(query)
    app_id, app, problem = entra.find_app(state, tenant_name, query)
    if problem:
        return _page_error(problem[1]["error_codes"][0], problem[1]["error_description"])
    uri = query.get("redirect_uri", "")
    registered = app.get("redirect_uris")
    if not uri or (registered is not None and uri not in registered):
        return _page_error(50011, f"The redirect URI '{uri}' specified in the request does not "
                                  f"match the redirect URIs configured for the application "
                                  f"'{app_id}'.")
    if query.get("response_type") != "code":
        return _redirect(uri, {"error": "unsupported_response_type", "state": query.get(
            "state", ""), "error_description": "AADSTS70005: response_type 'token' is not "
                                               "enabled for the application."})
    if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
        return _page_error(9002325, "Proof Key for Code Exchange is required for this client: "
                                    "code_challenge with code_challenge_method S256.")
    scopes, offline, problem = delegated.parse_scopes(app_id, app, query.get("scope"))
    if problem:
        return _redirect(uri, {"error": problem[1]["error"], "state": query.get("state", ""),
                               "error_description": problem[1]["error_description"]})
    request_id = secrets.token_urlsafe(16)
    state.authorize_requests[request_id] = {
        "app_id": app_id, "tenant": tenant_name, "redirect_uri": uri, "scopes": scopes,
        "offline": offline, "state": query.get("state", ""),
        "challenge": query["code_challenge"], "login_hint": query.get("login_hint", "")}
    return _page(state, tenant_name, request_id)


def authorize_post(state, tenant_name, form):
    """(status, headers, html) for the sign-in form."""
    req = state.authorize_requests.get(form.get("request", ""))
    if req is None or req["tenant"] != tenant_name:
        return _page_error(900561, "The sign-in request is unknown or was already completed.")
    if form.get("action") == "decline":
        del state.authorize_requests[form["request"]]
        return _redirect(req["redirect_uri"], {
            "error": "access_denied", "state": req["state"],
            "error_description": "AADSTS65004: User declined to consent to access the app."})
    mailbox = (form.get("login") or "").lower()
    user = state.users.get(mailbox)
    if user is None or not secrets.compare_digest(form.get("password", "").encode(),
                                                  user.get("password", "").encode()):
        return _page(state, tenant_name, form["request"],
                     "Your account or password is incorrect.")
    if delegated.user_problem(state, tenant_name, mailbox):
        return _page(state, tenant_name, form["request"], "This account cannot sign in.")
    del state.authorize_requests[form["request"]]
    code = "1.AXoA" + b64url(secrets.token_bytes(900))
    state.auth_codes[code] = dict(req, user=mailbox, issued=time.time(), used=False)
    state.count("auth_codes_issued")
    return _redirect(req["redirect_uri"], {"code": code, "state": req["state"],
                                           "session_state": str(uuid.uuid4())})


def authorization_code_grant(state, tenant_name, form, audience):
    """grant_type=authorization_code."""
    app_id, app, problem = entra.authenticate_client(state, tenant_name, form, audience, True)
    if problem:
        return problem
    for field in ("code", "redirect_uri", "code_verifier"):
        if not form.get(field):
            return entra.missing_parameter(field)
    entry = state.auth_codes.get(form["code"])
    if entry is None or entry["app_id"] != app_id or entry["tenant"] != tenant_name:
        return entra.invalid_grant(70000, "The provided value for the 'code' parameter is not "
                                          "valid.")
    if entry["used"]:
        return entra.invalid_grant(54005, "OAuth2 Authorization code was already redeemed, "
                                          "please retry with a new valid code or use an "
                                          "existing refresh token.")
    if time.time() - entry["issued"] > state.auth_code_lifetime:
        return entra.invalid_grant(70008, "The provided authorization code or refresh token has "
                                          "expired due to inactivity. Send a new interactive "
                                          "authorization request for this user and resource.")
    if form["redirect_uri"] != entry["redirect_uri"]:
        return entra.invalid_grant(50011, "The redirect URI specified in the request does not "
                                          "match the redirect URI of the authorization request.")
    if not secrets.compare_digest(_s256(form["code_verifier"]), entry["challenge"]):
        return entra.invalid_grant(501481, "The Code_Verifier does not match the code_challenge "
                                           "supplied in the authorization request.")
    entry["used"] = True
    problem = delegated.user_problem(state, tenant_name, entry["user"])
    if problem:
        return problem
    return delegated.issue_user_tokens(state, app_id, app, tenant_name, entry["user"],
                                       entry["scopes"], entry["offline"])
