#!/usr/bin/env python3
"""Runs every mailgate test and prints one closing line: "N passed, N failed[, N skipped]".

Unit tests (cmocka, via meson test) count per test case; integration tests (pytest) per test;
each fuzz target counts once (it passes when it runs its iterations without a finding).
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def add(self, passed=0, failed=0, skipped=0, name=None):
        self.passed += passed
        self.failed += failed
        self.skipped += skipped
        if failed and name:
            self.failures.append(name)


def run_unit(build, tally):
    print("== unit tests (cmocka, ASan+UBSan)", flush=True)
    subprocess.run(["meson", "test", "-C", build, "--suite", "unit", "--print-errorlogs"],
                   cwd=ROOT)
    log = os.path.join(ROOT, build, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        tally.add(failed=1, name="unit tests did not run")
        return
    with open(log) as f:
        for line in f:
            entry = json.loads(line)
            # cmocka writes per-test lines to stdout and its summary to stderr; meson keeps
            # them in separate fields (or merged in "stdout", depending on the version).
            out = (entry.get("stdout") or "") + (entry.get("stderr") or "")
            p = len(re.findall(r"^\[       OK \] \S", out, re.M))
            # A failed test is named twice (when it fails and in the summary list): count names.
            fl = len(set(re.findall(r"^\[  (?:FAILED  |ERROR   )\] (?!\d+ test)(\S+)", out, re.M)))
            sk = len(set(re.findall(r"^\[  SKIPPED \] (?!\d+ test)(\S+)", out, re.M)))
            ok = entry.get("result") == "OK"
            if not ok and fl == 0:
                fl = 1  # crashed, sanitizer finding, or timeout: no cmocka summary
            tally.add(passed=p, failed=fl, skipped=sk, name=None if ok else entry.get("name"))


def run_integration(build, release_build, tally):
    tests = glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py"))
    if not tests:
        return
    print("== integration tests (pytest, real clients, Dovecot upstream, fake Entra ID)",
          flush=True)
    xml = os.path.join(ROOT, build, "pytest-junit.xml")
    if os.path.exists(xml):
        os.unlink(xml)
    env = dict(os.environ, MAILGATE_BIN=os.path.join(ROOT, build, "mailgate"))
    if release_build:  # what only an uninstrumented binary shows (glibc's malloc: RSS)
        env["MAILGATE_RELEASE_BIN"] = os.path.join(ROOT, release_build, "mailgate")
    subprocess.run([sys.executable, "-m", "pytest", "tests/integration", "-p",
                    "no:cacheprovider", "-rfE", "--junitxml", xml], cwd=ROOT, env=env)
    if not os.path.exists(xml):
        tally.add(failed=1, name="pytest did not produce a report")
        return
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        total = int(s.get("tests", 0))
        failed = int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped = int(s.get("skipped", 0))
        tally.add(passed=total - failed - skipped, failed=failed, skipped=skipped,
                  name="integration" if failed else None)


def run_fuzz(fuzz_build, runs, tally):
    targets = sorted(glob.glob(os.path.join(ROOT, fuzz_build, "fuzz", "fuzz_*")))
    targets = [t for t in targets if os.access(t, os.X_OK) and not t.endswith(".p")
               and os.path.isfile(t)]
    if not targets:
        return
    print(f"== fuzz targets ({runs} iterations each)", flush=True)
    for t in targets:
        name = os.path.basename(t)
        r = subprocess.run([t, f"-runs={runs}", "-seed=1", "-max_len=16384",
                            "-print_final_stats=1"], capture_output=True, text=True, cwd=ROOT)
        stats = re.findall(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
        execs = stats[-1] if stats else "?"
        if r.returncode == 0:
            print(f"  {name}: ok ({execs} executions)")
            tally.add(passed=1)
        else:
            print(f"  {name}: FAILED (exit {r.returncode})\n{r.stderr[-4000:]}")
            tally.add(failed=1, name=name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-test")
    ap.add_argument("--fuzz-build", default="build-fuzz")
    ap.add_argument("--release-build", help="the optimised build without sanitizers")
    ap.add_argument("--fuzz-runs", type=int, default=200000)
    ap.add_argument("--only-fuzz", action="store_true")
    args = ap.parse_args()

    tally = Tally()
    if not args.only_fuzz:
        run_unit(args.build, tally)
        run_integration(args.build, args.release_build, tally)
    run_fuzz(args.fuzz_build, args.fuzz_runs, tally)

    if tally.failures:
        print("failed: " + ", ".join(tally.failures))
    line = f"{tally.passed} passed, {tally.failed} failed"
    if tally.skipped:
        line += f", {tally.skipped} skipped"
    print(line)
    return 1 if tally.failed or tally.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
