"""The fake IdP's user flows and Google side, over HTTPS, and their tokens at Dovecot
(no gateway needed). The IdP is shared by the session: tests put back what they change."""
import imaplib
import json
import os
import stat
import time

import pytest

from harness import stack as S
from harness.dovecot import xoauth2_string
from harness.idp_client import google_assertion
from harness.idp_jwt import jwk_public_key, rsa_verify, split_jws

EXCHANGE = "https://outlook.office365.com/"
POP_ONLY_SCOPE = EXCHANGE + "POP.AccessAsUser.All offline_access"


@pytest.fixture
def saved_config(idp):
    """Tests may change the IdP's settings: the previous ones come back afterwards."""
    before = idp.stats()["config"]
    yield idp
    idp.config(**before)


@pytest.fixture
def device_settings(saved_config):
    """Device code timing for tests (interval 1 s)."""
    saved_config.config(device_interval=1)
    return saved_config


def ropc(idp, mailbox, scope=S.DELEGATED_SCOPE, password=None):
    return idp.password_request(S.TENANT, S.CLIENT_ID_DELEGATED, mailbox,
                                password or S.ENTRA_PASSWORDS[mailbox], scope=scope)


def delegated_token(idp, mailbox, scope=S.DELEGATED_SCOPE):
    status, body = ropc(idp, mailbox, scope)
    assert status == 200, body
    return body


def claims_of(token):
    return split_jws(token)[1]


def assert_aad(answer, status, error, code):
    got_status, body = answer
    assert (got_status, body.get("error"), body.get("error_codes")) == (status, error, [code]), \
        body
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    return body


def new_device_code(idp, client_id=S.CLIENT_ID_DELEGATED, **kw):
    status, body = idp.device_code_request(S.TENANT, client_id, **kw)
    assert status == 200, body
    return body


def poll(idp, code, client_id=S.CLIENT_ID_DELEGATED):
    return idp.device_poll(S.TENANT, client_id, code["device_code"])


# -- signed access tokens -----------------------------------------------------------------------

def test_access_tokens_verify_with_the_jwks(idp):
    status, jwks = idp.jwks(S.TENANT)
    assert status == 200
    keys = {k["kid"]: k for k in jwks["keys"]}
    for token in (idp.token(S.TENANT, S.CLIENT_ID, S.CLIENT_SECRET),
                  delegated_token(idp, S.BOB)["access_token"]):
        header, _, signing_input, signature = split_jws(token)
        jwk = keys[header["kid"]]
        assert jwk["kty"] == "RSA" and jwk["use"] == "sig" and jwk["x5t"] == header["x5t"]
        assert rsa_verify(jwk_public_key(jwk), "RS256", signing_input, signature)
        forged = signing_input.replace(b".", b".e30", 1)  # another payload, same signature
        assert not rsa_verify(jwk_public_key(jwk), "RS256", forged, signature)
    assert idp.jwks("nosuch.onmicrosoft.com")[0] == 404


def test_openid_configuration_names_the_endpoints(idp):
    status, conf = idp._request(f"/{S.TENANT}/v2.0/.well-known/openid-configuration")
    assert status == 200
    assert conf["device_authorization_endpoint"].endswith(f"/{S.TENANT}/oauth2/v2.0/devicecode")
    assert conf["jwks_uri"].endswith(f"/{S.TENANT}/discovery/v2.0/keys")


# -- device code --------------------------------------------------------------------------------

def test_device_code_answer_is_entra_shaped(idp):
    code = new_device_code(idp)
    assert len(code["user_code"]) == 9 and code["user_code"].isalnum()
    assert code["verification_uri"] == "https://microsoft.com/devicelogin"
    config = idp.stats()["config"]
    # the settings of the moment (900 and 5 unless a test changed them)
    assert code["expires_in"] == config["device_code_lifetime"]
    assert code["interval"] == config["device_interval"]
    assert code["message"] == ("To sign in, use a web browser to open the page "
                               "https://microsoft.com/devicelogin and enter the code "
                               f"{code['user_code']} to authenticate.")
    assert len(code["device_code"]) > 100


