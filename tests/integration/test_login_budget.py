"""What one client can consume before login: a client that pipelines cheap commands (IMAP
CAPABILITY, POP3 CAPA, SMTP HELP) and never reads must not grow the worker without bound. The
session core stops taking commands while our unsent replies are over 64 KiB; once the client
reads, every buffered command is answered, in order, and the session goes on."""
import re
import time

import pytest

from harness.nonreading import NonReadingTls

FLOOD_SECONDS = 3
# Enough pipelined commands for 16 MiB of replies: what the worker queued before the bound.
REPLY_BYTES_SENT = 16 << 20
RSS_GROWTH_MAX_KIB = 2 << 10

PROTOCOLS = {
    # listener, command i, the end of its reply, the closing command and its reply's end
    "imap": ("imaps", lambda i: b"a%d CAPABILITY\r\n" % i, rb"\r\na0 OK [^\r]*\r\n$",
             b"z LOGOUT\r\n", rb"\r\nz OK [^\r]*\r\n$"),
    "pop3": ("pop3s", lambda i: b"CAPA\r\n", rb"\r\n\.\r\n$", b"QUIT\r\n", rb"^\+OK [^\r]*\r\n$"),
    "smtp": ("smtps", lambda i: b"HELP\r\n", rb"^214 [^\r]*\r\n$", b"QUIT\r\n",
             rb"^221 [^\r]*\r\n$"),
}


def fresh_gateway(fleet, protocol):
    """A gateway of its own: memory a session before had freed would hide growth. Without
    ASan's quarantine of freed memory (256 MiB by default), which would show every reply ever
    sent as growth, not only what stays queued."""
    return fleet.new(f"budget-{protocol}", protocols=(protocol,),
                     asan_options="quarantine_size_mb=0:thread_local_quarantine_size_kb=0")


def ends_with(pattern):
    rx = re.compile(pattern, re.S)
    return lambda data: rx.search(data) is not None


def flood(c, command, first, count, seconds):
    """Pipelines command(first..) for `seconds` (at most `count` of them) without reading;
    returns how many were queued (all of them are sent before anything is read later)."""
    deadline, queued = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        if queued < count and len(c.pending) < (1 << 20):
            batch = min(500, count - queued)
            c.write(b"".join(command(first + queued + k) for k in range(batch)))
            queued += batch
        if c.push() == 0:
            time.sleep(0.01)
    return queued


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_pipelining_client_that_never_reads_is_bounded(fleet, protocol):
    listener, command, reply_end, close_command, close_end = PROTOCOLS[protocol]
    gw = fresh_gateway(fleet, protocol)
    c = NonReadingTls(gw.port(listener), gw.certs.ca)
    try:
        c.read_until(lambda data: data.endswith(b"\r\n"), what="greeting")
        c.take()
        # One reply, to know what each pipelined command must get back.
        c.write(command(0))
        c.read_until(ends_with(reply_end))
        sample = c.take()
        expected = (lambda i: sample.replace(b"a0 OK", b"a%d OK" % i)) if protocol == "imap" \
            else (lambda i: sample)

        rss_before = gw.workers_rss_kib()
        sent = flood(c, command, 1, REPLY_BYTES_SENT // len(sample) + 1, FLOOD_SECONDS)
        growth = gw.workers_rss_kib() - rss_before
        print(f"{protocol}: {sent} commands pipelined, workers grew by {growth} KiB")
        assert growth < RSS_GROWTH_MAX_KIB, \
            f"workers grew by {growth} KiB while {sent} {protocol} commands were pipelined"

        # The client reads at last: every command is answered, in order, nothing lost.
        want = b"".join(expected(i) for i in range(1, sent + 1))
        c.read_until(lambda data: len(data) >= len(want), timeout=120, what="pipelined replies")
        got = c.take()
        assert got == want, f"{len(got)} bytes, want {len(want)}; first difference at " \
            f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}"
        # and the session still works
        c.write(close_command)
        c.read_until(ends_with(close_end), what="reply to the closing command")
    finally:
        c.close()
