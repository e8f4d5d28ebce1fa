"""The workers' resolver cache (src/worker/dns_cache.c) against a private NSD as the gateway's
`[gateway] resolver`, through a UDP proxy that counts the queries NSD gets (NSD logs none).

The upstream is bench/fast_upstream.py with a certificate for imap.example.test signed by the
test CA: Dovecot's certificate names only localhost, and the gateway verifies the name it
resolved. One worker, since each worker has its own cache. The zone's TTL is 1 s, below the
cache's 5 s floor (DNS_TTL_MIN_S): logins within 5 s ask once, a login after it asks again."""
import collections
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from conftest import try_login
from harness.certs import sign_for_names
from harness.gateway import login_lines
from harness.nsd import ZONE_HEADER, Nsd
from harness.procs import LOCALHOST, free_port, port_accepts, stop_process, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "imap.example.test"
MISSING = "nosuch.example.test"
MULTI = "multi.example.test"  # first address refuses, the second serves
TTL_FLOOR_S = 5  # DNS_TTL_MIN_S
A, AAAA = 1, 28


def question(packet):
    """(name, qtype) of a DNS message's first question, or None."""
    labels, off = [], 12
    while off < len(packet) and packet[off]:
        n = packet[off]
        labels.append(packet[off + 1:off + 1 + n].decode(errors="replace"))
        off += 1 + n
    if off + 3 > len(packet):
        return None
    return ".".join(labels).lower(), struct.unpack("!H", packet[off + 1:off + 3])[0]


def ask_a(port, name):
    """The A addresses NSD answers for name (a direct query, not through the proxy)."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query = struct.pack("!6H", 0x4242, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!2H", A, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(query, (LOCALHOST, port))
        reply = s.recv(4096)
    answers, off, found = struct.unpack("!H", reply[6:8])[0], 12 + len(qname) + 4, []
    for _ in range(answers):
        off += 2 if reply[off] & 0xC0 else reply.index(b"\0", off) + 1 - off  # owner name
        rtype, _, _, rdlen = struct.unpack("!HHIH", reply[off:off + 10])
        if rtype == A:
            found.append(socket.inet_ntoa(reply[off + 10:off + 14]))
        off += 10 + rdlen
    return found


class CountingProxy:
    """UDP on a port of its own, forwarding each query to NSD and each answer back, counting
    the questions by (name, qtype)."""

    def __init__(self, target_port):
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((LOCALHOST, 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect((LOCALHOST, target_port))
        self.clients = {}  # DNS id -> the client's address
        self.counts = collections.Counter()
        self.last = {}  # (name, qtype) -> time.monotonic() of the last query
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def count(self, name, qtype=A):
        with self.lock:
            return self.counts[(name, qtype)]

    def sleep_past_ttl(self, name):
        """Until the answer to the last query for name has expired in the gateway's cache."""
        with self.lock:
            asked = self.last[(name, A)]
        time.sleep(max(0, asked + TTL_FLOOR_S + 0.5 - time.monotonic()))

    def run(self):
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.front, self.back], [], [], 0.1)
            if self.front in ready:
                packet, client = self.front.recvfrom(4096)
                q = question(packet)
                with self.lock:
                    if q:
                        self.counts[q] += 1
                        self.last[q] = time.monotonic()
                    self.clients[packet[:2]] = client
                self.back.send(packet)
            if self.back in ready:
                packet = self.back.recv(4096)
                client = self.clients.pop(packet[:2], None)
                if client:
                    self.front.sendto(packet, client)

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.front.close()
        self.back.close()


def zone(address):
    return f"$TTL 1\nimap IN A {address}\nmulti IN A 127.0.0.3\nmulti IN A 127.0.0.1\n"


@pytest.fixture(scope="module")
def dns(workdir):
    nsd = Nsd(os.path.join(workdir, "dnscache-nsd"), {"example.test": zone("127.0.0.1")}).start()
    proxy = CountingProxy(nsd.port)
    yield nsd, proxy
    proxy.stop()
    nsd.stop()


@pytest.fixture(scope="module")
def upstream(fleet, workdir):
    """A fake IMAPS server on 127.0.0.1 accepting any XOAUTH2, certified for imap.example.test."""
    cert, key = sign_for_names(fleet.stack.certs, os.path.join(workdir, "dnscache-certs"),
                               "imap", [NAME, MULTI])
    port = free_port()
    with open(os.path.join(workdir, "dnscache-upstream.log"), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bench", "fast_upstream.py"), "--port", str(port),
             "--cert", cert, "--key", key, "--message-bytes", "1000", "--processes", "1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_until(lambda: proc.poll() is None and port_accepts(port), timeout=15,
               what="fake upstream")
    yield port
    stop_process(proc)


def resolving_gateway(fleet, proxy, host, port, name, **settings):
    return fleet.new(name, workers=1, imap_server=f"{host}:{port}",
                     gateway_lines=[f"resolver = {LOCALHOST}:{proxy.port}"], **settings)


