"""Secrets at rest (issue 5): access tokens are cached in the store sealed with AES-256-GCM under
state_dir/secret.key (0600), reused after a restart without a token request, and re-encrypted
by `mailgate secrets rotate-key`. Nothing secret appears in plaintext in the database files."""
import os
import sqlite3
import stat

import pytest

from conftest import try_login
from harness.stack import CLIENT_ID, CLIENT_SECRET, TENANT

OK = "f1 OK"


@pytest.fixture
def gw(fleet):
    g = fleet.new(f"secrets-{len(fleet.instances)}")
    yield g
    g.stop()


def db_bytes(gw):
    """The database file and its -wal file, as bytes."""
    data = b""
    for suffix in ("", "-wal"):
        path = os.path.join(gw.state_dir, "mailgate.db" + suffix)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data += f.read()
    return data


def key_file(gw):
    return os.path.join(gw.state_dir, "secret.key")


def read_key(gw):
    with open(key_file(gw), "rb") as f:
        return f.read()


def token_requests(idp):
    return idp.stats()["token_requests"]


def stored_tokens(gw):
    db = sqlite3.connect(f"file:{os.path.join(gw.state_dir, 'mailgate.db')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT provider, principal, scope, length(sealed), expires_at"
                          " FROM tokens").fetchall()
    finally:
        db.close()


def test_key_file_created_0600(gw):
    st = os.stat(key_file(gw))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32


def test_token_sealed_in_store_and_reused_after_restart(gw, idp):
    before = token_requests(idp)
    assert try_login(gw).startswith(OK)
    assert token_requests(idp) == before + 1
    rows = stored_tokens(gw)
    assert len(rows) == 1 and rows[0][0] == "microsoft" and rows[0][1] == f"app:{CLIENT_ID}@{TENANT}"
    issued = idp.issued_tokens()
    assert issued
    data = db_bytes(gw)
    for token in issued:
        assert token.encode() not in data
        # not even a recognisable piece of it (a JWT's signature part)
        assert token.split(".")[2][:40].encode() not in data
    assert CLIENT_SECRET.encode() not in data

    offset = gw.log_offset()
    gw.restart()
    assert "reusing the stored token" in gw.log_since(offset)
    before = token_requests(idp)
    assert try_login(gw).startswith(OK)
    assert try_login(gw, "bob").startswith(OK)
    assert token_requests(idp) == before


def test_rotate_key(gw, idp):
    assert try_login(gw).startswith(OK)
    old_key = read_key(gw)
    old_rows = stored_tokens(gw)
    assert len(old_rows) == 1
    gw.stop()
    r = gw.cli("secrets", "rotate-key")
    assert r.returncode == 0, r.stderr
    assert "1 stored secret(s) re-encrypted" in r.stdout
    new_key = read_key(gw)
    assert new_key != old_key and len(new_key) == 32
    assert stat.S_IMODE(os.stat(key_file(gw)).st_mode) == 0o600
    assert not os.path.exists(key_file(gw) + ".old")
    assert not os.path.exists(key_file(gw) + ".tmp")
    data = db_bytes(gw)
    for token in idp.issued_tokens():
        assert token.encode() not in data
    offset = gw.log_offset()
    gw.start()
    # (a store copied from another instance may log it at the first start, not now)
    assert "cannot be decrypted" not in gw.log_since(offset)
    before = token_requests(idp)
    assert try_login(gw).startswith(OK)
    assert token_requests(idp) == before


def test_foreign_key_means_new_token(gw, idp):
    """A store whose tokens were sealed under another key: the token is requested anew."""
    assert try_login(gw).startswith(OK)
    gw.stop()
    os.unlink(key_file(gw))
    gw.start()
    assert stat.S_IMODE(os.stat(key_file(gw)).st_mode) == 0o600
    before = token_requests(idp)
    assert try_login(gw).startswith(OK)
    assert token_requests(idp) == before + 1


def test_key_file_with_group_access_refuses_start(gw):
    gw.stop()
    os.chmod(key_file(gw), 0o640)
    try:
        with pytest.raises(RuntimeError, match="group or others"):
            gw.start()
    finally:
        os.chmod(key_file(gw), 0o600)


def test_secret_key_file_setting(fleet, tmp_path):
    path = tmp_path / "mounted" / "mg.key"
    path.parent.mkdir()
    g = fleet.new(f"secrets-{len(fleet.instances)}", start=False)
    # secret_key_file belongs in [gateway]: prepend it to the rendered file
    g.write_config()
    with open(g.config_path) as f:
        text = f.read()
    text = text.replace("[gateway]\n", f"[gateway]\nsecret_key_file = {path}\n", 1)
    with open(g.config_path, "w") as f:
        f.write(text)
    g.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not os.path.exists(key_file(g))
        assert try_login(g).startswith(OK)
    finally:
        g.stop()
