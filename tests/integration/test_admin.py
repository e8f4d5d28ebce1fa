"""Admin experience: commands that serve no listener run before the gateway's certificate
exists; client_secret_file must be private; `token get --fresh`; check-config's wording."""
import os
import stat

import pytest

from harness.owner import GATEWAY_USER


@pytest.fixture(scope="module")
def admin_gw(fleet):
    return fleet.new("admin", users=False, start=False)


def without_certificate(gw, tmp_path):
    """The gateway's config with [tls] naming files that do not exist yet (Quick start)."""
    text = open(gw.config_path).read()
    text = text.replace(gw.certs.fullchain, str(tmp_path / "tls" / "fullchain.pem"))
    text = text.replace(gw.certs.key, str(tmp_path / "tls" / "privkey.pem"))
    path = tmp_path / "mailgate.conf"
    path.write_text(text)
    return str(path)


def test_user_commands_run_before_the_certificate_exists(admin_gw, tmp_path):
    conf = without_certificate(admin_gw, tmp_path)
    r = admin_gw.cli("user", "add", "newbie", "--mailbox", "newbie@example.test",
                     "--password-stdin", stdin="newbie-Secret-1\n", config=conf)
    assert r.returncode == 0, r.stderr
    r = admin_gw.cli("user", "list", config=conf)
    assert r.returncode == 0 and "newbie" in r.stdout, r.stderr
    r = admin_gw.cli("audit", config=conf)
    assert r.returncode == 0, r.stderr
    r = admin_gw.cli("token", "flush", config=conf)
    assert r.returncode == 0, r.stderr
    # what needs the listeners still refuses, naming the file
    r = admin_gw.cli("check-config", config=conf)
    assert r.returncode == 1
    assert "fullchain.pem: No such file or directory" in r.stderr, r.stderr
    r = admin_gw.cli("serve", config=conf, timeout=30)
    assert r.returncode == 1
    assert "fullchain.pem" in r.stderr, r.stderr


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_client_secret_file_readable_by_others_is_refused(admin_gw, mode):
    os.chmod(admin_gw.secret_file, mode)
    try:
        for args in (("check-config",), ("user", "list")):
            r = admin_gw.cli(*args)
            assert r.returncode == 1, r.stdout
            assert (f"{admin_gw.secret_file} is accessible by group or others (mode {mode:03o}); "
                    "run chmod 600 on it") in r.stderr, r.stderr
    finally:
        os.chmod(admin_gw.secret_file, 0o600)
    r = admin_gw.cli("check-config")
    assert r.returncode == 0, r.stderr


def test_harness_gives_the_secret_file_to_the_gateway_user(admin_gw):
    st = os.stat(admin_gw.secret_file)
    assert stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:
        import pwd
        assert pwd.getpwuid(st.st_uid).pw_name == GATEWAY_USER


def test_check_config_counts_in_words(admin_gw):
    r = admin_gw.cli("check-config")
    assert r.returncode == 0, r.stderr
    assert "configuration OK (2 listeners, 1 provider)" in r.stdout, r.stdout


def test_token_get_fresh_bypasses_the_cache(admin_gw, idp):
    r = admin_gw.cli("token", "get")
    assert r.returncode == 0, r.stderr
    before = idp.stats()["tokens_issued"]
    r = admin_gw.cli("token", "get")
    assert r.returncode == 0, r.stderr
    assert "source: cached" in r.stdout
    assert idp.stats()["tokens_issued"] == before
    r = admin_gw.cli("token", "get", "--fresh")
    assert r.returncode == 0, r.stderr
    assert "source: token endpoint" in r.stdout
    assert idp.stats()["tokens_issued"] == before + 1
    # the fresh token replaced the stored one: the next plain get serves it from the cache
    raw_fresh = admin_gw.cli("token", "get", "--fresh", "--raw").stdout
    raw_cached = admin_gw.cli("token", "get", "--raw").stdout
    assert raw_fresh and raw_cached == raw_fresh


def test_token_get_fresh_sees_a_changed_secret(admin_gw, idp):
    """After the client secret changed, the cached token (of the old secret) is not served:
    plain get and --fresh both ask the IdP and so report the new secret's failure
    (test_credential_change.py: check-config's line, the gateway's side)."""
    assert admin_gw.cli("token", "get").returncode == 0
    with open(admin_gw.secret_file) as f:
        good = f.read()
    try:
        with open(admin_gw.secret_file, "w") as f:
            f.write("not-the-secret\n")
        r = admin_gw.cli("token", "get")
        assert r.returncode == 1 and "AADSTS7000215" in r.stderr, r.stdout
        r = admin_gw.cli("token", "get", "--fresh")
        assert r.returncode == 1
        assert "AADSTS7000215" in r.stderr, r.stderr
    finally:
        with open(admin_gw.secret_file, "w") as f:
            f.write(good)