def test_device_code_approved_gives_delegated_token_once(device_settings):
    idp = device_settings
    before = idp.stats()
    code = new_device_code(idp)
    assert idp.stats()["device_codes_pending"] == before["device_codes_pending"] + 1
    assert_aad(poll(idp, code), 400, "authorization_pending", 70016)
    status, answer = idp.device_action("approve", S.ALICE, user_code=code["user_code"])
    assert status == 200, answer
    time.sleep(1)
    status, body = poll(idp, code)
    assert status == 200, body
    assert body["scope"] == "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send"
    assert body["refresh_token"] and body["expires_in"] == 3599
    claims = claims_of(body["access_token"])
    assert claims["aud"] == "https://outlook.office.com"
    assert claims["scp"] == "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send"
    assert claims["upn"] == claims["unique_name"] == S.ALICE
    assert claims["tid"] == S.TENANT_ID and claims["appid"] == S.CLIENT_ID_DELEGATED
    assert claims["oid"] and "roles" not in claims
    assert_aad(poll(idp, code), 400, "invalid_grant", 54005)  # used up
    after = idp.stats()
    assert after["device_codes_issued"] == before["device_codes_issued"] + 1
    assert after["device_polls"] == before["device_polls"] + 3
    assert after["device_codes_pending"] == before["device_codes_pending"]


def test_device_code_denied_newest_pending(device_settings):
    idp = device_settings
    code = new_device_code(idp)
    assert idp.device_action("deny")[0] == 200  # no user_code: the newest pending code
    assert_aad(poll(idp, code), 400, "authorization_declined", 70000)
    assert idp.device_action("deny", user_code="BBBBBBBBB")[0] == 404


def test_device_code_expires(device_settings):
    idp = device_settings
    idp.config(device_code_lifetime=1)
    code = new_device_code(idp)
    assert code["expires_in"] == 1
    time.sleep(1.2)
    assert_aad(poll(idp, code), 400, "expired_token", 70020)
    assert idp.device_action("approve", S.ALICE, user_code=code["user_code"])[0] == 404


def test_device_code_slow_down_raises_interval(device_settings):
    idp = device_settings
    sent = idp.stats()["slow_down_sent"]
    code = new_device_code(idp)
    assert code["interval"] == 1
    assert_aad(poll(idp, code), 400, "authorization_pending", 70016)  # the first poll
    body = assert_aad(poll(idp, code), 400, "slow_down", 70016)  # at once: too soon
    assert body["interval"] == 6
    time.sleep(1.1)  # the old interval is not enough any more
    assert poll(idp, code)[1]["error"] == "slow_down"
    assert idp.stats()["slow_down_sent"] == sent + 2
    idp.config(force_slow_down=1, device_interval=0)
    forced = new_device_code(idp)
    assert poll(idp, forced)[1]["error"] == "slow_down"
    assert poll(idp, forced)[1]["error"] == "slow_down"  # interval 5 now, polled at once
    assert idp.stats()["slow_down_sent"] == sent + 4


def test_device_auto_approval(device_settings):
    idp = device_settings
    idp.config(device_interval=0)
    assert idp.device_auto("approve", S.BOB, after=0.5)[0] == 200
    code = new_device_code(idp)
    assert poll(idp, code)[1]["error"] == "authorization_pending"
    time.sleep(0.6)
    status, body = poll(idp, code)
    assert status == 200 and claims_of(body["access_token"])["upn"] == S.BOB
    idp.device_auto("deny", after=0)
    assert poll(idp, new_device_code(idp))[1]["error"] == "authorization_declined"
    assert poll(idp, new_device_code(idp))[1]["error"] == "authorization_pending"  # once only


