"""`mailgate check DOMAIN` against a real DNS server (a private nsd on 127.0.0.1) and the
gateway's own HTTPS listener: a zone made of exactly what `mailgate dns` prints passes every
item, a broken zone fails the right ones, a resolver that does not answer fails within a bound.
The domain's mail is on Exchange Online (MX contoso-test.mail.protection.outlook.com, policy
pattern *.mail.protection.outlook.com), as in README's "Publishing your domain"."""
import os
import re
import socket
import time

import pytest

from harness.certs import sign_for_names
from harness.gateway import SANITIZER_MARKERS
from harness.nsd import Nsd
from harness.owner import share_with_gateway_user
from harness.procs import free_port, wait_until

EXO_MX = "contoso-test.mail.protection.outlook.com"
LINE = re.compile(r"(PASS|WARN|FAIL)  (.{22})  (.*)")


def domain_section(name, cert, key):
    return "\n".join([
        f"[domain {name}]", f"imap_host = mail.{name}", f"smtp_host = mail.{name}",
        "mta_sts_mode = enforce", "mta_sts_mx = *.mail.protection.outlook.com",
        "mta_sts_max_age = 86400", f"tls_rpt = mailto:tlsrpt@{name}",
        f"certificate = {cert}", f"private_key = {key}", ""])


@pytest.fixture(scope="module")
def checked(fleet, workdir):
    """A gateway with an HTTPS listener and two domains: example.test (its certificate valid
    for 30 days) and broken.test (7 days: near expiry)."""
    certs = fleet.stack.certs
    cert_dir = os.path.join(workdir, "dnscheck-certs")
    good = sign_for_names(certs, cert_dir, "example", ["mta-sts.example.test"])
    broken = sign_for_names(certs, cert_dir, "broken", ["mta-sts.broken.test"], days=7)
    https_port = free_port()
    extra = "\n".join(["", "[listen webs]", "protocol = http", f"address = 127.0.0.1:{https_port}",
                       "tls = implicit", "", domain_section("example.test", *good),
                       domain_section("broken.test", *broken)])
    gw = fleet.new("dnscheck", users=False, protocols=("imap", "smtp"), extra=extra)
    gw.https_port = https_port
    wait_until(lambda: socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
               or True, timeout=10, what="https listener")
    return gw


def published(gw, domain):
    """The records `mailgate dns DOMAIN` prints, as zone-file lines."""
    r = gw.cli("dns", domain)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line and not line.startswith(";")]


def good_zone(gw):
    return published(gw, "example.test") + [
        "mail.example.test. IN A 127.0.0.1", f"example.test. IN MX 10 {EXO_MX}."]


def broken_zone(gw):
    """Wrong id, an MX host the policy does not cover, a TLS-RPT record without mailto:, the
    implicit-TLS IMAP SRV record at another host, no autoconfig."""
    out = []
    for line in published(gw, "broken.test"):
        if line.startswith("autoconfig."):
            continue
        if line.startswith("_mta-sts."):
            line = '_mta-sts.broken.test. 3600 IN TXT "v=STSv1; id=20260101000000"'
        elif line.startswith("_smtp._tls."):
            line = '_smtp._tls.broken.test. 3600 IN TXT "v=TLSRPTv1; rua=tlsrpt@broken.test"'
        elif line.startswith("_imaps._tcp."):
            line = line.replace("mail.broken.test.", "imap.elsewhere.example.")
        out.append(line)
    return out + ["mail.broken.test. IN A 127.0.0.1", "broken.test. IN MX 10 mx1.broken.test.",
                  f"broken.test. IN MX 20 {EXO_MX}.", "mx1.broken.test. IN A 127.0.0.2"]


@pytest.fixture(scope="module")
def dns(checked, workdir):
    server = Nsd(os.path.join(workdir, "nsd"), {
        "example.test": "\n".join(good_zone(checked)),
        "broken.test": "\n".join(broken_zone(checked)),
        # a domain the running gateway does not serve: its [tls] certificate (localhost) answers
        "stale.test": "mail.stale.test. IN A 127.0.0.1\nmta-sts.stale.test. IN CNAME mail.stale.test."
    }).start()
    yield server
    server.stop()


def run_check(gw, domain, resolver, config=None):
    started = time.monotonic()
    r = gw.cli("check", domain, "--resolver", resolver, "--ca-file", gw.certs.ca,
               "--https-port", str(gw.https_port), timeout=60, config=config)
    r.elapsed = time.monotonic() - started
    assert not any(m in r.stderr for m in SANITIZER_MARKERS), r.stderr
    r.items = {}
    for line in r.stdout.splitlines():
        m = LINE.fullmatch(line)
        if m:
            r.items[m.group(2).strip()] = (m.group(1), m.group(3))
    return r


def verdicts(r):
    return {item: v for item, (v, _) in r.items.items()}


