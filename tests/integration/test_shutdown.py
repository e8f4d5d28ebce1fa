"""Stopping the gateway (SIGTERM): clients still in the login phase get the protocol's goodbye
before EOF; relaying sessions are just closed (the relay is protocol-blind)."""
import ssl
import time

from conftest import connect, login
from harness.imapclient import ConnectionClosed

BYE = "* BYE Server shutting down."


def lines_until_eof(c, timeout=10):
    """Every line the server still sends, up to its EOF."""
    c.sock.settimeout(timeout)
    lines = []
    try:
        while True:
            lines.append(c.readline())
    except ConnectionClosed:
        return lines


def test_sigterm_says_bye_before_login_and_closes_relays(fleet):
    gw = fleet.new(f"shutdown-{len(fleet.instances)}")
    implicit = connect(gw)  # greeting read, not logged in
    plain = connect(gw, tls=False)  # before STARTTLS
    relaying = login(gw, "alice")
    assert implicit.greeting.startswith("* OK") and plain.greeting.startswith("* OK")
    started = time.monotonic()
    assert gw.stop() == 0
    assert time.monotonic() - started < 5  # the goodbyes do not hold the exit up
    assert lines_until_eof(implicit) == [BYE]
    assert lines_until_eof(plain) == [BYE]
    try:
        rest = lines_until_eof(relaying)
    except (OSError, ssl.SSLError):  # a relay may just be cut
        rest = []
    assert BYE not in rest, rest
    for c in (implicit, plain, relaying):
        c.close()