def test_device_code_mfa_user_approves_disabled_user_cannot(device_settings):
    idp = device_settings
    idp.config(device_interval=0)
    code = new_device_code(idp)
    status, answer = idp.device_action("approve", S.FRANK, user_code=code["user_code"])
    assert status == 409 and answer["detail"] == [50057]
    assert idp.device_action("approve", S.ERIN, user_code=code["user_code"])[0] == 200
    status, body = poll(idp, code)  # in the browser ERIN does MFA; ROPC cannot
    assert status == 200 and claims_of(body["access_token"])["amr"] == ["pwd", "mfa"]


def test_device_code_client_errors(idp):
    assert_aad(idp.device_code_request(S.TENANT, "00000000-0000-0000-0000-000000000000"), 400,
               "unauthorized_client", 700016)
    assert_aad(idp.device_code_request(S.TENANT, S.CLIENT_ID), 401, "invalid_client", 7000218)
    assert idp.device_code_request(S.TENANT, S.CLIENT_ID, client_secret=S.CLIENT_SECRET)[0] == 200
    assert_aad(idp.device_code_request(S.TENANT, S.CLIENT_ID_DELEGATED, client_secret="x"), 401,
               "invalid_client", 700025)
    assert_aad(idp.device_poll(S.TENANT, S.CLIENT_ID_DELEGATED, "DAQABnosuchcode"), 400,
               "invalid_grant", 70000)
    assert_aad(idp.device_code_request(S.TENANT, S.CLIENT_ID_DELEGATED,
                                       scope=EXCHANGE + "EWS.AccessAsUser.All"),
               400, "invalid_grant", 65001)
    assert_aad(idp.device_code_request(S.TENANT, S.CLIENT_ID_DELEGATED, scope="offline_access"),
               400, "invalid_scope", 70011)


# -- refresh tokens -----------------------------------------------------------------------------

def test_refresh_rotates_and_old_token_fails(idp):
    first = delegated_token(idp, S.BOB)
    count = idp.refresh_tokens()[S.BOB]
    grants = idp.stats()["refresh_grants"]
    status, second = idp.refresh_request(S.TENANT, S.CLIENT_ID_DELEGATED, first["refresh_token"])
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["upn"] == S.BOB
    assert idp.refresh_tokens()[S.BOB] == count  # one rotated away, one new
    assert_aad(idp.refresh_request(S.TENANT, S.CLIENT_ID_DELEGATED, first["refresh_token"]), 400,
               "invalid_grant", 70000)
    assert idp.stats()["refresh_grants"] == grants + 2
    status, narrow = idp.refresh_request(S.TENANT, S.CLIENT_ID_DELEGATED,
                                         second["refresh_token"], scope=POP_ONLY_SCOPE)
    assert status == 200 and narrow["scope"] == "POP.AccessAsUser.All"


def test_refresh_without_rotation_keeps_old_token(saved_config):
    idp = saved_config
    idp.config(rotate_refresh=False)
    first = delegated_token(idp, S.BOB)
    for _ in range(2):
        status, body = idp.refresh_request(S.TENANT, S.CLIENT_ID_DELEGATED,
                                           first["refresh_token"])
        assert status == 200 and body["refresh_token"] != first["refresh_token"]


def test_revoked_refresh_tokens_fail(idp):
    tokens = [delegated_token(idp, S.DAVE)["refresh_token"] for _ in range(2)]
    assert idp.refresh_tokens()[S.DAVE] >= 2
    idp.config(revoke_refresh=S.DAVE)
    assert idp.refresh_tokens()[S.DAVE] == 0
    for rt in tokens:
        body = assert_aad(idp.refresh_request(S.TENANT, S.CLIENT_ID_DELEGATED, rt), 400,
                          "invalid_grant", 50173)
        assert "revoked" in body["error_description"]
    assert_aad(idp.refresh_request(S.TENANT, S.CLIENT_ID_DELEGATED, "0.AXoAnosuch"), 400,
               "invalid_grant", 70000)


# -- resource owner password credentials --------------------------------------------------------

