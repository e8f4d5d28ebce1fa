"""The TLS policy towards clients ([tls]): TLS 1.2 only with ECDHE + AEAD suites, TLS 1.3,
min_version, ciphers checked at config load, and RSA + ECDSA certificates side by side, the one
presented chosen by the client's signature algorithms. The client is openssl s_client."""
import re
import subprocess

import pytest

from conftest import try_login

PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def handshake(gw, *args):
    """openssl s_client against the implicit-TLS IMAP listener with args; stdin is empty, so
    it ends right after the handshake. Returns (ok, output)."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{gw.imaps_port}",
                        "-servername", "localhost", "-CAfile", gw.certs.ca,
                        "-verify_return_error", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    out = p.stdout + p.stderr
    ok = p.returncode == 0 and "Cipher is (NONE)" not in out
    return ok, out


def leaf_certificate(output):
    found = PEM.search(output)
    return found.group(0) if found else None


def pem_of(path):
    with open(path) as f:
        return PEM.search(f.read()).group(0)


@pytest.fixture(scope="module")
def dual_gateway(fleet, certs):
    """RSA (certificate) + ECDSA (ecdsa_certificate), default policy."""
    return fleet.new("tls-dual", workers=1, tls_lines=[
        f"ecdsa_certificate = {certs.ecdsa_fullchain}", f"ecdsa_private_key = {certs.ecdsa_key}"])


@pytest.mark.parametrize("cipher", ["AES128-SHA", "AES256-SHA256", "ECDHE-RSA-AES128-SHA"])
def test_tls12_without_forward_secrecy_or_aead_is_refused(dual_gateway, cipher):
    ok, out = handshake(dual_gateway, "-tls1_2", "-cipher", cipher)
    assert not ok, out


def test_tls12_ecdhe_aes_gcm_works(dual_gateway):
    ok, out = handshake(dual_gateway, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert ok, out
    assert re.search(r"Cipher\s*:\s*ECDHE-RSA-AES128-GCM-SHA256", out), out


def test_tls12_server_picks_its_preferred_suite(dual_gateway):
    """The client lists ChaCha20 first; the server's order (AES-GCM first) wins."""
    ok, out = handshake(dual_gateway, "-tls1_2", "-sigalgs", "rsa_pss_rsae_sha256", "-cipher",
                        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256")
    assert ok, out
    assert re.search(r"Cipher\s*:\s*ECDHE-RSA-AES128-GCM-SHA256", out), out


def test_tls13_works(dual_gateway):
    ok, out = handshake(dual_gateway, "-tls1_3")
    assert ok, out
    assert "TLSv1.3" in out, out


@pytest.mark.parametrize("args,expected", [
    (["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"], "ecdsa_cert"),
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], "ecdsa_cert"),
    (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"], "cert"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "cert")])
def test_client_gets_the_certificate_it_can_verify(dual_gateway, certs, args, expected):
    """ECDSA-only clients get the ECDSA certificate, RSA-only ones the RSA certificate."""
    ok, out = handshake(dual_gateway, *args)
    assert ok, out
    assert leaf_certificate(out) == pem_of(getattr(certs, expected)), out


def test_a_login_works_with_both_certificates(dual_gateway):
    assert try_login(dual_gateway).startswith("f1 OK")


def test_min_version_tls13_refuses_tls12(fleet):
    gw = fleet.new("tls-13", users=False, workers=1, tls_lines=["min_version = TLSv1.3"])
    ok, out = handshake(gw, "-tls1_2")
    assert not ok, out
    ok, out = handshake(gw, "-tls1_3")
    assert ok, out


def test_bad_ciphers_fail_check_config_with_file_and_line(fleet):
    gw = fleet.new("tls-bad", users=False, start=False, tls_lines=["ciphers = NOT-A-SUITE"])
    with open(gw.config_path) as f:
        line = next(i for i, text in enumerate(f, 1) if text.startswith("ciphers ="))
    r = gw.cli("check-config")
    assert r.returncode != 0
    assert f"{gw.config_path}:{line}: ciphers: 'NOT-A-SUITE' selects no TLS 1.2 cipher suite" \
        in r.stderr, r.stderr


def test_rsa_certificate_as_ecdsa_is_refused(fleet, certs):
    gw = fleet.new("tls-wrong-type", users=False, start=False, tls_lines=[
        f"ecdsa_certificate = {certs.fullchain}", f"ecdsa_private_key = {certs.key}"])
    r = gw.cli("check-config")
    assert r.returncode != 0
    assert "is not an ECDSA certificate" in r.stderr, r.stderr
