"""The relay under a client that stops reading in the middle of a large FETCH: the worker holds
a bounded amount (RELAY_HIGH plus one read chunk and OpenSSL's read-ahead buffer), not the
message, and when the client reads again every byte arrives in order. The relay reads with
OpenSSL read-ahead, so this also proves that records buffered inside OpenSSL while reading was
paused are not stranded when it resumes (relay.c, resume_peer).

The second test pipelines commands while a large FETCH streams: the relay then writes the
client's output from two places (its write event, and after reading the client's command), and
whichever drains it must let a paused upstream read on (an early version of relay.c resumed
only from the write event; `make bench` stalled on it)."""
import hashlib
import re
import socket
import time

from conftest import USERS
from harness.dovecot import big_message, sha256
from harness.stack import ALICE

SIZE = 32 << 20
GROWTH_MAX_KIB = 4 << 10  # unbounded, the worker would hold most of the 32 MiB
FOLDER = "RelayBackpressure"


def seed(stack):
    message = big_message("Relay backpressure", ALICE, SIZE)
    m = stack.dovecot.login_xoauth2(ALICE, stack.idp.token())
    try:
        m.delete(FOLDER)
        m.create(FOLDER)
        assert m.append(FOLDER, None, None, message)[0] == "OK"
    finally:
        m.logout()
    return sha256(message)


def read_line(tls):
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = tls.recv(1)
        assert chunk, "connection closed"
        line += chunk
    return line


def login_and_select(tls):
    read_line(tls)
    tls.sendall(f"a1 LOGIN alice {USERS['alice'][0]}\r\n".encode())
    while not read_line(tls).startswith(b"a1 "):
        pass
    tls.sendall(f"a2 SELECT {FOLDER}\r\n".encode())
    while not (line := read_line(tls)).startswith(b"a2 "):
        pass
    assert line.startswith(b"a2 OK"), line


def test_client_that_stops_reading_mid_fetch(fleet, stack):
    digest = seed(stack)
    # ASan returns freed memory at once, so RSS follows what the worker holds.
    gw = fleet.new("backpressure", asan_options="quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)  # no kernel-side slack
    raw.connect(("127.0.0.1", gw.imaps_port))
    raw.settimeout(60)
    tls = gw.client_tls().wrap_socket(raw, server_hostname="localhost")
    try:
        login_and_select(tls)
        time.sleep(0.5)
        rss_before = gw.workers_rss_kib()
        tls.sendall(b"a3 UID FETCH 1 (BODY.PEEK[])\r\n")
        time.sleep(4)  # the upstream sends, the client does not read
        growth = gw.workers_rss_kib() - rss_before
        assert growth < GROWTH_MAX_KIB, f"worker grew by {growth} KiB while the client did not read"

        head = read_line(tls)
        size = int(re.search(rb"\{(\d+)\}\r\n$", head).group(1))
        assert size == SIZE
        h, left = hashlib.sha256(), size
        while left:
            chunk = tls.recv(min(left, 1 << 16))
            assert chunk, f"connection closed with {left} bytes to go"
            h.update(chunk)
            left -= len(chunk)
        assert h.hexdigest() == digest
        assert read_line(tls) == b")\r\n"
        assert read_line(tls).startswith(b"a3 OK")
    finally:
        tls.close()


def test_commands_sent_while_a_fetch_streams(fleet, stack):
    digest = seed(stack)
    gw = fleet.new("backpressure-pipelined")
    raw = socket.create_connection(("127.0.0.1", gw.imaps_port), timeout=30)
    tls = gw.client_tls().wrap_socket(raw, server_hostname="localhost")
    noops = 32
    try:
        login_and_select(tls)
        tls.sendall(b"a3 UID FETCH 1 (BODY.PEEK[])\r\n")
        head = read_line(tls)
        size = int(re.search(rb"\{(\d+)\}\r\n$", head).group(1))
        assert size == SIZE
        h, left, sent, every = hashlib.sha256(), size, 0, size // (noops + 1)
        while left:
            chunk = tls.recv(min(left, 1 << 16))
            assert chunk, f"connection closed with {left} bytes to go"
            h.update(chunk)
            left -= len(chunk)
            if sent < noops and size - left >= (sent + 1) * every:
                sent += 1
                tls.sendall(f"n{sent} NOOP\r\n".encode())
        assert h.hexdigest() == digest
        assert read_line(tls) == b")\r\n"
        assert read_line(tls).startswith(b"a3 OK")
        tagged = []
        while len(tagged) < sent:
            line = read_line(tls)
            if not line.startswith(b"* "):
                tagged.append(line)
        assert all(t.startswith(f"n{i} OK".encode()) for i, t in enumerate(tagged, 1)), tagged
        assert sent == noops
    finally:
        tls.close()
