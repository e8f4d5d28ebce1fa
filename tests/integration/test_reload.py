"""One configuration per generation (issue 10): the broker reads and validates the file, binds
every listener, and hands the workers the file's bytes and the listening sockets. A worker that
dies comes back with the configuration the broker holds, whatever the file says now; SIGHUP
re-reads the file (an invalid one changes nothing, its FILE:LINE goes to the log), starts new
workers and lets the old ones finish their sessions."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import login, try_login
from harness.dovecot import sha256
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
    write(gw, original_text(gw))
    reload(gw, r"reloaded ")


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
    assert NEW_BANNER in gw.greeting("imaps")
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


def read_fetch(c, tag):
    """Every literal of the tagged FETCH responses up to tag's completion."""
    bodies = []
    while True:
        line = c.readline()
        if line.startswith(tag + " "):
            return bodies, line
        m = re.search(r"\{(\d+)\}$", line)
        if m:
            bodies.append(c.read_bytes(int(m.group(1))))


def test_idle_and_a_large_fetch_survive_a_reload(gw, stack):
    subject, original = stack.seeded[ALICE][2]
    idler = login(gw, "bob")
    fetcher = login(gw, "alice")
    (old_worker,) = gw.worker_pids()
    with idler, fetcher:
        assert idler.command("i1", "SELECT INBOX")[1].startswith("i1 OK")
        idler.send("i2 IDLE\r\n")
        assert idler.readline().startswith("+")
        assert fetcher.command("a1", "EXAMINE INBOX")[1].startswith("a1 OK")
        # 20 MB asked for, almost none of it read: the relay holds the rest back
        for i in range(4):
            fetcher.send(f"f{i} UID FETCH 3 (BODY.PEEK[])\r\n")
        size = int(re.search(r"\{(\d+)\}$", fetcher.readline()).group(1))
        head = fetcher.read_bytes(64 * 1024)
        write(gw, original_text(gw).replace(IMAP_BANNER, NEW_BANNER))
        reload(gw, r"reloaded ")
        gw.wait_for_log(r"replaced by a reload; finishing 2 session", timeout=10)
        assert NEW_BANNER in gw.greeting("imaps")
        assert try_login(gw).startswith("f1 OK")
        assert old_worker in gw.worker_pids()  # still finishing the two sessions
        first = head + fetcher.read_bytes(size - len(head))
        assert sha256(first) == sha256(original)
        for i in range(4):
            bodies, done = read_fetch(fetcher, f"f{i}")
            assert done.startswith(f"f{i} OK"), done
            assert [sha256(b) for b in bodies] == ([] if i == 0 else [sha256(original)])
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
