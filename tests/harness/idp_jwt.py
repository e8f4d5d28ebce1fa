"""JWS pieces shared by the fake IdP (tests/harness/idp*.py) and the tests: base64url, RSA
signing keys with a JWKS entry, RS256/PS256 verification, key loading from PEM.

Uses python3-cryptography (Debian package) so no openssl process runs per request.
"""
import base64
import datetime
import functools
import hashlib
import json

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def split_jws(token):
    """(header, claims, signing_input, signature) of a compact JWS; ValueError if malformed."""
    try:
        h64, c64, s64 = token.split(".")
        header, claims = json.loads(b64url_decode(h64)), json.loads(b64url_decode(c64))
        signature = b64url_decode(s64)
    except (ValueError, TypeError, AttributeError) as e:
        raise ValueError("malformed JWS") from e
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("malformed JWS")
    return header, claims, f"{h64}.{c64}".encode(), signature


def sign_rs256(private_key, header, claims):
    """Compact JWS of claims, signed RS256 with a cryptography RSA private key."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}".encode()
    signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode() + "." + b64url(signature)


def sign_rs256_pem(private_key_pem, header, claims):
    """sign_rs256 with a PEM private key (a Google service account's "private_key")."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return sign_rs256(key, header, claims)


@functools.lru_cache(maxsize=64)
def public_key_of(pem):
    """The RSA public key of a PEM certificate or PEM public key."""
    if "CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem.encode()).public_key()
    return serialization.load_pem_public_key(pem.encode())


@functools.lru_cache(maxsize=64)
def cert_thumbprints(pem):
    """{"x5t", "x5t#S256"} of a PEM certificate (base64url SHA-1 / SHA-256 of its DER)."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return {"x5t": b64url(hashlib.sha1(der).digest()),
            "x5t#S256": b64url(hashlib.sha256(der).digest())}


def rsa_verify(public_key, alg, signing_input, signature):
    """True when signature (RS256, or PS256 with salt = digest length) verifies."""
    if alg == "RS256":
        pad = padding.PKCS1v15()
    elif alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        return False
    try:
        public_key.verify(signature, signing_input, pad, hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def _int_b64url(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class SigningKey:
    """A fresh RSA-2048 key with a self-signed certificate, as an IdP publishes in its JWKS.
    kid = x5t = base64url SHA-1 of the certificate, as Entra ID does."""

    def __init__(self, common_name):
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.private_key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=365))
                     .sign(self.private_key, hashes.SHA256()))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.kid = b64url(hashlib.sha1(self.der).digest())

    def sign(self, header, claims):
        return sign_rs256(self.private_key, {**header, "kid": self.kid}, claims)

    def jwk(self, **extra):
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                "n": _int_b64url(numbers.n), "e": _int_b64url(numbers.e),
                "x5c": [base64.b64encode(self.der).decode()], **extra}


def jwk_public_key(jwk):
    """The RSA public key of a JWKS entry (tests verify issued tokens with it)."""
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()
