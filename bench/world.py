"""Everything the bench measures against, started once: the harness stack (certificates, fake
IdP, Dovecot, SMTP sink), the fast fake upstream, one haproxy bridge per upstream and one
gateway per upstream (release build, 2 workers, no per-address limits: all load comes from
127.0.0.1). Each side of a comparison is an Endpoint plus the processes whose CPU and memory
count for it.
"""
import os
from dataclasses import dataclass, field

from client import Endpoint
from fast_upstream import FastUpstream, message_body
from harness.dovecot import big_message, reseed_mailbox, sha256
from harness.gateway import Gateway
from harness.stack import ALICE, DAVE, start_stack
from haproxy import Haproxy

BENCH_USER, BENCH_PASSWORD = "bench", "Bench-Password-1"
BENCH_POP_USER = "benchpop"
FOLDER = "Bench"  # in Dovecot; the fast upstream has any folder
UNLIMITED = ["max_connections_per_ip = 0", "max_logins_per_ip = 0"]


@dataclass
class Side:
    """One way to reach an upstream: direct, haproxy or mailgate."""
    endpoint: Endpoint
    pids: object = None  # () -> pids whose CPU/RSS is this side's cost; None for direct
    broker_pids: object = None  # mailgate only: the broker, reported apart from the workers


@dataclass
class Upstream:
    name: str  # "fast" or "dovecot"
    folder: str
    uid: int
    message_sha: str
    sides: dict = field(default_factory=dict)  # "direct" / "haproxy" / "mailgate" -> Side


@dataclass
class World:
    workdir: str
    stack: object = None
    fast: object = None
    proxies: list = field(default_factory=list)
    gateways: dict = field(default_factory=dict)  # upstream name -> Gateway
    upstreams: dict = field(default_factory=dict)
    pop_sha: str = None
    token: str = None
    ecdsa: bool = True  # the gateway and haproxy offer an ECDSA certificate beside the RSA one

    def stop(self):
        for gw in self.gateways.values():
            gw.stop()
        for proxy in self.proxies:
            proxy.stop()
        if self.fast:
            self.fast.stop()
        if self.stack:
            self.stack.stop()


def _gateway(world, name, imap_server, protocols, workers):
    stack = world.stack
    settings = {"imap_server": imap_server} if imap_server else {}  # else: Dovecot's
    if world.ecdsa:  # README's recommended [tls]: RSA and ECDSA side by side
        settings["tls_lines"] = [f"ecdsa_certificate = {stack.certs.ecdsa_fullchain}",
                                 f"ecdsa_private_key = {stack.certs.ecdsa_key}"]
    gw = Gateway(world.workdir, stack.certs, stack.idp, stack.dovecot, name=name,
                 log_level="warn", workers=workers, protocols=protocols,
                 gateway_lines=UNLIMITED, **settings)
    gw.write_config()
    gw.add_user(BENCH_USER, BENCH_PASSWORD, mailbox=ALICE)
    if "pop3" in protocols:
        gw.add_user(BENCH_POP_USER, BENCH_PASSWORD, mailbox=DAVE)
    world.gateways[name] = gw
    return gw.start()


def _sides(world, upstream_port, gw, proxy_name):
    ca = world.stack.certs.ca
    proxy = Haproxy(world.workdir, world.stack.certs, upstream_port, name=proxy_name,
                    ecdsa=world.ecdsa).start()
    world.proxies.append(proxy)
    return {"direct": Side(Endpoint("direct", upstream_port, ca, "xoauth2", ALICE, world.token)),
            "haproxy": Side(Endpoint("haproxy", proxy.port, ca, "xoauth2", ALICE, world.token),
                            proxy.pids),
            "mailgate": Side(Endpoint("mailgate", gw.imaps_port, ca, "login", BENCH_USER,
                                      BENCH_PASSWORD), gw.worker_pids, lambda: [gw.proc.pid])}


def _seed_dovecot(world, size):
    stack = world.stack
    message = big_message("Benchmark message", ALICE, size)
    m = stack.dovecot.login_xoauth2(ALICE, world.token)
    try:
        m.create(FOLDER)
        if m.append(FOLDER, None, None, message)[0] != "OK":
            raise RuntimeError("APPEND of the benchmark message failed")
    finally:
        m.logout()
    pop_message = big_message("Benchmark POP3 message", DAVE, size)
    reseed_mailbox(stack.dovecot, world.token, DAVE, [pop_message])
    world.pop_sha = sha256(pop_message)
    return sha256(message)


def start_world(workdir, mailgate, size, upstreams, workers=2, ecdsa=True):
    """upstreams: a subset of ("fast", "dovecot"); ecdsa: RSA + ECDSA certificates (else RSA)."""
    os.environ["MAILGATE_BIN"] = os.path.abspath(mailgate)
    world = World(workdir, ecdsa=ecdsa)
    try:
        world.stack = start_stack(os.path.join(workdir, "stack"))
        world.token = world.stack.idp.token()
        if "dovecot" in upstreams:
            digest = _seed_dovecot(world, size)
            gw = _gateway(world, "dovecot", None, ("imap", "pop3", "smtp"), workers)
            up = Upstream("dovecot", FOLDER, 1, digest)
            up.sides = _sides(world, world.stack.dovecot.imaps_port, gw, "haproxy-dovecot")
            world.upstreams["dovecot"] = up
        if "fast" in upstreams:
            world.fast = FastUpstream(workdir, world.stack.certs, size).start()
            gw = _gateway(world, "fast", f"127.0.0.1:{world.fast.port}", ("imap",), workers)
            up = Upstream("fast", "INBOX", 1, sha256(message_body(size)))
            up.sides = _sides(world, world.fast.port, gw, "haproxy-fast")
            world.upstreams = {"fast": up, **world.upstreams}  # reported first
    except BaseException:
        world.stop()
        raise
    return world
