"""The sign-in page (issue 12): GET /oauth/start?user=NAME redirects to the provider's authorize
page with PKCE (S256) and a one-time state bound to the browser by a cookie; GET
/oauth/callback redeems the code, stores the refresh token sealed for the user and shows
"Mailbox X connected", with a generated gateway password for a user without one. Driven in
headless Chromium (chromedriver, tests/harness/webdriver.py) against the fake Entra ID's
sign-in page, ending with an IMAP login through the gateway to Dovecot; and with plain HTTP
requests for the refusals: reused, unknown and expired state, a callback without the cookie,
declined consent, unknown users, and nothing secret in the gateway's log."""
import base64
import hashlib
import html
import imaplib
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import webdriver
from harness.procs import free_port, wait_until
from harness.stack import ALICE, BOB, CLIENT_ID_DELEGATED, DAVE, ENTRA_PASSWORDS, TENANT
from harness.idp_client import DELEGATED_SCOPE
from test_authorize_cli import query

PROVIDER = "entra"
COOKIE = "mailgate_signin"
REFRESH_PREFIX = "0.AXoA"  # every refresh token of the fake Entra ID starts so
CODE_PREFIX = "1.AXoA"  # and every authorization code so


def provider_section(stack):
    base = f"https://127.0.0.1:{stack.idp.port}/{{tenant}}/oauth2/v2.0"
    return "\n".join(["", f"[provider {PROVIDER}]", "type = microsoft", f"tenant = {TENANT}",
                      f"client_id = {CLIENT_ID_DELEGATED}", "flow = delegated",
                      f"token_endpoint = {base}/token",
                      f"authorization_endpoint = {base}/authorize", f"scope = {DELEGATED_SCOPE}",
                      f"imap_server = localhost:{stack.dovecot.imaps_port}",
                      f"ca_file = {stack.certs.ca}", ""])


def signin_gateway(fleet, name, ttl_ms=None):
    """A gateway with an HTTPS listener as its public URL and the delegated provider."""
    port = free_port()
    public_url = f"https://127.0.0.1:{port}"
    extra = "\n".join([provider_section(fleet.stack), "[listen webs]", "protocol = http",
                       f"address = 127.0.0.1:{port}", "tls = implicit", ""])
    if ttl_ms is not None:
        os.environ["MAILGATE_TEST_SIGNIN_TTL_MS"] = str(ttl_ms)
    try:
        gw = fleet.new(name, users=False, start=False, extra=extra,
                       gateway_lines=[f"public_url = {public_url}/"])
        gw.add_user("alice", None, mailbox=ALICE, provider=PROVIDER)
        gw.add_user("bob", "bob-Local-Pw-2", mailbox=BOB, provider=PROVIDER)
        gw.add_user("dave", None, mailbox=DAVE, provider=PROVIDER)
        gw.add_user("app", "app-Local-Pw-3", mailbox=DAVE, provider="microsoft")  # app-only
        gw.start()
    finally:
        os.environ.pop("MAILGATE_TEST_SIGNIN_TTL_MS", None)
    gw.public_url = public_url
    gw.web_port = port
    return gw


@pytest.fixture(scope="module")
def gw(fleet, idp):
    g = signin_gateway(fleet, "signin")
    idp.config(redirect_uris={CLIENT_ID_DELEGATED: [g.public_url + "/oauth/callback"]})
    yield g
    idp.config(redirect_uris={CLIENT_ID_DELEGATED: None})


@pytest.fixture(scope="module")
def browser(workdir):
    if not webdriver.available():
        pytest.skip("chromium and chromium-driver are not installed")
    d = os.path.join(workdir, "browser")
    os.makedirs(d, exist_ok=True)
    b = webdriver.Browser(d)
    yield b
    b.stop()


# -- plain HTTP ---------------------------------------------------------------------------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def tls_context(certs):
    return ssl.create_default_context(cafile=certs.ca)


