"""CPU time and resident memory of server processes, from /proc (no root needed for our own
children; the bench reads the gateway's workers, haproxy and the fake upstream)."""
import os

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """utime + stime of pids (processes that are gone count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / TICKS


def rss_kib(pids):
    """Sum of VmRSS of pids, in KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


class CpuMeter:
    """CPU seconds the processes named by pids_fn() use between start() and stop()."""

    def __init__(self, pids_fn):
        self.pids_fn = pids_fn

    def __enter__(self):
        self.pids = self.pids_fn()
        self.before = cpu_seconds(self.pids)
        self.used = None
        return self

    def __exit__(self, *exc):
        self.used = cpu_seconds(self.pids) - self.before
