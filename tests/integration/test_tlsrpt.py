"""TLS reports (RFC 8460): POSTed with curl to a gateway's http listeners on the host and path
of the domain's https tls_rpt URI (parsed in the sandboxed worker, stored by the broker), and
imported from files with `mailgate tlsrpt import`; `mailgate report tlsrpt` sums them per
organisation and policy. RFC 8460's example report is tests/data/rfc8460-example.json."""
import copy
import gzip
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from harness.procs import free_port, wait_until
from test_web import mta_sts_cert, probe

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "data", "rfc8460-example.json")
HOST = "report.example.com"
PATH = "/tlsrpt"


def example():
    with open(EXAMPLE, "rb") as f:
        return json.loads(f.read())


def report(report_id, org="Google Inc.", result="certificate-expired", mx="mx1.example.com",
           ok=100, failed=5):
    """A report as Google sends them: mx-host a string, no time zone in the dates."""
    return {"organization-name": org, "report-id": report_id,
            "date-range": {"start-datetime": "2026-12-01T00:00:00",
                           "end-datetime": "2026-12-01T23:59:59"},
            "contact-info": "smtp-tls-reporting@google.com", "x-unknown": [1, {"a": None}],
            "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com",
                                     "mx-host": "mx1.example.com",
                                     "policy-string": ["version: STSv1", "mode: testing"]},
                          "summary": {"total-successful-session-count": ok,
                                      "total-failure-session-count": failed},
                          "failure-details": [{"result-type": result, "receiving-mx-hostname": mx,
                                               "sending-mta-ip": "192.0.2.1",
                                               "failed-session-count": failed}]}]}


@pytest.fixture(scope="module")
def rpt(fleet, workdir):
    cert, key = mta_sts_cert(fleet.stack.certs, os.path.join(workdir, "tlsrpt-certs"),
                             names=("mta-sts.example.com", HOST))
    http_port, https_port = free_port(), free_port()
    extra = "\n".join([
        "", "[listen web]", "protocol = http", f"address = 127.0.0.1:{http_port}", "tls = none",
        "", "[listen webs]", "protocol = http", f"address = 127.0.0.1:{https_port}",
        "tls = implicit", "", "[domain example.com]", "imap_host = imap.example.com",
        "mta_sts_mode = testing", "mta_sts_mx = mx1.example.com",
        f"tls_rpt = mailto:tlsrpt@example.com, https://{HOST.upper()}{PATH},"
        " https://mta-sts.example.com:443/reports?from=rua",
        f"certificate = {cert}", f"private_key = {key}", ""])
    gw = fleet.new("tlsrpt", users=False, protocols=("imap",), extra=extra)
    gw.http_port, gw.https_port = http_port, https_port
    wait_until(lambda: probe(gw), timeout=10, what="http listener")
    return gw