def get(url, certs, cookie=None, data=None):
    """(status, headers, body) without following redirects."""
    opener = urllib.request.build_opener(NoRedirect,
                                         urllib.request.HTTPSHandler(context=tls_context(certs)))
    req = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def page_text(body):
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def start(gw, user):
    """GET /oauth/start: (authorize URL, cookie "name=value")."""
    status, headers, body = get(f"{gw.public_url}/oauth/start?user={urllib.parse.quote(user)}",
                                gw.certs)
    assert status == 302, body
    assert headers["Cache-Control"] == "no-store"
    cookie = headers["Set-Cookie"]
    assert re.fullmatch(COOKIE + r"=[A-Za-z0-9_-]{43}; Max-Age=600; Path=/oauth/; HttpOnly; "
                        r"SameSite=Lax; Secure", cookie), cookie
    return headers["Location"], cookie.split(";")[0]


def sign_in_at_idp(authorize_url, certs, mailbox, action="accept"):
    """What the user does on the provider's page: the callback URL it redirects to."""
    status, _, page = get(authorize_url, certs)
    assert status == 200, page
    request_id = re.search(r'name="request" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"request": request_id, "login": mailbox, "action": action,
                                   "password": ENTRA_PASSWORDS[mailbox]}).encode()
    url = authorize_url.split("?")[0]
    status, headers, body = get(url, certs, data=form)
    assert status == 302, body
    return headers["Location"]


def imap_login(gw, user, password):
    with imaplib.IMAP4_SSL("127.0.0.1", gw.port("imaps"),
                           ssl_context=tls_context(gw.certs)) as m:
        m.login(user, password)
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        m.logout()


def test_no_password_before_the_sign_in(gw):
    """A user added with --no-password cannot log in yet: a wrong password, not an error."""
    offset = gw.log_offset()
    with imaplib.IMAP4_SSL("127.0.0.1", gw.port("imaps"),
                           ssl_context=tls_context(gw.certs)) as m:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("dave", "anything")
    gw.wait_for_log(r'user="dave".*reason="no password yet', offset=offset)


# -- the browser --------------------------------------------------------------------------------

