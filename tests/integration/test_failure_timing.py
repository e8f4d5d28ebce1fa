"""Constant failure timing: every authentication failure is answered auth_failure_delay after
the login command arrived, whatever its cause. Before, a right password whose mailbox the
upstream refused (carol: the app has no FullAccess on her mailbox) was answered at once and a
wrong one after the delay, so the time of the answer gave the password away."""
import time

import pytest

from conftest import USERS, quoted
from harness.imapclient import RawImap

DELAY_S = 1.0
ATTEMPTS = {
    "wrong password": ("alice", "not-alices-password"),
    "unknown user": ("nobody-here", "whatever-1"),
    "right password, mailbox refused upstream": ("carol", USERS["carol"][0]),
}


@pytest.fixture(scope="module")
def timing_gateway(fleet):
    return fleet.new("timing", auth_failure_delay=f"{int(DELAY_S * 1000)}ms")


def timed_login(gw, user, password):
    """(seconds from sending LOGIN to its tagged answer, the answer without its tag)"""
    with RawImap(gw.imaps_port, tls=True, ca_file=gw.certs.ca) as c:
        start = time.monotonic()
        _, done = c.command("t1", f"LOGIN {quoted(user)} {quoted(password)}")
        return time.monotonic() - start, done.split(" ", 1)[1]


def test_every_authentication_failure_is_answered_after_the_same_delay(timing_gateway):
    for round_ in range(2):  # the first round also fetches carol's token from the IdP
        seen = {cause: timed_login(timing_gateway, *creds) for cause, creds in ATTEMPTS.items()}
        answers = {answer for _, answer in seen.values()}
        assert answers == {"NO [AUTHENTICATIONFAILED] Authentication failed."}, seen
        times = {cause: round(t, 3) for cause, (t, _) in seen.items()}
        print(f"round {round_}: {times}")
        assert min(times.values()) >= DELAY_S * 0.95, f"round {round_}: {times}"
        assert max(times.values()) <= min(times.values()) * 1.25, f"round {round_}: {times}"
