"""The bench's measurements, one function per phase. Each returns table rows; an error in one
side raises (the bench then fails: something does not work), numbers never do.

Sides are measured in turn, round after round (direct, haproxy, mailgate, direct, ...), and
each reports its median: a burst of load from elsewhere on the machine then hits every side
alike instead of one.
"""
import statistics
import time

from client import fetch_message, login_cycle, open_session
from idle import idle_sessions
from load import SATURATED, parallel_logins
from procstat import CpuMeter
from table import Row, Target

MIB = 1 << 20


def _median(samples):
    return {side: statistics.median(v) for side, v in samples.items()}


def _meter(pids_fn):
    """CPU of the processes pids_fn() names; of none for a side without (direct)."""
    return CpuMeter(pids_fn or (lambda: []))


def _rounds(upstream, opts, measure):
    """measure(side_name, side) -> dict of named numbers; medians per (name, side)."""
    samples = {}
    for _ in range(opts.rounds):
        for name in opts.sides:
            for key, value in measure(name, upstream.sides[name]).items():
                if value is not None:
                    samples.setdefault(key, {}).setdefault(name, []).append(value)
    return {key: _median(v) for key, v in samples.items()}


def _busy_note(saturated):
    return ("client process busy, the client may be the limit: " + ", ".join(saturated)
            if saturated else "")


def logins(upstream, opts):
    """Logins/s with opts.clients parallel clients; server CPU per login."""
    saturated = []

    def measure(name, side):
        login_cycle(side.endpoint)  # the token and the password check are cached from here on
        with _meter(side.pids) as cost, _meter(side.broker_pids) as broker:
            r = parallel_logins(side.endpoint, opts.clients, opts.login_seconds,
                                opts.client_processes)
        if r["errors"]:
            raise RuntimeError(f"{upstream.name}/{name}: {r['errors']} of "
                               f"{r['cycles'] + r['errors']} logins failed: {r['first_error']}")
        if r["saturated"]:
            saturated.append(f"{name} {r['client_busy']:.0%}")
        per = 1000.0 / max(r["cycles"], 1)
        return {"rate": r["rate"], "cpu": cost.used * per if side.pids else None,
                "broker": broker.used * per if side.broker_pids else None}

    m = _rounds(upstream, opts, measure)
    fast = upstream.name == "fast"
    return [Row(f"{upstream.name}: logins/s, {opts.clients} parallel", m["rate"], 0,
                Target("direct", ">=", 0.7) if fast else None, _busy_note(saturated)),
            Row(f"{upstream.name}: server CPU ms/login", m.get("cpu", {}), 2,
                Target("value", "<=", 1.0) if fast else None),
            Row(f"{upstream.name}: broker CPU ms/login", m.get("broker", {}), 2)]


def _fetch_stream(upstream, side, seconds):
    """(MiB/s, server CPU ms per MiB or None, share of a core the client used) of one session
    fetching repeatedly."""
    c = open_session(side.endpoint)
    try:
        c.expect_ok("s", f"EXAMINE {upstream.folder}")
        size, digest = fetch_message(c, upstream.uid)  # warms caches; checks the bytes
        if digest != upstream.message_sha:
            raise RuntimeError(f"{upstream.name}/{side.endpoint.name}: message differs")
        scratch = bytearray(MIB)
        fetched, start, client_cpu = 0, time.perf_counter(), time.process_time()
        with _meter(side.pids) as cost:
            while time.perf_counter() - start < seconds:
                fetched += fetch_message(c, upstream.uid, scratch)[0]
        elapsed = time.perf_counter() - start
        client_busy = (time.process_time() - client_cpu) / elapsed
    finally:
        c.close()
    mib = fetched / MIB
    return mib / elapsed, (cost.used * 1000 / mib if side.pids else None), client_busy


def fetch(upstream, opts):
    saturated = []

    def measure(name, side):
        rate, cpu, client_busy = _fetch_stream(upstream, side, opts.fetch_seconds)
        if client_busy >= SATURATED:
            saturated.append(f"{name} {client_busy:.0%}")
        return {"rate": rate, "cpu": cpu}

    m = _rounds(upstream, opts, measure)
    fast = upstream.name == "fast"
    return [Row(f"{upstream.name}: FETCH {opts.size_mib} MiB, one stream, MiB/s", m["rate"], 0,
                Target("direct", ">=", 0.7 if fast else 0.95), _busy_note(saturated)),
            Row(f"{upstream.name}: server CPU ms/MiB", m.get("cpu", {}), 2,
                Target("value", "<=", 1.2) if fast else None)]


def latency(upstream, opts):
    """Sequential login+EXAMINE+LOGOUT (what a client that polls does), mean ms."""
    def measure(name, side):
        for _ in range(3):  # warm up: token cache, auth cache, Dovecot processes
            login_cycle(side.endpoint, upstream.folder)
        start = time.perf_counter()
        for _ in range(opts.logins):
            login_cycle(side.endpoint, upstream.folder)
        return {"ms": (time.perf_counter() - start) * 1000 / opts.logins}

    m = _rounds(upstream, opts, measure)
    target = Target("direct", "<=", 1.15) if upstream.name == "dovecot" else None
    return [Row(f"{upstream.name}: login+SELECT+LOGOUT x{opts.logins}, ms", m["ms"], 2, target)]


def idle(upstream, opts):
    """RSS per IDLE session at each count, for the sides that hold sessions (not direct: the
    fast upstream's memory is not what is measured). The idle baseline is the servers' RSS
    before the first count; every count's figures are against it."""
    rows, baselines = [], {}
    for count in opts.idle_sessions:
        found = {}
        for name in [s for s in opts.sides if s != "direct"]:
            side = upstream.sides[name]
            print(f"bench:   {count} IDLE sessions through {name} ...", flush=True)
            r = idle_sessions(side.endpoint, count, side.pids, opts.client_processes,
                              opts.idle_settle, baselines.get(name))
            if r["held"] != count:
                raise RuntimeError(f"{upstream.name}/{name}: held {r['held']} of {count} IDLE "
                                   f"sessions: {r['first_error']}")
            baselines.setdefault(name, r["baseline"])
            found[name] = r
        rows += [Row(f"{upstream.name}: {count} IDLE: KiB RSS/session",
                     {n: r["per_session"] for n, r in found.items()}, 1,
                     Target("value", "<=", 32)),
                 Row(f"{upstream.name}: {count} IDLE: MiB RSS held",
                     {n: r["held_kib"] / 1024 for n, r in found.items()}, 1),
                 Row(f"{upstream.name}: {count} IDLE: RSS {opts.idle_settle:g}s after close "
                     "/ idle baseline", {n: r["after_ratio"] for n, r in found.items()}, 2,
                     Target("value", "<", 2.0))]
    rows.append(Row(f"{upstream.name}: IDLE: idle baseline, MiB RSS",
                    {n: kib / 1024 for n, kib in baselines.items()}, 1))
    return rows
