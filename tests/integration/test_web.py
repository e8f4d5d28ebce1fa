"""The web side: http listeners (evhttp, plain and TLS), autoconfig for Thunderbird, Outlook
and Apple devices, the MTA-STS policy, and `mailgate dns`. Every document is fetched with curl
and parsed here (xml.etree, plistlib); each server entry is checked against the config."""
import os
import plistlib
import re
import signal
import socket
import ssl
import subprocess
import xml.etree.ElementTree as ET

import pytest

from harness.certs import sign_for_names
from harness.owner import share_with_gateway_user
from harness.procs import free_port, wait_until

ADDRESS = "alice@example.com"
POLICY = ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
          "mx: *.mail.protection.outlook.com\r\nmax_age: 86400\r\n")
AD_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
AD_ACCOUNT_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
AD_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


def mta_sts_cert(certs, directory, names=("mta-sts.example.com",)):
    """A certificate for mta-sts.example.com (or names) signed by the test CA: the [domain]'s
    own."""
    return sign_for_names(certs, directory, "mta-sts", list(names))


def domain_sections(cert, key, policy_lines=None):
    policy = policy_lines or ["mta_sts_mode = enforce",
                              "mta_sts_mx = mail.example.com, *.mail.protection.outlook.com",
                              "mta_sts_max_age = 86400"]
    return "\n".join([
        "[domain example.com]", "imap_host = imap.example.com", "pop3_host = pop.example.com:995",
        "smtp_host = smtp.example.com", "display_name = Example & Co <mail>", *policy,
        "tls_rpt = mailto:tlsrpt@example.com, https://report.example.com/tlsrpt",
        "autodiscover = on", f"certificate = {cert}", f"private_key = {key}", "",
        "[domain other.org]", "imap_host = mail.other.org", "smtp_host = mail.other.org:587", ""])


def web_extra(http_port, https_port, cert, key, policy_lines=None):
    return "\n".join([
        "", "[listen web]", "protocol = http", f"address = 127.0.0.1:{http_port}", "tls = none", "",
        "[listen webs]", "protocol = http", f"address = 127.0.0.1:{https_port}", "tls = implicit",
        "", domain_sections(cert, key, policy_lines)])


@pytest.fixture(scope="module")
def web(fleet, workdir):
    cert, key = mta_sts_cert(fleet.stack.certs, os.path.join(workdir, "web-certs"))
    http_port, https_port = free_port(), free_port()
    gw = fleet.new("web", users=False, protocols=("imap", "pop3", "smtp"),
                   extra=web_extra(http_port, https_port, cert, key))
    gw.http_port, gw.https_port, gw.domain_cert, gw.domain_key = http_port, https_port, cert, key
    wait_until(lambda: "listener=web" in gw.log_text() or probe(gw), timeout=10,
               what="http listener")
    return gw


def probe(gw):
    try:
        socket.create_connection(("127.0.0.1", gw.http_port), timeout=1).close()
        return True
    except OSError:
        return False