def post(gw, body, content_type="application/tlsrpt+json", path=PATH, host=HOST, tls=True,
         method="POST", max_time=30):
    """(status, body text) of one POST with curl (the body from a file: it may be 11 MiB)."""
    port = gw.https_port if tls else gw.http_port
    url = f"{'https' if tls else 'http'}://{host}:{port}{path}"
    cmd = ["curl", "-sS", "--max-time", str(max_time), "--cacert", gw.certs.ca, "-o", "-",
           "-w", "\n%{http_code}", "--resolve", f"{host}:{port}:127.0.0.1", "-X", method]
    with tempfile.NamedTemporaryFile() as f:
        f.write(body)
        f.flush()
        if method != "GET":
            cmd += ["-H", f"Content-Type: {content_type}", "--data-binary", f"@{f.name}"]
        r = subprocess.run(cmd + [url], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    text, _, code = r.stdout.decode(errors="replace").rpartition("\n")
    return int(code), text


def summary(gw, *args):
    r = gw.cli("report", "tlsrpt", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    return {(p["organization"], p["policy_type"], p["policy_domain"]): p for p in doc["policies"]}


def failures_of(policy):
    return {(f["result_type"], f["receiving_mx"]): f["sessions"] for f in policy["failures"]}


def test_gzip_post_stored_and_summarised(rpt):
    body = gzip.compress(json.dumps(report("google-1")).encode())
    status, text = post(rpt, body, "application/tlsrpt+gzip")
    assert status == 201, text
    p = summary(rpt)[("Google Inc.", "sts", "example.com")]
    assert (p["reports"], p["successful"], p["failed"]) == (1, 100, 5)
    assert failures_of(p) == {("certificate-expired", "mx1.example.com"): 5}
    assert "tlsrpt: stored report \"google-1\"" in rpt.log_text()


def test_json_post_and_duplicate(rpt):
    body = json.dumps(report("ms-1", org="Microsoft Corporation", result="starttls-not-supported",
                             mx="mx2.example.com", ok=7, failed=3)).encode()
    status, text = post(rpt, body, "application/tlsrpt+json; charset=utf-8", tls=False)
    assert status == 201, text
    status, text = post(rpt, body)  # again, over HTTPS: the same report-id
    assert status == 200, text
    p = summary(rpt)[("Microsoft Corporation", "sts", "example.com")]
    assert (p["reports"], p["successful"], p["failed"]) == (1, 7, 3)
    assert failures_of(p) == {("starttls-not-supported", "mx2.example.com"): 3}


def test_post_on_the_mta_sts_host(rpt):
    """A URI on mta-sts.DOMAIN (its certificate covers it): the port and query of the URI are
    not matched; the policy is still served there."""
    body = gzip.compress(json.dumps(report("on-mta-sts", org="Mail.ru")).encode())
    status, text = post(rpt, body, "application/tlsrpt+gzip", host="mta-sts.example.com",
                        path="/reports")
    assert status == 201, text
    assert ("Mail.ru", "sts", "example.com") in summary(rpt)
    assert post(rpt, b"", host="mta-sts.example.com", path="/.well-known/mta-sts.txt",
                method="GET")[0] == 200


def test_broker_not_answering_is_503(rpt):
    """The worker waits 30 s for the broker, then answers 503 with Retry-After; the report the
    broker stores once it runs again makes the sender's retry a duplicate."""
    body = json.dumps(report("while-stopped", org="Stopped Inc.")).encode()
    os.kill(rpt.proc.pid, signal.SIGSTOP)
    try:
        status, text = post(rpt, body, max_time=45)
    finally:
        os.kill(rpt.proc.pid, signal.SIGCONT)
    assert status == 503, text
    wait_until(lambda: "stored report \"while-stopped\"" in rpt.log_text(), timeout=10,
               what="the report stored after SIGCONT")
    assert post(rpt, body)[0] == 200
    assert summary(rpt)[("Stopped Inc.", "sts", "example.com")]["reports"] == 1


def test_gzip_bomb_is_413(rpt):
    # 11 MiB after decompression, about 11 KiB as sent
    head = json.dumps(report("bomb"))[:-1] + ', "padding": "'
    raw = head.encode() + b" " * (11 * 1024 * 1024) + b'"}'
    body = gzip.compress(raw)
    assert len(body) < 64 * 1024
    status, text = post(rpt, body, "application/tlsrpt+gzip")
    assert status == 413, text
    assert "report \"bomb\"" not in rpt.log_text()


def test_oversized_json_body_is_413(rpt):
    status, _ = post(rpt, b" " * (10 * 1024 * 1024 + 1))
    assert status == 413


@pytest.mark.parametrize("body,why", [
    (b'{"report-id": "x", "policies": [', "not valid JSON"),
    (b'["report-id"]', "not a JSON object"),
    (json.dumps({"policies": []}).encode(), "no report-id"),
    (json.dumps({"report-id": "np"}).encode(), "no policies"),
])
def test_malformed_is_400(rpt, body, why):
    status, text = post(rpt, body)
    assert status == 400 and why in text, text


def test_bad_gzip_is_400(rpt):
    status, text = post(rpt, b"\x1f\x8b\x08\x00garbage", "application/tlsrpt+gzip")
    assert status == 400 and "gzip" in text, text


def test_wrong_method_type_host_path(rpt):
    body = json.dumps(report("never")).encode()
    assert post(rpt, body, "application/json")[0] == 415
    assert post(rpt, body, "text/plain")[0] == 415
    assert post(rpt, b"", method="GET")[0] == 405
    assert post(rpt, body, path="/tlsrpt/")[0] == 404
    assert post(rpt, body, host="example.com", tls=False)[0] == 404
    assert post(rpt, body, host="mta-sts.example.com")[0] == 404
    # a large body anywhere else is still refused at the small limit
    assert post(rpt, b"x" * (65 * 1024), host="example.com", tls=False,
                path="/autodiscover/autodiscover.xml")[0] == 413
    assert all(p["reports"] >= 1 for p in summary(rpt).values())
    assert "report \"never\"" not in rpt.log_text()


def test_import_example_and_duplicates(rpt, workdir):
    d = os.path.join(workdir, "tlsrpt-files")
    os.makedirs(d, exist_ok=True)
    with open(EXAMPLE, "rb") as f:
        raw = f.read()
    plain, packed = os.path.join(d, "example.json"), os.path.join(d, "other.json.gz")
    with open(plain, "wb") as f:
        f.write(raw)
    other = copy.deepcopy(example())
    other["report-id"] = "example-2"
    other["policies"][0]["policy"]["mx-host"] = "*.mail.company-y.example"  # a string
    del other["policies"][0]["policy"]["policy-string"]
    with open(packed, "wb") as f:
        f.write(gzip.compress(json.dumps(other).encode()))
    bad = os.path.join(d, "bad.json")
    with open(bad, "w") as f:
        f.write('{"policies": []}')

    r = rpt.cli("tlsrpt", "import", plain, packed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{plain}: imported report 5065427c-23d3-47ca-b6e0-946ea0e8c4be from Company-X" \
        in r.stdout
    assert f"{packed}: imported report example-2" in r.stdout
    r = rpt.cli("tlsrpt", "import", packed, bad)
    assert r.returncode == 1
    assert f"{packed}: duplicate" in r.stdout
    assert f"{bad}: refused: the report has no report-id" in r.stdout

    p = summary(rpt)[("Company-X", "sts", "company-y.example")]
    assert (p["reports"], p["successful"], p["failed"]) == (2, 2 * 5326, 2 * 303)
    assert failures_of(p) == {("starttls-not-supported", "mx2.mail.company-y.example"): 400,
                              ("certificate-expired", "mx1.mail.company-y.example"): 200,
                              ("validation-failure", "mx-backup.mail.company-y.example"): 6}
    table = rpt.cli("report", "tlsrpt")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["organization", "policy_type", "policy_domain", "reports",
                                "successful", "failed", "failures"]
    row = next(line for line in lines if line.startswith("Company-X"))
    assert row.split()[:6] == ["Company-X", "sts", "company-y.example", "2", "10652", "606"]
    assert "starttls-not-supported mx2.mail.company-y.example 400" in row


def test_since_filters_by_receipt(rpt):
    assert summary(rpt)  # the reports above were received in the last 30 days
    time.sleep(2)
    assert summary(rpt, "--since", "1s") == {}
    assert rpt.cli("report", "tlsrpt", "--since", "yesterday").returncode == 2


def test_access_log_names_the_outcome(rpt):
    log = rpt.log_text()
    assert f"host={HOST} POST {PATH} status=201" in log
    assert f"host={HOST} POST {PATH} status=413" in log