def test_ropc_good_password(idp):
    before = idp.stats()["password_grants"]
    body = delegated_token(idp, S.ALICE)
    assert body["refresh_token"] and body["token_type"] == "Bearer"
    no_offline = delegated_token(idp, S.ALICE, scope=EXCHANGE + "IMAP.AccessAsUser.All")
    assert "refresh_token" not in no_offline
    assert claims_of(no_offline["access_token"])["scp"] == "IMAP.AccessAsUser.All"
    assert idp.stats()["password_grants"] == before + 2


@pytest.mark.parametrize("mailbox,password,code", [
    (S.ALICE, "wrong-password", 50126),
    (S.ERIN, None, 50076),
    (S.FRANK, None, 50057),
    (S.CAROL, "whatever", 50034),
])
def test_ropc_refusals(idp, mailbox, password, code):
    body = assert_aad(ropc(idp, mailbox, password=password), 400, "invalid_grant", code)
    if code == 50076:
        assert body["suberror"] == "basic_action"
    if code == 50057:
        assert "The user account is disabled." in body["error_description"]


# -- Google -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sa_key(stack, tmp_path_factory):
    path = stack.google_service_account_file(str(tmp_path_factory.mktemp("google")))
    # No one but its owner and (as root) the gateway user's group may read a private key.
    assert stat.S_IMODE(os.stat(path).st_mode) in (0o600, 0o640)
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o007 == 0
    with open(path) as f:
        return json.load(f)


def test_google_service_account_file_format(stack, sa_key):
    assert sa_key["type"] == "service_account" and sa_key["client_email"] == S.GOOGLE_SA_EMAIL
    assert sa_key["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert len(sa_key["private_key_id"]) == 40
    assert sa_key["token_uri"] == f"https://127.0.0.1:{stack.idp.port}/google/token"
    for key in ("project_id", "client_id", "auth_uri", "client_x509_cert_url"):
        assert sa_key[key]


def test_google_jwt_bearer_grant(idp, sa_key):
    before = idp.stats()["google_jwt_grants"]
    status, body = idp.google_jwt_grant(sa_key, S.ALICE)
    assert status == 200, body
    assert body["access_token"].startswith("ya29.") and body["expires_in"] == 3599
    assert body["token_type"] == "Bearer"
    answer = idp.introspect(body["access_token"])
    assert answer["active"] is True and answer["username"] == S.ALICE
    assert idp.stats()["google_jwt_grants"] == before + 1
    assert body["access_token"] in idp.issued_tokens(google=True)
    assert body["access_token"] not in idp.issued_tokens()  # that list is Entra's JWTs


def test_google_jwt_bearer_refusals(idp, sa_key, certs):
    with open(certs.app_key) as f:
        other_key = dict(sa_key, private_key=f.read())
    bad_sig = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    assert idp.google_jwt_grant(other_key, S.ALICE) == bad_sig
    assert idp.google_jwt_grant(sa_key, S.ALICE, header={"kid": "0" * 40}) == bad_sig
    assert idp.google_jwt_grant(sa_key, S.ERIN) == (401, {
        "error": "unauthorized_client", "error_description": "Client is unauthorized to "
        "retrieve access tokens using this method, or client not authorized for any of the "
        "scopes requested."})
    assert idp.google_jwt_grant(sa_key, S.CAROL) == (400, {
        "error": "invalid_grant", "error_description": "Invalid email or User ID"})
    now = int(time.time())
    status, body = idp.google_jwt_grant(sa_key, S.ALICE, iat=now, exp=now + 7200)
    assert status == 400 and "short-lived" in body["error_description"]
    status, body = idp.google_jwt_grant(sa_key, S.ALICE, aud="https://oauth2.googleapis.com/t")
    assert status == 400 and "audience" in body["error_description"]
    status, body = idp.google_jwt_grant(sa_key, S.ALICE,
                                        scope="https://www.googleapis.com/auth/drive")
    assert (status, body["error"]) == (401, "unauthorized_client")
    status, body = idp.google_token_request(
        grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion=google_assertion(dict(sa_key, client_email="nobody@x.iam.gserviceaccount.com"),
                                   S.ALICE))
    assert (status, body["error"]) == (400, "invalid_grant")


def test_google_refresh_tokens_are_not_rotated_and_can_be_revoked(idp):
    rt = idp.google_refresh_token(S.GOOGLE_CLIENT_ID, S.BOB)
    assert rt.startswith("1//0g")
    for _ in range(2):
        status, body = idp.google_refresh_request(S.GOOGLE_CLIENT_ID, S.GOOGLE_CLIENT_SECRET, rt)
        assert status == 200, body
        assert "refresh_token" not in body and body["scope"] == "https://mail.google.com/"
        assert idp.introspect(body["access_token"])["username"] == S.BOB
    status, body = idp.google_refresh_request(S.GOOGLE_CLIENT_ID, "GOCSPX-wrong", rt)
    assert (status, body["error"]) == (401, "invalid_client")
    assert idp.google_refresh_tokens()[S.BOB] >= 1
    idp.config(revoke_refresh=S.BOB)
    assert S.BOB not in idp.google_refresh_tokens()
    assert idp.google_refresh_request(S.GOOGLE_CLIENT_ID, S.GOOGLE_CLIENT_SECRET, rt) == (
        400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})