def test_correct_zone_all_pass(checked, dns):
    r = run_check(checked, "example.test", dns.address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(verdicts(r).values()) == {"PASS"}, r.stdout
    assert set(r.items) >= {"gateway address", "SRV _imaps._tcp", "SRV _imap._tcp",
                            "SRV _submissions._tcp", "SRV _submission._tcp", "autoconfig",
                            "mta-sts address", "_mta-sts TXT", "policy fetch", "certificate",
                            "policy id", "policy mx", "_smtp._tls TXT"}, r.stdout
    assert r.items["gateway address"][1] == "mail.example.test: 127.0.0.1"
    assert f"{EXO_MX} (*.mail.protection.outlook.com)" in r.items["policy mx"][1]
    assert "mode enforce, 1 mx, max_age 86400" in r.items["policy fetch"][1]
    assert re.search(r"valid until \S+ \((29|30) days\)", r.items["certificate"][1])
    dns_id = re.search(r"id=(\w+)", "\n".join(published(checked, "example.test"))).group(1)
    assert r.items["policy id"][1].startswith(f"id={dns_id}: the served policy")
    assert r.stdout.rstrip().endswith(f"example.test: {len(r.items)} pass, 0 warn, 0 fail")


def test_broken_zone_lists_the_right_fails(checked, dns):
    r = run_check(checked, "broken.test", dns.address)
    assert r.returncode == 1, r.stdout + r.stderr
    got = verdicts(r)
    fails = {item for item, v in got.items() if v == "FAIL"}
    assert fails == {"SRV _imaps._tcp", "autoconfig", "policy id", "policy mx",
                     "_smtp._tls TXT"}, r.stdout
    assert got["certificate"] == "WARN" and "renew" in r.items["certificate"][1]
    for item in ("gateway address", "SRV _imap._tcp", "SRV _submissions._tcp", "mta-sts address",
                 "_mta-sts TXT", "policy fetch"):
        assert got[item] == "PASS", r.stdout
    records = published(checked, "broken.test")
    srv = next(x for x in records if x.startswith("_imaps._tcp."))
    assert r.items["SRV _imaps._tcp"][1] == (
        f"points at imap.elsewhere.example:{checked.port('imaps')}, not "
        f"mail.broken.test:{checked.port('imaps')}; publish: {srv}")
    assert r.items["autoconfig"][1] == (
        "autoconfig.broken.test: no such name (NXDOMAIN); publish: "
        "autoconfig.broken.test. 3600 IN CNAME mail.broken.test.")
    sts = next(x for x in records if x.startswith("_mta-sts."))
    assert r.items["policy id"][1].startswith("TXT id=20260101000000, the policy's id is ")
    assert sts in r.items["policy id"][1] and "may go out now" in r.items["policy id"][1]
    assert "do not cover: mx1.broken.test;" in r.items["policy mx"][1]
    assert EXO_MX not in r.items["policy mx"][1]  # covered: not listed
    tlsrpt = next(x for x in records if x.startswith("_smtp._tls."))
    assert r.items["_smtp._tls TXT"][1] == (
        '"v=TLSRPTv1; rua=tlsrpt@broken.test": use a mailto: or an https:// URI; publish: '
        + tlsrpt)
    assert r.stdout.rstrip().endswith("broken.test: 7 pass, 1 warn, 5 fail")


def test_silent_resolver_fails_within_bounds(checked):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives the queries, never answers
        r = run_check(checked, "example.test", f"127.0.0.1:{silent.getsockname()[1]}")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.elapsed < 15, r.elapsed
    got = verdicts(r)
    assert got["gateway address"] == "FAIL" and got["_mta-sts TXT"] == "FAIL", r.stdout
    assert "no answer from the resolver within the time limit" in r.items["_mta-sts TXT"][1]
    assert "publish" not in r.items["_mta-sts TXT"][1]  # the record may well exist
    assert "not fetched" in r.items["policy fetch"][1]
    assert "PASS" not in got.values()


def test_usage_errors(checked, dns):
    assert checked.cli("check").returncode == 2
    assert checked.cli("check", "example.test", "--https-port", "0").returncode == 2
    r = checked.cli("check", "example.test", "--resolver", "not-an-address")
    assert r.returncode == 2 and "--resolver not-an-address" in r.stderr
    r = checked.cli("check", "unknown.test", "--resolver", dns.address)
    assert r.returncode == 1 and "no [domain unknown.test]" in r.stderr



def edited_config(gw, tmp_path, old, new):
    """The gateway's configuration with one change, in a file of its own: what the CLI reads
    after an edit the running gateway has not loaded."""
    with open(gw.config_path) as f:
        text = f.read()
    assert old in text
    path = tmp_path / "edited.conf"
    path.write_text(text.replace(old, new, 1))
    share_with_gateway_user(str(path))
    return str(path)


def test_policy_changed_but_not_reloaded(checked, dns, tmp_path):
    conf = edited_config(checked, tmp_path, "mta_sts_mode = enforce", "mta_sts_mode = testing")
    r = run_check(checked, "example.test", dns.address, config=conf)
    assert r.returncode == 1, r.stdout + r.stderr
    fails = {item for item, (v, _) in r.items.items() if v == "FAIL"}
    assert fails == {"policy id"}, r.stdout
    detail = r.items["policy id"][1]
    assert "is not [domain example.test]'s" in detail and "reload the gateway" in detail
    new_id = re.search(r'publish: _mta-sts\.example\.test\. 3600 IN TXT "v=STSv1; id=(\w+)"',
                       detail).group(1)
    assert f"id={new_id}" in checked.cli("dns", "example.test", config=conf).stdout
    assert "mode enforce" in r.items["policy fetch"][1]  # still the running policy


def test_certificate_for_another_name_fails(checked, dns, tmp_path):
    conf = edited_config(checked, tmp_path, "[domain broken.test]",
                         "[domain stale.test]\nimap_host = mail.stale.test\n"
                         "mta_sts_mode = testing\nmta_sts_mx = mail.stale.test\n\n"
                         "[domain broken.test]")
    r = run_check(checked, "stale.test", dns.address, config=conf)
    assert r.returncode == 1
    assert r.items["mta-sts address"][0] == "PASS", r.stdout
    assert r.items["policy fetch"] == (
        "FAIL", f"https://mta-sts.stale.test:{checked.https_port}/.well-known/mta-sts.txt: the "
        "certificate was refused")
    verdict, detail = r.items["certificate"]
    assert verdict == "FAIL" and "mta-sts.stale.test" in detail, r.stdout
    assert "no alternative certificate subject name matches" in detail
    assert "policy id" not in r.items  # no _mta-sts record to compare
