"""The bench's reference TLS bridge: Debian's haproxy in TCP mode on 127.0.0.1.

It terminates the client's TLS with the same certificates as the gateway and opens a verified
TLS connection to the upstream (`ssl verify required ca-file`), relaying bytes untouched: what
a TLS-terminating proxy costs with no protocol logic at all. The client logs in with XOAUTH2
through it, as it would directly. Started as a subprocess in the foreground (-db) and stopped
by PID.
"""
import os
import shutil
import subprocess

from harness.procs import free_port, port_accepts, stop_process, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# haproxy wants 2 descriptors per connection and refuses to start when maxconn needs more than
# the hard limit (20,000 here): 9,800 connections fit, and hold the bench's 9,000 sessions.
MAXCONN = 9800


def config_text(port, upstream_port, crts, ca_file, maxconn):
    return "\n".join([
        "global",
        f"    maxconn {maxconn}",
        "    nbthread 2",
        "defaults",
        "    mode tcp",
        "    timeout connect 10s",
        "    timeout client 1h",
        "    timeout server 1h",
        "frontend bench_in",
        f"    bind 127.0.0.1:{port} ssl " + " ".join(f"crt {c}" for c in crts),
        f"    maxconn {maxconn}",
        "    default_backend bench_up",
        "backend bench_up",
        f"    server up 127.0.0.1:{upstream_port} ssl verify required ca-file {ca_file}"
        " verifyhost localhost sni str(localhost)",
        ""])


class Haproxy:
    """One haproxy in front of 127.0.0.1:upstream_port."""

    def __init__(self, workdir, certs, upstream_port, name="haproxy", maxconn=MAXCONN,
                 ecdsa=False):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.config_path = os.path.join(self.dir, "haproxy.cfg")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        pairs = [("server", certs.fullchain, certs.key)]
        if ecdsa:  # haproxy picks per client, as the gateway does
            pairs.append(("server-ecdsa", certs.ecdsa_fullchain, certs.ecdsa_key))
        crts = [self._combined(*pair) for pair in pairs]
        with open(self.config_path, "w") as f:
            f.write(config_text(self.port, upstream_port, crts, certs.ca, maxconn))
        self.proc = None

    def _combined(self, name, chain, key):
        crt = os.path.join(self.dir, f"{name}-with-key.pem")  # haproxy wants both in one file
        with open(crt, "w") as out:
            for part in (chain, key):
                with open(part) as f:
                    out.write(f.read())
        os.chmod(crt, 0o600)
        return crt

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.config_path], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is None and port_accepts(self.port), timeout=15,
                   what="haproxy")
        return self

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def stop(self):
        stop_process(self.proc)
        self.proc = None
