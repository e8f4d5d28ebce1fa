"""Parallel logins: `clients` threads spread over `processes` client processes, each thread
repeating connect + login (+ EXAMINE) + LOGOUT on a fresh TLS connection until the deadline.

Threads spend most of their time in the kernel and in OpenSSL with the GIL released, but a
Python process cannot use more than about one core; with two processes the client can use the
second core. Each process reports the CPU it used: a process that was busy (nearly) the whole
time was the bottleneck, and the result says so instead of blaming the server.
"""
import multiprocessing
import signal
import threading
import time

from client import login_cycle

SATURATED = 0.9  # a client process that used this share of one core was the limit


def _threads_loop(ep, threads, seconds, select):
    """Runs in a client process: (cycles, errors, first error, CPU seconds, wall seconds)."""
    counts, errors, first = [0] * threads, [0] * threads, []
    deadline = time.monotonic() + seconds

    def worker(i):
        while time.monotonic() < deadline:
            try:
                login_cycle(ep, select)
                counts[i] += 1
            except Exception as e:  # counted and reported; the bench never stops on one
                errors[i] += 1
                first.append(repr(e))

    cpu0, wall0 = time.process_time(), time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return (sum(counts), sum(errors), first[:1], time.process_time() - cpu0,
            time.monotonic() - wall0)


def _default_sigterm():
    """A pool process is forked from the bench, whose SIGTERM handler raises SystemExit to
    stop the servers: the pool's terminate() at the end of a run must only end the process,
    not run the bench's cleanup in it (that once hung a run)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def parallel_logins(ep, clients=50, seconds=10.0, processes=2, select=None):
    """dict: rate (cycles/s), cycles, errors, first_error, client_busy (max share of a core
    one client process used), saturated (bool)."""
    split = [clients // processes + (i < clients % processes) for i in range(processes)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_default_sigterm) as pool:
        results = pool.starmap(_threads_loop, [(ep, n, seconds, select) for n in split if n])
    wall = max(r[4] for r in results)
    cycles = sum(r[0] for r in results)
    busy = max(r[3] / r[4] for r in results)
    return {"rate": cycles / wall, "cycles": cycles, "errors": sum(r[1] for r in results),
            "first_error": next((r[2][0] for r in results if r[2]), None),
            "client_busy": busy, "saturated": busy >= SATURATED}
