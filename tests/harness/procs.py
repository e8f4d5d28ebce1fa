"""Small process and network helpers shared by the harness modules.

Every server the harness starts is a subprocess remembered by its PID and stopped by that PID
(SIGTERM, then SIGKILL after a timeout); nothing is ever killed by name.
"""
import os
import signal
import socket
import subprocess
import time

LOCALHOST = "127.0.0.1"


_ports_given = set()


def free_port():
    """A TCP port that was free a moment ago (bind port 0, read it, close), and never one this
    test process handed out before: the kernel may offer a just-closed port again, and two
    listeners of one gateway once got the same port (the config check refused it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOCALHOST, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def closed_port():
    """A port with nothing listening on it (for "upstream unreachable")."""
    return free_port()


def wait_until(condition, timeout=10.0, interval=0.02, what="condition"):
    """Polls condition() until it returns a truthy value; raises TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (OSError, ValueError) as e:  # not up yet
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def port_accepts(port, host=LOCALHOST):
    with socket.create_connection((host, port), timeout=1):
        return True


def stop_process(proc, timeout=10.0):
    """SIGTERM, wait, then SIGKILL. Returns the exit status (or None if it was never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
    return proc.wait()


def child_pids(pid):
    """Direct children of pid (from /proc), for per-worker fd checks."""
    children = []
    task_dir = f"/proc/{pid}/task"
    try:
        for tid in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{tid}/children") as f:
                    children += [int(p) for p in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return sorted(set(children))


def open_fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def tcp_connections_count(pid):
    """Number of socket fds of a process (its listeners + connections)."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                pass
    except OSError:
        pass
    return count
