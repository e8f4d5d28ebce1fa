"""Worker memory after a burst: once hundreds of TLS sessions have closed, the worker gives the
memory back (heap_trim.c) instead of staying at its peak RSS.

RSS is glibc malloc's behaviour, which the sanitizer build replaces with ASan's allocator (it
keeps freed memory in quarantine), so this test runs the release build: `make check` builds it
and names it in MAILGATE_RELEASE_BIN."""
import os
import socket
import time

import pytest

SESSIONS = 600


def release_binary():
    path = os.environ.get("MAILGATE_RELEASE_BIN")
    if not path or not os.path.exists(path):
        pytest.skip("needs the release build: make check sets MAILGATE_RELEASE_BIN")
    return path


def open_session(gw):
    raw = socket.create_connection(("127.0.0.1", gw.imaps_port), timeout=30)
    tls = gw.client_tls().wrap_socket(raw, server_hostname="localhost")
    assert tls.recv(4096).startswith(b"* OK")
    return tls


def test_rss_returns_after_a_burst_of_sessions(fleet):
    gw = fleet.new("heap", gateway_lines=["max_connections_per_ip = 0"], workers=1,
                   binary=release_binary())
    open_session(gw).close()  # the first handshake's one-time allocations
    time.sleep(0.5)
    baseline = gw.workers_rss_kib()
    sessions = [open_session(gw) for _ in range(SESSIONS)]
    peak = gw.workers_rss_kib()
    assert peak - baseline > SESSIONS * 16, (baseline, peak)  # the burst really used memory
    for s in sessions:
        s.close()
    deadline, rss = time.monotonic() + 20, peak
    while time.monotonic() < deadline:
        time.sleep(1)
        rss = gw.workers_rss_kib()
        if rss - baseline < (peak - baseline) / 4:
            break
    assert rss - baseline < (peak - baseline) / 4, (baseline, peak, rss)
