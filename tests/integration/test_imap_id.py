"""IMAP ID with RFC 2971's maxima (30 fields, values of 1024 octets: ~32 KB on one line) and the
pre-login line limit: 64 KiB of command (without its CRLF) accepted, one byte more refused with
BAD, and the session goes on."""
import subprocess

from conftest import USERS, connect

LIMIT = 64 * 1024


def id_command(tag, fields=30, value_len=1024):
    pairs = " ".join(f'"field-{i:02d}" "{chr(65 + i % 26) * value_len}"' for i in range(fields))
    return f"{tag} ID ({pairs})"


def padded_id(tag, length):
    """An ID line of exactly length bytes (CRLF not counted): one value fills it up."""
    head = f'{tag} ID ("name" "'
    return head + "x" * (length - len(head) - 2) + '")'


def test_id_at_rfc2971_maxima(gateway):
    line = id_command("a1")
    assert 30 * 1024 < len(line) < LIMIT
    with connect(gateway) as c:
        untagged, done = c.command("a1", line[3:])
        assert done == "a1 OK ID completed.", done
        assert untagged[0].startswith('* ID ("name" "mailgate"')
        _, done = c.command("a2", f"LOGIN alice \"{USERS['alice'][0]}\"")
        assert done.startswith("a2 OK"), done


def test_line_of_64_kib_accepted_one_more_refused(gateway):
    with connect(gateway) as c:
        line = padded_id("a1", LIMIT)
        assert len(line) == LIMIT
        c.send(line + "\r\n")
        _, done = c.read_until_tagged("a1")
        assert done == "a1 OK ID completed.", done
        c.send(padded_id("a2", LIMIT + 1) + "\r\n")
        _, done = c.read_until_tagged("a2")
        assert done == "a2 BAD Command line too long.", done
        _, done = c.command("a3", "NOOP")  # the rest of the long line was not a command
        assert done == "a3 OK NOOP completed.", done


def test_id_at_maxima_through_s_client(gateway):
    """The same ID from openssl s_client, over the STARTTLS listener."""
    r = subprocess.run(["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile",
                        gateway.certs.ca, "-servername", "localhost", "-starttls", "imap",
                        "-connect", f"127.0.0.1:{gateway.imap_port}"],
                       input=(id_command("i1") + "\r\ni2 LOGOUT\r\n").encode(),
                       capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert "i1 OK ID completed." in out, (out[-500:], r.stderr[-500:])
    assert "i2 OK LOGOUT completed." in out