def test_google_device_code_refuses_mail_scope_and_serves_jwks(idp):
    status, body = idp._request("/google/device/code", {
        "client_id": S.GOOGLE_CLIENT_ID, "scope": "https://mail.google.com/"}, form=True)
    assert (status, body) == (400, {"error": "invalid_scope"})
    status, jwks = idp.google_jwks()
    assert status == 200 and jwks["keys"][0]["kty"] == "RSA" and jwks["keys"][0]["kid"]


# -- the tokens at Dovecot ----------------------------------------------------------------------

def oauthbearer_string(mailbox, token, port):
    return f"n,a={mailbox},\x01host=localhost\x01port={port}\x01auth=Bearer {token}\x01\x01"


def assert_imap_login(dovecot, mailbox, mechanism, response):
    imap = dovecot.connect()
    try:
        typ, _ = imap.authenticate(mechanism, lambda _: response.encode()
                                   if isinstance(response, str) else response)
        assert typ == "OK"
        assert imap.select("INBOX", readonly=True)[0] == "OK"
    finally:
        imap.logout()


def test_dovecot_accepts_delegated_token_xoauth2(stack):
    token = delegated_token(stack.idp.client, S.ALICE)["access_token"]
    assert_imap_login(stack.dovecot, S.ALICE, "XOAUTH2", xoauth2_string(S.ALICE, token))
    assert stack.idp.client.introspect(token, "submission")["active"] is True


def test_dovecot_accepts_google_token_oauthbearer(stack, sa_key):
    status, body = stack.idp.client.google_jwt_grant(sa_key, S.BOB)
    assert status == 200, body
    port = stack.dovecot.imaps_port
    assert_imap_login(stack.dovecot, S.BOB, "OAUTHBEARER",
                      oauthbearer_string(S.BOB, body["access_token"], port))


def test_dovecot_refuses_delegated_token_without_imap_scope(stack):
    token = delegated_token(stack.idp.client, S.DAVE, scope=POP_ONLY_SCOPE)["access_token"]
    imap = stack.dovecot.connect()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.authenticate("XOAUTH2", lambda _: xoauth2_string(S.DAVE, token))
    imap.shutdown()
    stack.dovecot.pop3_xoauth2(S.DAVE, token).quit()  # the POP scope it has works


def test_disabling_a_user_deactivates_delegated_tokens(stack):
    idp = stack.idp.client
    token = delegated_token(idp, S.BOB)["access_token"]
    idp.config(users={S.BOB: {"disabled": True}})
    try:
        assert idp.introspect(token) == {"active": False}
        imap = stack.dovecot.connect()
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate("XOAUTH2", lambda _: xoauth2_string(S.BOB, token))
        imap.shutdown()
    finally:
        idp.config(users={S.BOB: {"disabled": False}})
    assert idp.introspect(token)["active"] is True