def curl(gw, path, host="localhost", tls=False, args=(), data=None, method=None):
    """(status, headers {lower-case name: value}, body bytes) of one request with curl."""
    port = gw.https_port if tls else gw.http_port
    url = f"{'https' if tls else 'http'}://{host}:{port}{path}"
    cmd = ["curl", "-sS", "-i", "--max-time", "10", "--cacert", gw.certs.ca,
           "--resolve", f"{host}:{port}:127.0.0.1", *args]
    if data is not None:
        cmd += ["--data-binary", "@-", "-H", "Content-Type: text/xml"]
    if method:
        cmd += ["-X", method]
    r = subprocess.run(cmd + [url], input=data.encode() if data is not None else None,
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr.decode()
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


# -- Thunderbird ----------------------------------------------------------------------------


def expected_servers(gw):
    """The servers of [domain example.com] as the config and the listeners define them."""
    return {"imap": ("imap.example.com", gw.port("imaps"), "SSL"),
            "pop3": ("pop.example.com", 995, "SSL"),
            "smtp": ("smtp.example.com", gw.port("smtps"), "SSL")}


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("path", ["/mail/config-v1.1.xml",
                                  "/.well-known/autoconfig/mail/config-v1.1.xml"])
def test_thunderbird_config(web, tls, path):
    status, headers, body = curl(web, f"{path}?emailaddress=alice%40example.com", tls=tls)
    assert status == 200, body
    assert headers["content-type"].startswith("text/xml")
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider.get("id") == "example.com"
    assert provider.findtext("domain") == "example.com"
    assert provider.findtext("displayName") == "Example & Co <mail>"
    servers = {}
    for tag in ("incomingServer", "outgoingServer"):
        for s in provider.findall(tag):
            assert s.findtext("username") == "%EMAILADDRESS%"
            assert s.findtext("authentication") == "password-cleartext"
            servers[s.get("type")] = (s.findtext("hostname"), int(s.findtext("port")),
                                      s.findtext("socketType"))
    assert servers == expected_servers(web)
    assert [s.get("type") for s in provider.findall("outgoingServer")] == ["smtp"]


def test_thunderbird_starttls_and_other_domain(web):
    status, _, body = curl(web, "/mail/config-v1.1.xml?emailaddress=bob%40Other.org")
    assert status == 200
    provider = ET.fromstring(body).find("emailProvider")
    assert provider.get("id") == "other.org" and provider.findtext("displayName") == "other.org"
    incoming = provider.findall("incomingServer")
    assert [(s.get("type"), s.findtext("hostname"), int(s.findtext("port")),
             s.findtext("socketType")) for s in incoming] == [
        ("imap", "mail.other.org", web.port("imaps"), "SSL")]
    smtp = provider.find("outgoingServer")
    assert (smtp.findtext("port"), smtp.findtext("socketType")) == ("587", "STARTTLS")


def test_thunderbird_without_address_uses_the_host(web):
    status, _, body = curl(web, "/.well-known/autoconfig/mail/config-v1.1.xml",
                           host="autoconfig.other.org")
    assert status == 200
    assert ET.fromstring(body).find("emailProvider").get("id") == "other.org"
    status, _, _ = curl(web, "/mail/config-v1.1.xml", host="autoconfig.unknown.net")
    assert status == 400


@pytest.mark.parametrize("query,status", [
    ("emailaddress=alice%40unknown.net", 404),
    ("emailaddress=not-an-address", 400),
    ("emailaddress=a%40b%40example.com", 400),
    ("emailaddress=%3Cscript%3E%40example.com", 400),
    ("emailaddress=alice%40example..com", 400),
])
def test_thunderbird_refuses(web, query, status):
    got, headers, body = curl(web, f"/mail/config-v1.1.xml?{query}")
    assert got == status, body
    assert b"<script" not in body


# -- Outlook --------------------------------------------------------------------------------


def autodiscover(web, address, path="/autodiscover/autodiscover.xml", tls=True):
    return curl(web, path, tls=tls, data=AD_REQUEST.format(address=address))


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml",
                                  "/Autodiscover/Autodiscover.xml", "/AUTODISCOVER/autodiscover.XML"])
def test_outlook_autodiscover(web, path):
    status, headers, body = autodiscover(web, ADDRESS, path)
    assert status == 200, body
    assert headers["content-type"].startswith("text/xml")
    root = ET.fromstring(body)
    assert root.tag == AD_NS + "Autodiscover"
    account = root.find(f"{AD_ACCOUNT_NS}Response/{AD_ACCOUNT_NS}Account")
    assert account.findtext(AD_ACCOUNT_NS + "AccountType") == "email"
    assert account.findtext(AD_ACCOUNT_NS + "Action") == "settings"
    got = {}
    for p in account.findall(AD_ACCOUNT_NS + "Protocol"):
        t = lambda name: p.findtext(AD_ACCOUNT_NS + name)
        assert t("SPA") == "off" and t("SSL") == "on" and t("LoginName") == ADDRESS
        assert t("Encryption") == "SSL"
        got[t("Type").lower()] = (t("Server"), int(t("Port")), "SSL")
    assert got == expected_servers(web)


def test_autodiscover_off_is_404(web):
    status, _, _ = autodiscover(web, "bob@other.org")
    assert status == 404


@pytest.mark.parametrize("body", [
    "<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress></Request>",
    "not xml at all",
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "alice@example.com">]>'
    "<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>",
    "",
])
def test_autodiscover_bad_xml_is_400(web, body):
    status, _, _ = curl(web, "/autodiscover/autodiscover.xml", tls=True, data=body)
    assert status == 400


