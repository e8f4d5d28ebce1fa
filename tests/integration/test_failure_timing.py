"""Constant failure timing: every authentication failure is answered auth_failure_delay after
the login command arrived, whatever its cause. Before, a right password whose mailbox the
upstream refused (carol: the app has no FullAccess on her mailbox) was answered at once and a
wrong one after the delay, so the time of the answer gave the password away."""
import time

import pytest

from conftest import USERS, quoted
from harness.imapclient import RawImap

DELAY_S = 1.0
GROWING_BASE_S = 0.5
ATTEMPTS = {
    "wrong password": ("alice", "not-alices-password"),
    "unknown user": ("nobody-here", "whatever-1"),
    "right password, mailbox refused upstream": ("carol", USERS["carol"][0]),
}


@pytest.fixture(scope="module")
def timing_gateway(fleet):
    # No growth (max_failure_delay = the base): this test compares causes, one at a time.
    return fleet.new("timing", auth_failure_delay=f"{int(DELAY_S * 1000)}ms",
                     gateway_lines=[f"max_failure_delay = {int(DELAY_S * 1000)}ms"])


@pytest.fixture(scope="module")
def growing_gateway(fleet):
    # A base above what one Argon2 verification takes on a loaded machine (ASan build): the
    # answers then show the timers, not the verifications.
    return fleet.new("timing-growing", auth_failure_delay=f"{int(GROWING_BASE_S * 1000)}ms",
                     gateway_lines=["max_failure_delay = 8s", "lockout_threshold = 0"])


def timed_login(gw, user, password):
    """(seconds from sending LOGIN to its tagged answer, the answer without its tag)"""
    with RawImap(gw.imaps_port, tls=True, ca_file=gw.certs.ca) as c:
        start = time.monotonic()
        _, done = c.command("t1", f"LOGIN {quoted(user)} {quoted(password)}")
        return time.monotonic() - start, done.split(" ", 1)[1]


def test_every_authentication_failure_is_answered_after_the_same_delay(timing_gateway):
    # Not measured: carol's first login fetches her token from the IdP (and, refused upstream,
    # a fresh one): on a loaded machine that work alone can outlast the delay, which hides the
    # time of the answer only when the answer is ready before it.
    timed_login(timing_gateway, *ATTEMPTS["right password, mailbox refused upstream"])
    for round_ in range(2):
        seen = {cause: timed_login(timing_gateway, *creds) for cause, creds in ATTEMPTS.items()}
        answers = {answer for _, answer in seen.values()}
        assert answers == {"NO [AUTHENTICATIONFAILED] Authentication failed."}, seen
        times = {cause: round(t, 3) for cause, (t, _) in seen.items()}
        print(f"round {round_}: {times}")
        assert min(times.values()) >= DELAY_S * 0.95, f"round {round_}: {times}"
        assert max(times.values()) <= min(times.values()) * 1.25, f"round {round_}: {times}"


def test_refused_mailbox_answered_like_the_next_wrong_guess(growing_gateway):
    """With delays growing per failure, a right password whose mailbox the upstream refuses is
    answered when the next wrong guess would be (the broker tells the worker that delay with an
    accepted password too), and it resets nothing: the guess after it waits as long."""
    carol, right = "carol", USERS["carol"][0]
    timed_login(growing_gateway, carol, right)  # fetch carol's token: later answers are timers
    wrong = [timed_login(growing_gateway, carol, f"guess-{i}")[0] for i in range(3)]
    # The delay doubles per failure: base, 2 x base, 4 x base (lower bounds: a loaded machine
    # may answer later, never earlier).
    for i, t in enumerate(wrong):
        assert t >= GROWING_BASE_S * 2 ** i * 0.95, wrong
    t_right, answer = timed_login(growing_gateway, carol, right)
    t_next, _ = timed_login(growing_gateway, carol, "guess-next")
    assert answer == "NO [AUTHENTICATIONFAILED] Authentication failed."
    print(f"wrong {wrong}, right {t_right:.3f}, next wrong {t_next:.3f}")
    assert t_right >= GROWING_BASE_S * 8 * 0.95, (wrong, t_right)  # the next guess's delay
    assert abs(t_right - t_next) <= 0.25 * t_next, (t_right, t_next)
