"""Many IDLE sessions at once: resident memory per session of the server processes.

N sessions (logged in, INBOX selected, in IDLE) are opened by asyncio clients split over
several processes (each raises its open file limit to the hard limit: 9,000 sessions are 9,000
client descriptors, and the gateway needs two per session, one to the client, one upstream).
The servers' VmRSS is read before (the idle baseline), with all N held, and `settle` seconds
after they all closed: per session = (held - baseline) / N.
"""
import asyncio
import multiprocessing
import resource
import time

from client import shared_context, xoauth2
from procstat import rss_kib

HANDSHAKES_AT_ONCE = 50  # per client process: a burst, not a stampede that times out
SESSION_SETUP_TIMEOUT = 300  # seconds; a server that stops answering fails the bench, no hang


def raise_fd_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _expect(reader, prefix):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed by the server")
        if line.startswith(prefix):
            return line


async def _idle_session(ep, gate):
    async with gate:
        return await asyncio.wait_for(_enter_idle(ep), SESSION_SETUP_TIMEOUT)


async def _enter_idle(ep):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", ep.port, ssl=shared_context(ep.ca_file), server_hostname="localhost")
    await _expect(reader, b"* OK")
    if ep.kind == "xoauth2":
        writer.write(f"a AUTHENTICATE XOAUTH2 {xoauth2(ep.user, ep.secret)}\r\n".encode())
    else:
        writer.write(f'a LOGIN "{ep.user}" "{ep.secret}"\r\n'.encode())
    if not (await _expect(reader, b"a ")).startswith(b"a OK"):
        raise RuntimeError("login refused")
    writer.write(b"b SELECT INBOX\r\n")
    if not (await _expect(reader, b"b ")).startswith(b"b OK"):
        raise RuntimeError("SELECT refused")
    writer.write(b"c IDLE\r\n")
    await _expect(reader, b"+")
    return writer


async def _hold(ep, count, conn):
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    results = await asyncio.gather(*(_idle_session(ep, gate) for _ in range(count)),
                                   return_exceptions=True)
    writers = [r for r in results if not isinstance(r, BaseException)]
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    conn.send((len(writers), failures[:1]))
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "close"
    for w in writers:
        w.transport.abort()
    conn.send("closed")


def _client_process(ep, count, conn):
    raise_fd_limit()
    asyncio.run(_hold(ep, count, conn))


def idle_sessions(ep, count, server_pids, processes=2, settle=60.0, baseline=None):
    """dict: held, first_error, baseline/held/after KiB (summed over server_pids()),
    per_session KiB and after_ratio (after close + settle / baseline), both against the given
    idle baseline (e.g. from before an earlier, smaller run: memory an earlier peak left behind
    must not pass for free sessions) or else the RSS right before this run; open_seconds."""
    ctx = multiprocessing.get_context("fork")
    baseline = baseline or rss_kib(server_pids())
    split = [count // processes + (i < count % processes) for i in range(processes)]
    pipes, procs = [], []
    start = time.monotonic()
    for n in split:
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_client_process, args=(ep, n, child))
        p.start()
        pipes.append(parent)
        procs.append(p)
    reports = [pipe.recv() for pipe in pipes]
    opened = time.monotonic() - start
    time.sleep(1)  # the last sessions' upstream IDLE is on its way
    held_kib = rss_kib(server_pids())
    for pipe in pipes:
        pipe.send("close")
    for pipe, p in zip(pipes, procs):
        pipe.recv()
        p.join()
    time.sleep(settle)
    after = rss_kib(server_pids())
    held = sum(r[0] for r in reports)
    return {"held": held, "first_error": next((r[1][0] for r in reports if r[1]), None),
            "baseline": baseline, "held_kib": held_kib, "after": after,
            "per_session": (held_kib - baseline) / max(held, 1),
            "after_ratio": after / baseline if baseline else 0.0, "open_seconds": opened}
