"""The upstream TLS handshake: a worker resumes its TLS session with the upstream on later
logins instead of a full handshake (the largest share of a login's CPU), within one provider and
server only."""
import re

from conftest import assert_logged_in, connect

HANDSHAKE = re.compile(r"upstream (\S+): (TLSv[\d.]+), (session resumed|full handshake)")


def handshakes(gateway, offset):
    return HANDSHAKE.findall(gateway.log_since(offset))


def login_once(gateway):
    with connect(gateway) as c:
        _, done = c.command("a1", "LOGIN alice alice-Secret-1")
        assert_logged_in(c, done, "a1")


def test_later_logins_resume_the_upstream_session(gateway):
    offset = gateway.log_offset()
    for _ in range(8):
        login_once(gateway)
    seen = handshakes(gateway, offset)
    assert len(seen) == 8, seen
    # Each worker makes at most one full handshake (its first); the rest resume.
    full = [h for h in seen if h[2] == "full handshake"]
    assert len(full) <= gateway.settings["workers"], seen
    assert all(h[1] == "TLSv1.3" for h in seen), seen