def test_browser_sign_in_then_imap_login(gw, browser, idp):
    log_start = gw.log_offset()
    browser.go(f"{gw.public_url}/oauth/start?user=alice")
    wait_until(lambda: "/oauth2/v2.0/authorize" in browser.url, timeout=20, what="IdP page")
    asked = idp.stats()["last_authorize"]
    assert asked["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["state"])
    assert asked["login_hint"] == ALICE
    assert asked["redirect_uri"] == gw.public_url + "/oauth/callback"
    assert asked["client_id"] == CLIENT_ID_DELEGATED and asked["response_type"] == "code"
    # the account comes prefilled from login_hint
    login = browser.find("#login")
    assert browser._call("GET", browser._s(f"/element/{login}/property/value")) == ALICE
    browser.type("#password", ENTRA_PASSWORDS[ALICE])
    browser.click("#accept")
    wait_until(lambda: "/oauth/callback" in browser.url, timeout=30, what="callback page")
    wait_until(lambda: "connected" in browser.text("#title"), timeout=30, what="result page")
    assert browser.text("#title") == f"Mailbox {ALICE} connected"
    shown = browser.text("#p1")
    m = re.fullmatch(r"Your gateway password \(user alice\): (\S+)", shown)
    assert m, shown
    password = m.group(1)
    assert "shown only this once" in browser.text("#p2")
    # the cookie has done its work
    assert not [c for c in browser.cookies() if c["name"] == COOKIE]
    # stored: the sealed refresh token, the access token, the audit event
    assert query(gw, "SELECT user, provider, state FROM grants") == [("alice", PROVIDER, 0)]
    assert query(gw, "SELECT principal FROM tokens WHERE provider = ?", PROVIDER) == \
        [("user:alice",)]
    assert ("authorized", "alice", PROVIDER, "sign-in page") in query(
        gw, "SELECT event, user, provider, detail FROM audit")
    # and the password works: IMAP through the gateway to Dovecot
    imap_login(gw, "alice", password)
    # reloading the callback shows no password again: the state is spent
    callback_url = browser.url
    browser.go(callback_url)
    wait_until(lambda: "not completed" in browser.text("#title"), timeout=20, what="reload")
    assert "already used" in browser.text("#p0")
    assert password not in browser.text()
    # nothing of the exchange in the log
    log = gw.log_since(log_start)
    parsed = urllib.parse.parse_qs(urllib.parse.urlparse(callback_url).query)
    for secret in (parsed["code"][0], parsed["state"][0], password, asked["code_challenge"],
                   REFRESH_PREFIX, CODE_PREFIX):
        assert secret not in log
    for token in idp.issued_tokens():
        assert token not in log
    assert re.search(r'signin callback user="alice" .*result=connected password=generated', log)


def test_browser_declined_consent_in_words(gw, browser):
    browser.go(f"{gw.public_url}/oauth/start?user=bob")
    wait_until(lambda: "/oauth2/v2.0/authorize" in browser.url, timeout=20, what="IdP page")
    browser.click("#decline")
    wait_until(lambda: "/oauth/callback" in browser.url, timeout=30, what="callback page")
    wait_until(lambda: "not completed" in browser.text("#title"), timeout=20, what="page")
    text = browser.text()
    assert "declined" in text and "AADSTS65004" in text
    assert "consent" in text  # the fix from aadsts.c
    for parameter in ("error=", "access_denied", "error_description", "state="):
        assert parameter not in text
    assert query(gw, "SELECT count(*) FROM grants WHERE user = 'bob'") == [(0,)]


# -- plain HTTP clients -------------------------------------------------------------------------

def test_user_with_a_password_keeps_it(gw):
    url, cookie = start(gw, "bob")
    callback = sign_in_at_idp(url, gw.certs, BOB)
    status, headers, body = get(callback, gw.certs, cookie=cookie)
    assert status == 200, body
    text = page_text(body)
    assert f"Mailbox {BOB} connected" in text
    assert "Your gateway password" not in text  # none is shown: bob has one
    assert "with the password you were given" in text
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Set-Cookie"].startswith(COOKIE + "=; Max-Age=0")
    imap_login(gw, "bob", "bob-Local-Pw-2")


def test_state_is_one_time(gw):
    url, cookie = start(gw, "dave")
    callback = sign_in_at_idp(url, gw.certs, DAVE)
    assert get(callback, gw.certs, cookie=cookie)[0] == 200
    status, _, body = get(callback, gw.certs, cookie=cookie)
    assert status == 400
    assert "expired or was already used" in page_text(body)


def test_unknown_state_refused(gw):
    _, cookie = start(gw, "dave")
    status, _, body = get(f"{gw.public_url}/oauth/callback?code={CODE_PREFIX}xyz&state="
                          + "A" * 43, gw.certs, cookie=cookie)
    assert status == 400
    assert "expired or was already used" in page_text(body)


def test_callback_without_the_cookie_refused(gw, idp):
    before = idp.stats()["code_grants"]
    url, cookie = start(gw, "dave")
    callback = sign_in_at_idp(url, gw.certs, DAVE)
    status, _, body = get(callback, gw.certs)  # another browser: no cookie
    assert status == 400
    assert "another browser" in page_text(body)
    # and the state is spent: the right browser cannot use it after that either
    assert get(callback, gw.certs, cookie=cookie)[0] == 400
    other = COOKIE + "=" + "B" * 43
    url, _ = start(gw, "dave")
    assert get(sign_in_at_idp(url, gw.certs, DAVE), gw.certs, cookie=other)[0] == 400
    assert idp.stats()["code_grants"] == before  # no code was redeemed


def test_declined_consent_in_words(gw):
    url, cookie = start(gw, "dave")
    callback = sign_in_at_idp(url, gw.certs, DAVE, action="decline")
    assert "error=access_denied" in callback
    status, _, body = get(callback, gw.certs, cookie=cookie)
    assert status == 400
    text = page_text(body)
    assert "declined" in text and "AADSTS65004" in text
    assert "User declined to consent to access the app" not in text  # the provider's own text


def test_another_account_refused(gw):
    """login_hint only suggests the account: signing in as bob on dave's link stores nothing."""
    authorized = "SELECT count(*) FROM audit WHERE user = 'dave' AND event = 'authorized'"
    before = query(gw, authorized)
    url, cookie = start(gw, "dave")
    callback = sign_in_at_idp(url, gw.certs, BOB)
    status, _, body = get(callback, gw.certs, cookie=cookie)
    assert status == 400
    assert f"sign in as {DAVE}" in page_text(body)
    assert query(gw, authorized) == before


@pytest.mark.parametrize("user", ["app", "nobody", "nobody@example.test", "alice\\shared"])
def test_no_sign_in_for_other_users_one_page(gw, user):
    status, headers, body = get(f"{gw.public_url}/oauth/start?user={urllib.parse.quote(user)}",
                                gw.certs)
    assert status == 400
    assert "Set-Cookie" not in headers
    assert "There is no sign-in for this name here." in page_text(body)


def test_bad_requests(gw):
    assert get(f"{gw.public_url}/oauth/start", gw.certs)[0] == 400
    status, headers, _ = get(f"{gw.public_url}/oauth/start?user=alice", gw.certs, data=b"x=1")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    long_code = "c" * 5000
    status, _, body = get(f"{gw.public_url}/oauth/callback?code={long_code}&state=x", gw.certs)
    assert status == 400 and "not one this page understands" in page_text(body)


def test_expired_state_refused(fleet, idp):
    g = signin_gateway(fleet, "signin-expiry", ttl_ms=1500)
    idp.config(redirect_uris={CLIENT_ID_DELEGATED: None})  # any: this gateway's is not listed
    try:
        url, cookie = start(g, "dave")
        callback = sign_in_at_idp(url, g.certs, DAVE)
        time.sleep(2)
        status, _, body = get(callback, g.certs, cookie=cookie)
        assert status == 400
        assert "expired or was already used" in page_text(body)
        assert query(g, "SELECT count(*) FROM grants") == [(0,)]
    finally:
        g.stop()


# -- the fake IdP's code grant, on its own ------------------------------------------------------

def test_idp_code_grant_checks(gw, idp):
    """The authorization code grant of the fake Entra ID: verifier, redirect_uri, one use."""
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()
    redirect = gw.public_url + "/oauth/callback"
    idp.config(redirect_uris={CLIENT_ID_DELEGATED: [redirect]})
    base = idp.base
    authorize = base + f"/{TENANT}/oauth2/v2.0/authorize?" + urllib.parse.urlencode({
        "client_id": CLIENT_ID_DELEGATED, "response_type": "code", "redirect_uri": redirect,
        "scope": DELEGATED_SCOPE, "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256", "login_hint": DAVE})
    callback = sign_in_at_idp(authorize, gw.certs, DAVE)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(callback).query)["code"][0]

    def redeem(**changes):
        form = {"grant_type": "authorization_code", "client_id": CLIENT_ID_DELEGATED,
                "code": code, "redirect_uri": redirect, "code_verifier": verifier,
                "scope": DELEGATED_SCOPE, **changes}
        status, _, body = get(base + f"/{TENANT}/oauth2/v2.0/token", gw.certs,
                              data=urllib.parse.urlencode(form).encode())
        return status, body

    assert "AADSTS501481" in redeem(code_verifier="w" * 43)[1]
    assert "AADSTS50011" in redeem(redirect_uri=redirect + "x")[1]
    status, body = redeem()
    assert status == 200 and "refresh_token" in body
    assert "AADSTS54005" in redeem()[1]
    # a redirect_uri the app has not registered: Entra's own error page, no redirect
    evil = authorize.replace(urllib.parse.quote(redirect, safe=""),
                             urllib.parse.quote("https://evil.example/", safe=""))
    status, _, page = get(evil, gw.certs)
    assert status == 400 and "AADSTS50011" in page
