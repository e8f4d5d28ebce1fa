"""The admin CLI: user add/list/passwd/del and check-config."""
import json
import os
import re

import pytest

from harness.stack import ALICE, BOB
from conftest import try_login


@pytest.fixture(scope="module")
def cli_gw(fleet):
    """A configured but never started instance with an empty store."""
    return fleet.new("cli", users=False, start=False)


def test_check_config_accepts_good_config(cli_gw):
    r = cli_gw.cli("check-config")
    assert r.returncode == 0, r.stderr
    assert "type=microsoft flow=client_credentials sasl=XOAUTH2" in r.stdout, r.stdout


@pytest.mark.parametrize("change,expect", [
    (("[gateway]\n", "[gateway]\nno_such_key = 1\n"), "no_such_key"),
    (("login_timeout = 60s", "login_timeout = soon"), "login_timeout"),
    (("protocol = imap", "protocol = gopher"), "protocol"),
    (("[gateway]\n", "[gateway]\n[no such section]\n"), "section"),
])
def test_check_config_reports_file_and_line(cli_gw, change, expect):
    text = open(cli_gw.config_path).read()
    assert change[0] in text
    bad_text = text.replace(change[0], change[1], 1)
    bad_line = bad_text.splitlines().index(
        next(line for line in change[1].splitlines() if line not in text.splitlines())) + 1
    bad_path = os.path.join(cli_gw.dir, "bad.conf")
    with open(bad_path, "w") as f:
        f.write(bad_text)
    r = cli_gw.cli("check-config", config=bad_path)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert re.search(rf"{re.escape(bad_path)}:{bad_line}:", r.stderr), r.stderr
    assert expect.split()[0] in r.stderr.lower() or expect in r.stderr


def test_check_config_missing_file(cli_gw):
    r = cli_gw.cli("check-config", config=os.path.join(cli_gw.dir, "nope.conf"))
    assert r.returncode == 1
    assert "nope.conf" in r.stderr


def test_user_add_list_del(cli_gw):
    r = cli_gw.cli("user", "add", "clitest", "--mailbox", ALICE, "--password-stdin",
                   stdin="Cli-Password-1\n")
    assert r.returncode == 0, r.stderr
    assert "Cli-Password-1" not in r.stdout + r.stderr
    r = cli_gw.cli("user", "list")
    assert r.returncode == 0 and "clitest" in r.stdout and ALICE in r.stdout
    assert "Cli-Password-1" not in r.stdout
    r = cli_gw.cli("user", "list", "--json")
    assert r.returncode == 0, r.stderr
    users = json.loads(r.stdout)
    entries = users if isinstance(users, list) else users.get("users", [])
    entry = next(u for u in entries if "clitest" in u.values())
    assert ALICE in entry.values()
    assert not [v for v in entry.values() if isinstance(v, str) and "argon2" in v]
    r = cli_gw.cli("user", "del", "clitest")
    assert r.returncode == 0, r.stderr
    assert "clitest" not in cli_gw.cli("user", "list").stdout


def test_user_add_duplicate_fails(cli_gw):
    assert cli_gw.cli("user", "add", "dup", "--mailbox", BOB, "--password-stdin",
                      stdin="Dup-Password-1\n").returncode == 0
    r = cli_gw.cli("user", "add", "dup", "--mailbox", BOB, "--password-stdin",
                   stdin="Dup-Password-2\n")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "dup" in r.stderr


def test_user_del_unknown_fails(cli_gw):
    r = cli_gw.cli("user", "del", "never-existed")
    assert r.returncode == 1
    assert "never-existed" in r.stderr


def test_user_add_generates_password(cli_gw):
    r = cli_gw.cli("user", "add", "generated", "--mailbox", BOB, stdin="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "a generated password is printed"
    assert "generated" in cli_gw.cli("user", "list").stdout


def test_usage_error_exit_code(cli_gw):
    r = cli_gw.cli("user", "frobnicate")
    assert r.returncode == 2, (r.returncode, r.stderr)


# -- against the running gateway: the store is shared with `serve` ------------------------------

def test_user_added_while_serving_can_log_in(gateway):
    r = gateway.cli("user", "add", "latecomer", "--mailbox", BOB, "--password-stdin",
                    stdin="Late-Password-1\n")
    assert r.returncode == 0, r.stderr
    assert try_login(gateway, "latecomer", "Late-Password-1").startswith("f1 OK")


def test_passwd_changes_password(gateway):
    assert gateway.cli("user", "add", "changer", "--mailbox", BOB, "--password-stdin",
                       stdin="Old-Password-1\n").returncode == 0
    assert try_login(gateway, "changer", "Old-Password-1").startswith("f1 OK")
    r = gateway.cli("user", "passwd", "changer", "--password-stdin", stdin="New-Password-2\n")
    assert r.returncode == 0, r.stderr
    assert try_login(gateway, "changer", "New-Password-2").startswith("f1 OK")
    # the auth cache must not keep the old password valid
    assert try_login(gateway, "changer", "Old-Password-1").startswith(
        "f1 NO [AUTHENTICATIONFAILED]")


def test_deleted_user_cannot_log_in(gateway):
    assert gateway.cli("user", "add", "leaver", "--mailbox", BOB, "--password-stdin",
                       stdin="Leaver-Password-1\n").returncode == 0
    assert try_login(gateway, "leaver", "Leaver-Password-1").startswith("f1 OK")
    assert gateway.cli("user", "del", "leaver").returncode == 0
    assert try_login(gateway, "leaver", "Leaver-Password-1").startswith(
        "f1 NO [AUTHENTICATIONFAILED]")
