"""One configuration per generation (issue 10): the broker reads and validates the file, binds
every listener, and hands the workers the file's bytes and the listening sockets. A worker that
dies comes back with the configuration the broker holds, whatever the file says now; SIGHUP
re-reads the file (an invalid one changes nothing, its FILE:LINE goes to the log), starts new
workers and lets the old ones finish their sessions."""
import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import login, try_login
from harness.dovecot import append_streamed, big_message_chunks, delete_folder
from harness.gateway import IMAP_BANNER, child_env, mailgate_bin
from harness.procs import wait_until
from harness.stack import ALICE

NEW_BANNER = "Reloaded banner."


@pytest.fixture(scope="module")
def gw(fleet):
    g = fleet.new("reload", workers=1)
    with open(g.config_path) as f:
        g.original_text = f.read()
    yield g
    restore(g)


def original_text(gw):
    return gw.original_text


def write(gw, text):
    with open(gw.config_path, "w") as f:
        f.write(text)


def restore(gw):
    """Back to the original file; returns once the workers of before have left (no session
    holds them here), so the next test starts from one generation."""
    before = set(gw.worker_pids())
    write(gw, original_text(gw))
    reload(gw, r"reloaded ")
    wait_until(lambda: not before & set(gw.worker_pids()), timeout=20, what="old workers gone")


def reload(gw, pattern):
    offset = gw.log_offset()
    os.kill(gw.proc.pid, signal.SIGHUP)
    return gw.wait_for_log(pattern, offset, timeout=20) and gw.log_since(offset)


def kill_worker(gw):
    offset = gw.log_offset()
    wait_until(lambda: len(gw.worker_pids()) == 1, timeout=10, what="one worker")
    (pid,) = gw.worker_pids()
    os.kill(pid, signal.SIGKILL)
    gw.wait_for_log(r"worker \d+ is serving again", offset, timeout=20)
    return pid


def test_restarted_worker_keeps_the_configuration_until_sighup(gw):
    write(gw, original_text(gw).replace(IMAP_BANNER, NEW_BANNER))
    kill_worker(gw)
    assert IMAP_BANNER in gw.greeting("imaps")
    reload(gw, r"reloaded ")
    # The old worker stops accepting when it gets the broker's drain signal, a moment after
    # the log line: until then a connection may still reach it.
    wait_until(lambda: NEW_BANNER in gw.greeting("imaps"), timeout=10, what="the new banner")
    restore(gw)
    assert IMAP_BANNER in gw.greeting("imaps")


def test_worker_restarts_while_the_file_is_invalid(gw):
    write(gw, original_text(gw) + "\n[gateway\n")
    try:
        kill_worker(gw)
        assert try_login(gw).startswith("f1 OK")
    finally:
        write(gw, original_text(gw))


def test_sighup_with_an_invalid_file_changes_nothing(gw):
    text = original_text(gw).replace(IMAP_BANNER, NEW_BANNER)
    write(gw, text + "\nno_such_key = 1\n")
    line = text.count("\n") + 2
    try:
        log = reload(gw, r"reload failed")
        assert f"{gw.config_path}:{line}:" in log, log
        assert gw.proc.poll() is None
        assert IMAP_BANNER in gw.greeting("imaps")
        assert try_login(gw).startswith("f1 OK")
    finally:
        write(gw, original_text(gw))


HUGE_SIZE = 100 * 1024 * 1024
HUGE_FOLDER = "Reload"


@pytest.fixture
def huge(stack):
    """A 100 MB message in a folder of alice's mailbox of its own (INBOX stays as the other
    tests know it); the folder goes afterwards (100 MB of disk). Returns (UID, sha256)."""
    found = append_streamed(stack.dovecot, stack.idp.token(), ALICE, HUGE_FOLDER,
                            big_message_chunks("100 MB in flight", ALICE, HUGE_SIZE), HUGE_SIZE)
    yield found
    delete_folder(stack.dovecot, stack.idp.token(), ALICE, HUGE_FOLDER)


def test_idle_and_a_100_mb_fetch_survive_a_reload(gw, huge):
    uid, expected = huge
    idler = login(gw, "bob")
    fetcher = login(gw, "alice")
    (old_worker,) = gw.worker_pids()
    with idler, fetcher:
        assert idler.command("i1", "SELECT INBOX")[1].startswith("i1 OK")
        idler.send("i2 IDLE\r\n")
        assert idler.readline().startswith("+")
        assert fetcher.command("a1", f"EXAMINE {HUGE_FOLDER}")[1].startswith("a1 OK")
        # 100 MB asked for, 64 KiB of it read: the relay holds the rest back across the reload.
        # The NOOP queued behind it must be answered once the transfer is through.
        fetcher.send(f"f1 UID FETCH {uid} (BODY.PEEK[])\r\nf2 NOOP\r\n")
        size = int(re.search(r"\{(\d+)\}$", fetcher.readline()).group(1))
        assert size == HUGE_SIZE
        digest = hashlib.sha256(fetcher.read_bytes(64 * 1024))
        write(gw, original_text(gw).replace(IMAP_BANNER, NEW_BANNER))
        reload(gw, r"reloaded ")
        gw.wait_for_log(r"replaced by a reload; finishing 2 session", timeout=10)
        assert NEW_BANNER in gw.greeting("imaps")
        assert try_login(gw).startswith("f1 OK")
        assert old_worker in gw.worker_pids()  # still finishing the two sessions
        # streamed into the hash: the test holds no copy of the 100 MB
        fetcher.read_into(digest, size - 64 * 1024)
        assert digest.hexdigest() == expected
        # the literal ended where its size said: the response closes right after it
        rest, done = fetcher.read_until_tagged("f1")
        assert rest == [")"] and done.startswith("f1 OK"), (rest, done)
        assert fetcher.read_until_tagged("f2")[1].startswith("f2 OK")
        idler.send("DONE\r\n")
        assert idler.read_until_tagged("i2")[1].startswith("i2 OK")
        assert idler.command("i3", "NOOP")[1].startswith("i3 OK")
    wait_until(lambda: old_worker not in gw.worker_pids(), timeout=10, what="old worker exit")
    assert len(gw.worker_pids()) == 1
    restore(gw)


def test_second_gateway_on_the_same_port_fails_to_bind(gw, fleet):
    other = fleet.new("reload-other", users=False, start=False, workers=1)
    other.listeners = dict(gw.listeners)
    other.write_config()
    p = subprocess.Popen([mailgate_bin(), "-c", other.config_path, "serve"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         stdin=subprocess.DEVNULL, env=child_env())
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        pytest.fail(f"the second gateway shares the port:\n{out}")
    assert p.returncode != 0
    assert f"cannot listen on 127.0.0.1:{gw.imaps_port}" in out, out
    assert "Address already in use" in out, out
    assert gw.proc.poll() is None and try_login(gw).startswith("f1 OK")
