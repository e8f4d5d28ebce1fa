"""The processes' privileges (README, "Security model"): started as root, the broker binds the
listeners, opens the store and the key, then becomes the unprivileged [gateway] user (no
capabilities, not dumpable, no core files) and hands it the state directory; a worker serves
as that user, chrooted into STATE_DIR/empty from a user namespace of its own, without
capabilities, with no_new_privs and a seccomp filter that kills it on a forbidden system call
(the broker restarts it). As root, serve refuses to start without the user."""
import os
import pwd
import signal
import socket
import time

import pytest

from conftest import GATEWAY_USER, login
from harness.procs import wait_until

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the user change happens only when started as root")


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def core_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max core file size"))
    return line.split()[4:6]  # soft, hard


@pytest.fixture(scope="module")
def sandboxed(fleet):
    return fleet.new("sandbox")


NO_USERNS = "no chroot, user namespaces are unavailable"


def skip_without_user_namespaces(gw):
    """A machine (or container) that forbids user namespaces: the workers say so and serve
    unchrooted, the seccomp filter still refusing every open(). Nothing to check there."""
    if NO_USERNS in gw.log_text():
        pytest.skip("user namespaces are not available here: the workers serve unchrooted")


def assert_is_gateway_user(st, user):
    """Every id is the user's (saved ids too), its groups only (e.g. ssl-cert for a TLS key in
    /etc/ssl/private), no capability left, not even in the bounding set."""
    assert st["Uid"].split() == [str(user.pw_uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(user.pw_gid)] * 4, st["Gid"]
    groups = {int(g) for g in st["Groups"].split()}
    assert groups <= set(os.getgrouplist(user.pw_name, user.pw_gid)), st["Groups"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st
    assert int(st["CapAmb"], 16) == 0, st


@needs_root
def test_broker_runs_as_the_gateway_user(sandboxed):
    user = pwd.getpwnam(GATEWAY_USER)
    st = status_fields(sandboxed.proc.pid)
    assert_is_gateway_user(st, user)
    assert int(st["CapBnd"], 16) != 0  # not a namespace of its own: the host's bounding set
    # The store stays writable: the state directory and its files are the user's now.
    for name in [".", *os.listdir(sandboxed.state_dir)]:
        path = os.path.join(sandboxed.state_dir, name)
        if name != "empty" and (name == "." or os.path.isfile(path)):
            assert os.stat(path).st_uid == user.pw_uid, path
    assert "broker: running as user mailgate" in sandboxed.log_text()
    sandboxed.cli("user", "add", "late-user", "--password-stdin", stdin="late-Secret-1\n")
    c = login(sandboxed, "alice")  # the broker still reads and writes the store
    c.close()


@needs_root
def test_worker_is_unprivileged_and_filtered(sandboxed):
    user = pwd.getpwnam(GATEWAY_USER)
    pids = sandboxed.worker_pids()
    assert len(pids) == 2
    for pid in pids:
        st = status_fields(pid)
        assert_is_gateway_user(st, user)
        assert st["NoNewPrivs"] == "1"
        assert st["Seccomp"] == "2"  # filter mode
        assert core_limit(pid) == ["0", "0"]
    skip_without_user_namespaces(sandboxed)
    for pid in pids:
        st = status_fields(pid)
        assert int(st["CapBnd"], 16) == 0, st  # even in the worker's own user namespace


def test_worker_root_is_the_empty_directory(sandboxed):
    """Also when not started as root: the workers chroot from a user namespace of their own."""
    empty = os.path.join(sandboxed.state_dir, "empty")
    st = os.stat(empty)
    assert (st.st_uid, st.st_mode & 0o7777) == (0 if os.geteuid() == 0 else os.geteuid(), 0o555)
    assert os.listdir(empty) == []
    skip_without_user_namespaces(sandboxed)
    for pid in sandboxed.worker_pids():
        # Its own mount namespace: readlink shows "/", the inode tells which directory it is.
        root = os.stat(f"/proc/{pid}/root")
        assert (root.st_dev, root.st_ino) == (st.st_dev, st.st_ino), pid
        assert os.listdir(f"/proc/{pid}/root") == []


def test_worker_serves_inside_the_sandbox(sandboxed):
    c = login(sandboxed, "alice")  # evdns, upstream TLS with the CA file loaded at setup
    c.close()
    assert "seccomp on" in sandboxed.log_text()


def test_broker_is_not_dumpable(sandboxed):
    assert "broker: dumpable=0, core files off" in sandboxed.log_text()
    assert core_limit(sandboxed.proc.pid) == ["0", "0"]


def test_forbidden_system_call_kills_the_worker_and_it_is_restarted(fleet, monkeypatch):
    monkeypatch.setenv("MAILGATE_TEST_SANDBOX_HOOK", "1")
    gw = fleet.new("sandbox-hook")
    if "test hook armed" not in gw.log_text():
        pytest.skip("the binary has no test hooks (built with -Dtests=false)")
    victim = gw.worker_pids()[0]
    offset = gw.log_offset()
    os.kill(victim, signal.SIGUSR2)  # the hook calls ptrace(2)
    gw.wait_for_log(rf"\(pid {victim}\) was killed by signal {int(signal.SIGSYS)}", offset)
    gw.wait_for_log(r"restarting worker", offset, timeout=15)
    wait_until(lambda: len(gw.worker_pids()) == 2 and victim not in gw.worker_pids(),
               timeout=15, what="the worker restarted")
    for _ in range(4):  # both workers serve (the kernel spreads connections over them)
        c = login(gw, "alice")
        c.close()


@needs_root
def test_serve_refuses_without_the_user(fleet):
    gw = fleet.new("sandbox-nouser", start=False, gateway_lines=["user = no-such-user-xyz"])
    gw.write_config()
    started = time.monotonic()
    r = gw.cli("serve", timeout=30)
    assert r.returncode == 1
    assert "user \"no-such-user-xyz\"" in r.stderr
    assert ("adduser --system --group --home /var/lib/mailgate --no-create-home "
            "no-such-user-xyz") in r.stderr
    assert time.monotonic() - started < 20


@needs_root
def test_serve_refuses_files_the_user_cannot_read(fleet):
    """A reload and every worker read the configuration's files as [gateway] user: a client
    secret file only root can read is refused at the start, named, with the fix."""
    gw = fleet.new("sandbox-unreadable", start=False)
    gw.write_config()
    os.chown(gw.secret_file, 0, 0)
    os.chmod(gw.secret_file, 0o600)
    r = gw.cli("serve", timeout=30)
    assert r.returncode == 1
    assert f"{gw.secret_file}" in r.stderr and "cannot read" in r.stderr, r.stderr
    assert "user mailgate cannot read the files above" in r.stderr, r.stderr
    assert "chown mailgate FILE && chmod 0600 FILE" in r.stderr, r.stderr


def free_privileged_port():
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port below 1024")


@needs_root
def test_serve_as_the_user_with_only_net_bind_service(fleet):
    """contrib/mailgate.service: started as the user, with CAP_NET_BIND_SERVICE as its only
    (ambient) capability. The broker binds a port below 1024, then drops the capability;
    the workers still chroot (user namespace) and serve."""
    gw = fleet.new("sandbox-systemd", start=False)
    gw.listeners["imaps"] = ("implicit", free_privileged_port())
    gw.write_config()
    user = pwd.getpwnam(GATEWAY_USER)
    for root, dirs, files in os.walk(gw.state_dir):  # systemd's StateDirectory= does this
        for name in [root, *(os.path.join(root, f) for f in files)]:
            os.chown(name, user.pw_uid, user.pw_gid)
    gw.launcher = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                   "--init-groups", "--inh-caps=+net_bind_service",
                   "--ambient-caps=+net_bind_service", "--bounding-set=-all,+net_bind_service"]
    gw.start()
    broker = status_fields(gw.proc.pid)
    assert_is_gateway_user(broker, user)  # CapEff, CapPrm, CapAmb: all 0 after the bind
    for pid in gw.worker_pids():
        assert_is_gateway_user(status_fields(pid), user)
        assert NO_USERNS in gw.log_text() or os.listdir(f"/proc/{pid}/root") == []
    c = login(gw, "alice")
    c.close()