def test_autodiscover_refuses(web):
    assert autodiscover(web, "alice@unknown.net")[0] == 404
    assert autodiscover(web, "no address")[0] == 400
    assert curl(web, "/autodiscover/autodiscover.xml")[0] == 405


# -- Apple ----------------------------------------------------------------------------------


def test_apple_mobileconfig(web):
    status, headers, body = curl(web, "/email.mobileconfig?email=alice%40example.com", tls=True)
    assert status == 200, body
    assert headers["content-type"] == "application/x-apple-aspen-config"
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    (mail,) = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == ADDRESS
    assert mail["EmailAccountDescription"] == "Example & Co <mail>"
    imap, smtp = expected_servers(web)["imap"], expected_servers(web)["smtp"]
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == imap[:2]
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == smtp[:2]
    assert mail["IncomingMailServerUseSSL"] is True and mail["OutgoingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == ADDRESS
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    # the same address gets the same UUIDs: installing again replaces the account
    again = plistlib.loads(curl(web, "/email.mobileconfig?email=alice%40example.com")[2])
    assert again["PayloadUUID"] == profile["PayloadUUID"]
    other = plistlib.loads(curl(web, "/email.mobileconfig?email=bob%40example.com")[2])
    assert other["PayloadUUID"] != profile["PayloadUUID"]


def test_apple_refuses(web):
    assert curl(web, "/email.mobileconfig?email=x%40unknown.net")[0] == 404
    assert curl(web, "/email.mobileconfig?email=nonsense")[0] == 400
    assert curl(web, "/email.mobileconfig")[0] == 400


# -- MTA-STS --------------------------------------------------------------------------------


def test_mta_sts_policy_byte_exact_with_domain_certificate(web):
    # verified against the domain's own certificate, chosen by SNI
    status, headers, body = curl(web, "/.well-known/mta-sts.txt", host="mta-sts.example.com",
                                 tls=True)
    assert status == 200
    assert body == POLICY.encode()
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert "location" not in headers


def test_mta_sts_only_on_its_host(web):
    assert curl(web, "/.well-known/mta-sts.txt", tls=True)[0] == 404
    assert curl(web, "/.well-known/mta-sts.txt", tls=True, args=("-H", "Host: example.com"))[0] == 404
    # the policy host named only in the Host header (SNI localhost) gets the policy too
    assert curl(web, "/.well-known/mta-sts.txt", args=("-H", "Host: MTA-STS.example.com."))[2] \
        == POLICY.encode()
    assert curl(web, "/.well-known/mta-sts.txt", host="mta-sts.other.org")[0] == 404
    assert curl(web, "/", host="mta-sts.example.com")[0] == 404
    # autoconfig is not served on the policy host
    assert curl(web, "/mail/config-v1.1.xml?emailaddress=alice%40example.com",
                host="mta-sts.example.com")[0] == 404
    # nor /metrics (served on every other name: test_metrics.py)
    assert curl(web, "/metrics", host="mta-sts.example.com")[0] == 404
    assert curl(web, "/metrics", host="autoconfig.example.com")[0] == 200


def test_other_names_keep_the_tls_certificate(web):
    # SNI localhost: [tls]'s certificate, which curl verifies for localhost
    assert curl(web, "/mail/config-v1.1.xml?emailaddress=alice%40example.com", tls=True)[0] == 200


# -- HTTP ----------------------------------------------------------------------------------


def test_keep_alive_two_requests_one_connection(web):
    url = f"http://localhost:{web.http_port}/mail/config-v1.1.xml?emailaddress=alice%40example.com"
    r = subprocess.run(["curl", "-sS", "-v", "-o", "/dev/null", "-o", "/dev/null", url, url],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "Re-using existing connection" in r.stderr or "Reusing existing" in r.stderr
    assert r.stderr.count("Connected to") == 1


def raw_request(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_oversized_requests_refused(web):
    big_header = (b"GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\n"
                  b"Host: localhost\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    answer = raw_request(web.http_port, big_header)
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    body = AD_REQUEST.format(address=ADDRESS).encode() + b" " * 70000
    status, _, _ = curl(web, "/autodiscover/autodiscover.xml", data=body.decode())
    assert status == 413
    # the worker is still there
    assert curl(web, "/mail/config-v1.1.xml?emailaddress=alice%40example.com")[0] == 200


def test_workers_survive_the_sandbox(web):
    # every request above ran inside the seccomp filter: a forbidden call would be SIGSYS
    assert "SIGSYS" not in web.log_text() and "signal 31" not in web.log_text()
    assert web.workers_sandboxed()


# -- mailgate dns ---------------------------------------------------------------------------


def records(output):
    return [line for line in output.splitlines() if line and not line.startswith(";")]


def policy_id(output):
    (txt,) = [r for r in records(output) if r.startswith("_mta-sts.")]
    m = re.fullmatch(r'_mta-sts\.example\.com\. 3600 IN TXT "v=STSv1; id=([A-Za-z0-9]{1,32})"', txt)
    assert m, txt
    return m.group(1)


def test_dns_records(web):
    r = web.cli("dns", "example.com")
    assert r.returncode == 0, r.stderr
    got = records(r.stdout)
    for want in [
        "pop.example.com. 3600 IN CNAME imap.example.com.",
        "smtp.example.com. 3600 IN CNAME imap.example.com.",
        f"_imaps._tcp.example.com. 3600 IN SRV 0 1 {web.port('imaps')} imap.example.com.",
        f"_imap._tcp.example.com. 3600 IN SRV 10 1 {web.port('imap')} imap.example.com.",
        "_pop3s._tcp.example.com. 3600 IN SRV 0 1 995 pop.example.com.",
        f"_submissions._tcp.example.com. 3600 IN SRV 0 1 {web.port('smtps')} smtp.example.com.",
        f"_submission._tcp.example.com. 3600 IN SRV 10 1 {web.port('submission')} "
        "smtp.example.com.",
        "autoconfig.example.com. 3600 IN CNAME imap.example.com.",
        "autodiscover.example.com. 3600 IN CNAME imap.example.com.",
        "mta-sts.example.com. 3600 IN CNAME imap.example.com.",
        '_smtp._tls.example.com. 3600 IN TXT "v=TLSRPTv1; '
        'rua=mailto:tlsrpt@example.com,https://report.example.com/tlsrpt"',
    ]:
        assert want in got, f"{want!r} not in:\n{r.stdout}"
    policy_id(r.stdout)
    assert "8.1" in r.stdout and "live" in r.stdout  # publish the id after the policy
    # the pop3s listener's port is not used: pop3_host names its own
    assert not any(f" {web.port('pop3s')} " in line for line in got)


def test_dns_microsoft_365_domain_keeps_outlook_autodiscover(web):
    r = web.cli("dns", "other.org")
    assert r.returncode == 0, r.stderr
    got = records(r.stdout)
    assert "autodiscover.other.org. 3600 IN CNAME autodiscover.outlook.com." in got
    assert "autodiscover = off" in r.stdout
    assert "_submission._tcp.other.org. 3600 IN SRV 0 1 587 mail.other.org." in got
    assert not any(line.startswith("_mta-sts.") for line in got)
    assert not any(line.startswith("mail.other.org. ") and "CNAME" in line for line in got)


def test_dns_unknown_domain(web):
    r = web.cli("dns", "unknown.net")
    assert r.returncode == 1 and "no [domain unknown.net]" in r.stderr
    assert web.cli("dns").returncode == 2


# -- configuration errors -------------------------------------------------------------------


BAD_DOMAINS = [
    ("mta_sts_mode = strict", "mta_sts_mode: expected enforce, testing or none"),
    ("mta_sts_mx = mail.*.example.com", "a wildcard may only be the whole first label"),
    ("mta_sts_mx = *.*.example.com", "a wildcard may only be the whole first label"),
    ("mta_sts_mx = mail.example.com,,mx.example.com", "empty pattern"),
    ("mta_sts_mx = -bad.example.com", "not a host name"),
    ("mta_sts_mx = mail.bücher.example", "A-label"),
    ("mta_sts_max_age = 31557601", "mta_sts_max_age: expected seconds from 0 to 31557600"),
    ("mta_sts_max_age = -1", "mta_sts_max_age"),
    ("tls_rpt = http://report.example.com/", "use a mailto: or an https:// URI"),
    ("tls_rpt = mailto:nobody", "mailto: URI needs an address"),
    ("pop3_host = pop_server!", "is not a host name"),
    ("smtp_host = smtp.example.com:0", "expected host or host:port"),
    ("autodiscover = yes", "autodiscover: expected on or off"),
]


def check_config_text(web, tmp_path, text):
    path = tmp_path / "mailgate.conf"
    path.write_text(text)
    share_with_gateway_user(str(path))
    return web.cli("check-config", config=str(path))


def base_config(web):
    with open(web.config_path) as f:
        return f.read().split("\n[domain ")[0].rstrip("\n") + "\n"


@pytest.mark.parametrize("line,message", BAD_DOMAINS)
def test_invalid_domain_rejected_with_file_and_line(web, tmp_path, line, message):
    text = base_config(web) + "\n[domain bad.example]\nimap_host = imap.example.com\n"
    text += "mta_sts_mode = enforce\n" if not line.startswith("mta_sts_m") else ""
    text += ("mta_sts_mx = mail.example.com\n"
             if "mta_sts_mx" not in line and "mta_sts_mode" not in line else "")
    text += line + "\n"
    lineno = len(text.splitlines())
    r = check_config_text(web, tmp_path, text)
    assert r.returncode == 1, r.stdout
    assert f"{tmp_path}/mailgate.conf:{lineno}: " in r.stderr and message in r.stderr, r.stderr


def test_policy_rules_across_keys(web, tmp_path):
    text = base_config(web) + "\n[domain bad.example]\nimap_host = imap.example.com\n"
    text += "mta_sts_mode = testing\n"
    r = check_config_text(web, tmp_path, text)
    assert f":{len(text.splitlines())}: mta_sts_mode = testing needs mta_sts_mx" in r.stderr
    text = base_config(web) + "\n[domain bad.example]\nmta_sts_mx = mx.example.com\n"
    r = check_config_text(web, tmp_path, text)
    assert f":{len(text.splitlines())}: mta_sts_mx without mta_sts_mode" in r.stderr
    # mode none needs no mx
    text = base_config(web) + "\n[domain good.example]\nmta_sts_mode = none\n"
    assert check_config_text(web, tmp_path, text).returncode == 0


def test_listener_tls_words_by_protocol(web, tmp_path):
    text = base_config(web) + f"\n[listen web2]\nprotocol = http\naddress = 127.0.0.1:{free_port()}\ntls = starttls\n"
    r = check_config_text(web, tmp_path, text)
    assert f":{len(text.splitlines())}: tls = starttls is not for protocol = http" in r.stderr
    text = base_config(web) + f"\n[listen imap2]\nprotocol = imap\naddress = 127.0.0.1:{free_port()}\ntls = none\n"
    r = check_config_text(web, tmp_path, text)
    assert f":{len(text.splitlines())}: tls = none needs login_type = plaintext" in r.stderr


def test_one_label_wildcard_warning(web, tmp_path):
    text = base_config(web) + ("\n[domain warn.example]\nmta_sts_mode = enforce\n"
                               "mta_sts_mx = *.mx.microsoft, *.mail.protection.outlook.com\n")
    r = check_config_text(web, tmp_path, text)
    assert r.returncode == 0, r.stderr  # a warning, not an error
    assert f":{len(text.splitlines())}: warning: mta_sts_mx: '*.mx.microsoft' never matches" \
        in r.stderr


# -- policy change (last: it reloads the gateway with another policy) ----------------------------


def test_policy_change_gives_new_id(web):
    old_id = policy_id(web.cli("dns", "example.com").stdout)
    assert policy_id(web.cli("dns", "example.com").stdout) == old_id  # stable
    web.settings["extra"] = web_extra(web.http_port, web.https_port, web.domain_cert,
                                      web.domain_key,
                                      ["mta_sts_mode = testing", "mta_sts_mx = mail.example.com",
                                       "mta_sts_max_age = 86400"])
    web.write_config()
    new_id = policy_id(web.cli("dns", "example.com").stdout)
    assert new_id != old_id
    offset = web.log_offset()
    web.proc.send_signal(signal.SIGHUP)
    new_policy = ("version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\n"
                  "max_age: 86400\r\n").encode()
    wait_until(lambda: curl(web, "/.well-known/mta-sts.txt", host="mta-sts.example.com",
                            tls=True)[2] == new_policy, timeout=20, what="the new policy served")
    assert not re.search(r"reload: \S+:\d+: ", web.log_since(offset))
