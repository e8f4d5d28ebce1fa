"""One gateway per state_dir: `mailgate serve` holds a lock on state_dir/mailgate.pid (with
its PID in it) for as long as the broker lives. A second serve on the same configuration exits
before binding anything; the lock, not the file, decides, so a file left by a killed gateway
does not block a start. Admin commands run beside the gateway."""
import os
import subprocess
import time

import pytest

from conftest import try_login
from harness.gateway import child_env, mailgate_bin
from harness.procs import wait_until


def pid_file(gw):
    return os.path.join(gw.state_dir, "mailgate.pid")


def pid_in_file(gw):
    with open(pid_file(gw)) as f:
        return int(f.read())


def second_serve(gw):
    started = time.monotonic()
    r = subprocess.run([mailgate_bin(), "-c", gw.config_path, "serve"], capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL, env=child_env())
    return r, time.monotonic() - started


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")  # a zombie is gone too
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def gw(fleet):
    return fleet.new("single", workers=1)


def test_pid_file_holds_the_brokers_pid(gw):
    assert pid_in_file(gw) == gw.proc.pid


def test_workers_do_not_hold_the_lock(gw):
    for pid in gw.worker_pids():
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert pid_file(gw) not in targets, targets


def test_second_serve_exits_and_first_keeps_serving(gw):
    r, took = second_serve(gw)
    assert r.returncode != 0
    assert took < 10
    assert f"pid {gw.proc.pid}" in r.stderr and pid_file(gw) in r.stderr, r.stderr
    assert gw.proc.poll() is None
    assert try_login(gw).startswith("f1 OK")
    assert pid_in_file(gw) == gw.proc.pid


def test_admin_commands_run_beside_the_gateway(gw):
    r = gw.cli("user", "list")
    assert r.returncode == 0 and "alice" in r.stdout, r.stderr
    assert gw.cli("check-config").returncode == 0


def test_restart_after_sigterm(gw):
    assert gw.stop() == 0
    assert not os.path.exists(pid_file(gw))  # a clean stop removes it
    gw.start()
    assert pid_in_file(gw) == gw.proc.pid
    assert try_login(gw).startswith("f1 OK")


def test_stale_pid_file_of_a_killed_gateway_does_not_block(gw):
    old_pids = gw.process_pids()
    gw.proc.kill()
    gw.proc.wait()
    # the workers see the broker's end of their IPC close and exit
    wait_until(lambda: all(gone(pid) for pid in old_pids), timeout=15, what="old workers gone")
    assert gw.stop() == -9
    assert pid_in_file(gw) == old_pids[0]  # left behind
    gw.start()
    assert pid_in_file(gw) == gw.proc.pid
    assert try_login(gw).startswith("f1 OK")