def dns_lookups(web_port):
    """{"hit": n, "miss": n} from GET /metrics."""
    with urllib.request.urlopen(f"http://{LOCALHOST}:{web_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = re.findall(r'^mailgate_dns_cache_lookups_total\{result="(\w+)"\} (\d+)$', text, re.M)
    return {k: int(v) for k, v in found}


def test_one_query_per_ttl_then_a_changed_zone_is_followed(fleet, dns, upstream):
    nsd, proxy = dns
    gw = resolving_gateway(fleet, proxy, NAME, upstream, "dnscache")
    try:
        for _ in range(3):
            done = try_login(gw)
            assert done.startswith("f1 OK"), done
        elapsed = time.monotonic() - proxy.last[(NAME, A)]
        assert elapsed < TTL_FLOOR_S - 0.5, "too slow to test the cache"
        assert proxy.count(NAME, A) == 1
        assert proxy.count(NAME, AAAA) == 1  # asked in parallel, once too

        proxy.sleep_past_ttl(NAME)
        assert try_login(gw).startswith("f1 OK")
        assert proxy.count(NAME, A) == 2  # expired: asked again, once

        # The server moves to an address where nothing listens: once the cached answer
        # expires the gateway follows the zone, and the login fails as an unreachable upstream.
        write_zone(nsd, zone("127.0.0.3"))
        wait_until(lambda: ask_a(nsd.port, NAME) == ["127.0.0.3"], timeout=10,
                   what="nsd to reload the zone")
        proxy.sleep_past_ttl(NAME)
        offset = gw.log_offset()
        done = try_login(gw)
        assert done.startswith("f1 NO [UNAVAILABLE]"), done
        assert proxy.count(NAME, A) == 3
        gw.wait_for_log(r"login .*result=", offset)
        entry = login_lines(gw.log_since(offset))[-1]
        assert entry["result"] == "tempfail", entry
        assert gw.proc.poll() is None and len(gw.worker_pids()) == 1
    finally:
        write_zone(nsd, zone("127.0.0.1"))
        gw.stop()


def write_zone(nsd, records):
    """Replaces example.test's records (a new serial) and has NSD reload it (SIGHUP)."""
    serial = int(time.time())
    header = ZONE_HEADER.format(name="example.test").replace(" 1 3600 ", f" {serial} 3600 ")
    path = os.path.join(nsd.dir, "example.test.zone")
    with open(path, "w") as f:
        f.write(header + records + "\n")
    future = time.time() + 2  # NSD rereads a zone file whose mtime changed
    os.utime(path, (future, future))
    nsd.proc.send_signal(1)


def test_unknown_name_fails_like_an_unreachable_upstream_and_is_cached_briefly(
        fleet, dns, upstream):
    _, proxy = dns
    gw = resolving_gateway(fleet, proxy, MISSING, upstream, "dnscache-nx")
    try:
        offset = gw.log_offset()
        for _ in range(2):
            done = try_login(gw)
            assert done.startswith("f1 NO [UNAVAILABLE]"), done
        assert proxy.count(MISSING, A) == 1  # NXDOMAIN remembered (DNS_NEGATIVE_TTL_MS)
        gw.wait_for_log(r"login .*result=tempfail", offset)
        assert MISSING in gw.log_since(offset)
        assert gw.proc.poll() is None and len(gw.worker_pids()) == 1
    finally:
        gw.stop()


def test_concurrent_logins_share_one_query(fleet, dns, upstream):
    """A burst of logins for a name not cached yet asks once (those arriving while it is
    resolved wait for it; the unit tests check the waiting itself)."""
    _, proxy = dns
    web = free_port()
    gw = resolving_gateway(fleet, proxy, NAME, upstream, "dnscache-burst", extra="\n".join(
        ["", "[listen web]", "protocol = http", f"address = {LOCALHOST}:{web}", "tls = none", ""]))
    try:
        before = proxy.count(NAME, A)
        results = [None] * 6

        def one(i):
            results[i] = try_login(gw, "alice" if i % 2 else "bob")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(r and r.startswith("f1 OK") for r in results), results
        assert proxy.count(NAME, A) - before == 1
        # each login counted once: the first (and any arriving before the answer) missed
        wait_until(lambda: sum(dns_lookups(web).values()) == len(results), timeout=5,
                   what="the worker's counters in /metrics")
        assert dns_lookups(web)["miss"] >= 1
    finally:
        gw.stop()


def test_next_address_after_a_refused_one(fleet, dns, upstream):
    """Nothing listens on the name's first address (127.0.0.3): the login goes on at the
    second instead of failing (libevent's connect_hostname tried only the first)."""
    nsd, proxy = dns
    assert ask_a(nsd.port, MULTI) == ["127.0.0.3", "127.0.0.1"]  # NSD keeps the zone's order
    gw = resolving_gateway(fleet, proxy, MULTI, upstream, "dnscache-multi")
    try:
        offset = gw.log_offset()
        done = try_login(gw)
        assert done.startswith("f1 OK"), done
        assert "address 1 of 2 failed" in gw.log_since(offset)
    finally:
        gw.stop()


def test_ip_literal_asks_no_resolver(fleet, dns):
    """An upstream written as an address connects to it (Dovecot, whose certificate names
    127.0.0.1) and asks no nameserver."""
    _, proxy = dns
    with proxy.lock:
        before = sum(proxy.counts.values())
    gw = resolving_gateway(fleet, proxy, LOCALHOST, fleet.stack.dovecot.imaps_port, "dnscache-ip")
    try:
        for _ in range(2):
            done = try_login(gw)
            assert done.startswith("f1 OK"), done
        with proxy.lock:
            assert sum(proxy.counts.values()) == before
    finally:
        gw.stop()
