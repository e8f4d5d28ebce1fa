"""The tests' side of the fake IdP (idp.py): control API, token requests of every grant,
JWKS, Google service account assertions."""
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from .idp_entra import GOOD_SCOPES
from .idp_google import JWT_BEARER_GRANT, MAIL_SCOPE
from .idp_jwt import sign_rs256_pem

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE = "https://outlook.office365.com/"
# what a delegated (user) client asks Entra ID for
DELEGATED_SCOPE = " ".join([EXCHANGE + "IMAP.AccessAsUser.All", EXCHANGE + "POP.AccessAsUser.All",
                            EXCHANGE + "SMTP.Send", "offline_access"])


class IdpClient:
    """Talks to a running fake IdP: control API and (for direct upstream logins) the token
    endpoints. Request methods return (HTTP status, JSON body)."""

    def __init__(self, port, intro_port, ca_file):
        self.port, self.intro_port = port, intro_port
        self.base = f"https://127.0.0.1:{port}"
        self.ctx = ssl.create_default_context(cafile=ca_file)

    def _request(self, path, body=None, form=False, timeout=10):
        data = None
        headers = {}
        if body is not None:
            if form:
                body = {k: v for k, v in body.items() if v is not None}
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

    # -- control --------------------------------------------------------------------------------
    def stats(self):
        return self._request("/_control/stats")[1]

    def reset(self):
        return self._request("/_control/reset", {})[1]

    def fault(self, **spec):
        """fault(status=503, count=-1, retry_after=5, delay=2.0, drop=True,
        path_contains="devicecode"); fault() clears."""
        return self._request("/_control/fault", spec)[1]

    def config(self, **changes):
        return self._request("/_control/config", changes)[1]

    def issued_tokens(self, google=False):
        """Every Entra access token (or with google=True every Google one) the IdP has issued
        (and not revoked) since its last reset."""
        return self._request("/_control/tokens", {})[1]["google_tokens" if google else "tokens"]

    def refresh_tokens(self):
        """{mailbox: number of valid Entra refresh tokens}."""
        return self._request("/_control/refresh_tokens")[1]

    def google_refresh_tokens(self):
        return self._request("/_control/google_refresh_tokens")[1]

    def device_codes(self):
        return self._request("/_control/device_codes")[1]

    def device_action(self, action, user=None, user_code=None):
        """Approve/deny a device code like the user in the browser (default: newest)."""
        return self._request("/_control/device", {"action": action, "user": user,
                                                  "user_code": user_code})

    def device_auto(self, action, user=None, after=0):
        return self._request("/_control/device_auto", {"action": action, "user": user,
                                                       "after": after})

    def google_refresh_token(self, client_id, mailbox):
        status, body = self._request("/_control/google_refresh",
                                     {"client_id": client_id, "mailbox": mailbox})
        if status != 200:
            raise RuntimeError(f"google_refresh failed: {body}")
        return body["refresh_token"]

    # -- Entra ID -------------------------------------------------------------------------------
    def jwks(self, tenant):
        return self._request(f"/{tenant}/discovery/v2.0/keys")

    def token_request(self, tenant, client_id, client_secret, scope=GOOD_SCOPES[0],
                      grant_type="client_credentials", **fields):
        return self._request(f"/{tenant}/oauth2/v2.0/token",
                             {"grant_type": grant_type, "client_id": client_id,
                              "client_secret": client_secret, "scope": scope, **fields},
                             form=True)

    def token(self, tenant, client_id, client_secret):
        status, body = self.token_request(tenant, client_id, client_secret)
        if status != 200:
            raise RuntimeError(f"token request failed: {status} {body.get('error')}")
        return body["access_token"]

    def device_code_request(self, tenant, client_id, scope=DELEGATED_SCOPE, client_secret=None):
        return self._request(f"/{tenant}/oauth2/v2.0/devicecode",
                             {"client_id": client_id, "scope": scope,
                              "client_secret": client_secret}, form=True)

    def device_poll(self, tenant, client_id, device_code, client_secret=None):
        return self.token_request(tenant, client_id, client_secret, scope=None,
                                  grant_type=DEVICE_GRANT, device_code=device_code)

    def password_request(self, tenant, client_id, username, password, scope=DELEGATED_SCOPE,
                         client_secret=None):
        return self.token_request(tenant, client_id, client_secret, scope=scope,
                                  grant_type="password", username=username, password=password)

    def refresh_request(self, tenant, client_id, refresh_token, scope=None, client_secret=None):
        return self.token_request(tenant, client_id, client_secret, scope=scope,
                                  grant_type="refresh_token", refresh_token=refresh_token)

    # -- Google ---------------------------------------------------------------------------------
    def google_jwks(self):
        return self._request("/google/oauth2/v3/certs")

    def google_token_request(self, **form):
        return self._request("/google/token", form, form=True)

    def google_jwt_grant(self, sa_key, sub, scope=MAIL_SCOPE, header=None, **claims):
        """A service account assertion (sa_key: the parsed JSON key file) for sub, posted
        to /google/token. header/claims override the usual ones (None drops a claim)."""
        return self.google_token_request(grant_type=JWT_BEARER_GRANT,
                                         assertion=google_assertion(sa_key, sub, scope, header,
                                                                    **claims))

    def google_refresh_request(self, client_id, client_secret, refresh_token):
        return self.google_token_request(grant_type="refresh_token", client_id=client_id,
                                         client_secret=client_secret,
                                         refresh_token=refresh_token)

    def introspect(self, token, service="imap"):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.intro_port}/introspect",
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"X-Dovecot-Auth-Service": service})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


def google_assertion(sa_key, sub, scope=MAIL_SCOPE, header=None, **claims):
    """The JWT a Google client library makes from a service account key file."""
    now = int(time.time())
    body = {"iss": sa_key["client_email"], "sub": sub, "scope": scope,
            "aud": sa_key["token_uri"], "iat": now, "exp": now + 3600,
            "jti": str(uuid.uuid4())}
    body.update(claims)
    head = {"alg": "RS256", "typ": "JWT", "kid": sa_key["private_key_id"], **(header or {})}
    return sign_rs256_pem(sa_key["private_key"], {k: v for k, v in head.items() if v},
                          {k: v for k, v in body.items() if v is not None})
