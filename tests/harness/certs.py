"""Test certificates made with the openssl CLI, cached in a directory.

- ca.pem / ca.key: the test CA (mailgate's ca_file; clients trust it)
- server.pem / server.key: DNS:localhost + IP:127.0.0.1, signed by the CA (Dovecot and the
  gateway's own [tls]); fullchain.pem = server cert + CA cert
- server-ecdsa.pem / server-ecdsa.key: the same names with an ECDSA P-256 key (made with the
  command README's [tls] section recommends), signed by the CA; fullchain-ecdsa.pem with the CA
- rogue.pem / rogue.key: self-signed, same names, NOT signed by the CA (bad-certificate case)
- app.pem / app.key: the app registration's certificate credential (self-signed, CN=mailgate,
  registered with the fake IdP); app-other.pem / app-other.key: one that is not registered
- google-sa.pem / google-sa.key: the Google service account's key pair (PKCS#8 key, as in a
  Google JSON key file; the fake IdP gets the certificate)
"""
import os
import subprocess
import sys
from dataclasses import dataclass

try:
    from .owner import share_with_gateway_user
except ImportError:  # run as a script
    from owner import share_with_gateway_user

SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1"


@dataclass
class CertSet:
    dir: str
    ca: str
    ca_key: str
    cert: str
    key: str
    fullchain: str
    rogue_cert: str
    rogue_key: str
    app_cert: str = None
    app_key: str = None
    app_other_cert: str = None
    app_other_key: str = None
    google_sa_cert: str = None
    google_sa_key: str = None
    ecdsa_cert: str = None
    ecdsa_key: str = None
    ecdsa_fullchain: str = None


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def _make_ca(d):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "30", "-subj", "/CN=mailgate test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _sign_server(d, name, chain):
    """Signs name.csr with the test CA; chain = leaf + CA certificate."""
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write(SAN + "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "30", "-extfile", "server.ext",
             cwd=d)
    with open(os.path.join(d, chain), "w") as out:
        for part in (f"{name}.pem", "ca.pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())


def _make_server(d):
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=d)
    _sign_server(d, "server", "fullchain.pem")


def _make_server_ecdsa(d):
    """The key and request README's [tls] section tells administrators to make."""
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "server-ecdsa.key", "-out", "server-ecdsa.csr", "-subj", "/CN=localhost",
             cwd=d)
    _sign_server(d, "server-ecdsa", "fullchain-ecdsa.pem")


def _make_rogue(d):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out",
             "rogue.pem", "-days", "30", "-subj", "/CN=localhost", "-addext", SAN, cwd=d)


def _make_app_cert(d, name):
    """What the README tells administrators to run for a certificate credential."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-keyout", f"{name}.key", "-out",
             f"{name}.pem", "-days", "730", "-nodes", "-subj", "/CN=mailgate", cwd=d)


def sign_for_names(certs, directory, stem, names, days=30):
    """A key and certificate for DNS names, signed by the test CA, valid for days (made once in
    directory as STEM.key / STEM.pem) and readable by the gateway: a [domain]'s own certificate
    for its web names. Returns (certificate, key)."""
    os.makedirs(directory, exist_ok=True)
    key, csr, pem, ext = (os.path.join(directory, f"{stem}.{n}") for n in ("key", "csr", "pem", "ext"))
    if not os.path.exists(pem):
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names)
                    + "\nextendedKeyUsage=serverAuth\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
                 f"/CN={names[0]}", cwd=directory)
        _openssl("x509", "-req", "-in", csr, "-CA", certs.ca, "-CAkey", certs.ca_key,
                 "-CAcreateserial", "-out", pem, "-days", str(days), "-extfile", ext,
                 cwd=directory)
    for path in (key, pem):
        share_with_gateway_user(path)
    return pem, key


def make_certs(directory):
    """Creates (or reuses) the certificate set in directory."""
    os.makedirs(directory, exist_ok=True)
    cs = CertSet(dir=directory, ca=os.path.join(directory, "ca.pem"),
                 ca_key=os.path.join(directory, "ca.key"),
                 cert=os.path.join(directory, "server.pem"),
                 key=os.path.join(directory, "server.key"),
                 fullchain=os.path.join(directory, "fullchain.pem"),
                 rogue_cert=os.path.join(directory, "rogue.pem"),
                 rogue_key=os.path.join(directory, "rogue.key"))
    if not os.path.exists(cs.ca):
        _make_ca(directory)
    if not os.path.exists(cs.fullchain):
        _make_server(directory)
    if not os.path.exists(cs.rogue_cert):
        _make_rogue(directory)
    cs.ecdsa_cert, cs.ecdsa_key, cs.ecdsa_fullchain = (
        os.path.join(directory, n)
        for n in ("server-ecdsa.pem", "server-ecdsa.key", "fullchain-ecdsa.pem"))
    if not os.path.exists(cs.ecdsa_fullchain):
        _make_server_ecdsa(directory)
    for name in ("app", "app-other", "google-sa"):
        if not os.path.exists(os.path.join(directory, f"{name}.pem")):
            _make_app_cert(directory, name)
    cs.app_cert, cs.app_key = (os.path.join(directory, n) for n in ("app.pem", "app.key"))
    cs.app_other_cert, cs.app_other_key = (os.path.join(directory, n)
                                           for n in ("app-other.pem", "app-other.key"))
    cs.google_sa_cert, cs.google_sa_key = (os.path.join(directory, n)
                                           for n in ("google-sa.pem", "google-sa.key"))
    # Keys are read by Dovecot's config process and by a possibly unprivileged gateway.
    for k in (cs.key, cs.rogue_key, cs.ecdsa_key):
        os.chmod(k, 0o644)
    # Credentials of the app registrations: the broker's alone (group [gateway] user).
    for k in (cs.app_key, cs.app_other_key, cs.google_sa_key):
        share_with_gateway_user(k)
    return cs


if __name__ == "__main__":
    print(make_certs(sys.argv[1] if len(sys.argv) > 1 else "certs"))
