"""The privilege boundary is in the build: a network-facing file cannot include the secret side.

Each folder of src/ is one static library whose include path lists only the folders it may use
(docs/design.md, "Source tree"). These tests take the real compile command of a file in each
network-facing folder from the build's compile_commands.json, swap in a probe file that includes
one header of the secret side, and require the compiler to say it cannot find it. A control
probe with the folder's own and common headers must compile with the same command, so a broken
command cannot pass for a boundary. Likewise every header of common/ must compile with nothing
but common/ on the include path.
"""
import glob
import json
import os
import shlex
import subprocess

import pytest

from harness.gateway import mailgate_bin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")

# folder -> (a source file compiled in that folder's library, headers it may include)
NETWORK_SIDE = {
    "worker": ("session.c", ["session.h", "tls.h", "imap.h", "config.h", "ipc.h"]),
    "imap": ("imap_front.c", ["imap.h", "session.h", "util.h"]),
    "pop3": ("pop3_front.c", ["pop3.h", "session.h", "util.h"]),
    "smtp": ("smtp_front.c", ["smtp.h", "session.h", "util.h"]),
    "http": ("http_route.c", ["http.h", "http_internal.h", "autoconfig.h", "mta_sts.h", "tls.h",
                              "config.h", "util.h"]),
}
SECRET_SIDE = ("store", "token", "broker")


def headers_of(folder):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(SRC, folder, "*.h")))


@pytest.fixture(scope="module")
def compile_commands():
    build = os.path.dirname(os.path.abspath(mailgate_bin()))
    path = os.path.join(build, "compile_commands.json")
    assert os.path.exists(path), f"no {path}: build with meson first"
    with open(path) as f:
        return json.load(f)


def command_for(commands, folder, source):
    """The library's compile command for src/FOLDER/SOURCE, as argv, minus its input/output."""
    want = os.path.join(SRC, folder, source)
    for entry in commands:
        path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
        if path == want and f"libmg_{folder}.a.p" in entry["output"]:
            argv = shlex.split(entry["command"])
            out, skip = [], 0
            for arg in argv:
                if skip:
                    skip -= 1
                    continue
                if arg in ("-o", "-c", "-MQ", "-MF"):
                    skip = 1
                    continue
                if arg == "-MD":
                    continue
                out.append(arg)
            return out, entry["directory"]
    raise AssertionError(f"src/{folder}/{source} is not compiled into libmg_{folder}.a")


def compile_probe(tmp_path, argv, cwd, headers, extra=("-fsyntax-only",)):
    probe = tmp_path / "probe.c"
    probe.write_text("".join(f'#include "{h}"\n' for h in headers))
    return subprocess.run(argv + list(extra) + [str(probe)], cwd=cwd, capture_output=True,
                          text=True)


def files_included(tmp_path, argv, cwd, header):
    """The files the compiler opens for #include "header" (-M), or None when it finds none.
    A system header of the same name (ncurses' form.h) is not ours and does not count."""
    r = compile_probe(tmp_path, argv, cwd, [header], extra=("-M",))
    if r.returncode != 0:
        assert "No such file or directory" in r.stderr, r.stderr
        return None
    deps = r.stdout.replace("\\\n", " ").split()[2:]  # after "probe.o:" and probe.c
    return {os.path.normpath(os.path.join(cwd, p)) for p in deps}


def test_secret_side_has_headers():
    # The lists below must not be empty, or the boundary tests would prove nothing.
    for folder in SECRET_SIDE:
        assert headers_of(folder), folder
    assert "store.h" in headers_of("store") and "token.h" in headers_of("token")


@pytest.mark.parametrize("folder", sorted(NETWORK_SIDE))
def test_network_side_cannot_include_secret_side(tmp_path, compile_commands, folder):
    source, allowed = NETWORK_SIDE[folder]
    argv, cwd = command_for(compile_commands, folder, source)

    control = compile_probe(tmp_path, argv, cwd, allowed)
    assert control.returncode == 0, control.stderr

    offered = []
    for side in SECRET_SIDE:
        for header in headers_of(side):
            ours = os.path.join(SRC, side, header)
            for spelling in (header, f"{side}/{header}"):
                opened = files_included(tmp_path, argv, cwd, spelling)
                if opened is not None and ours in opened:
                    offered.append(f"#include \"{spelling}\" opens {ours}")
    assert not offered, f"src/{folder} can include the secret side:\n" + "\n".join(offered)


def test_common_headers_need_nothing_above_common(tmp_path, compile_commands):
    argv, cwd = command_for(compile_commands, "common", "util.c")
    headers = headers_of("common")
    assert "config.h" in headers and "ipc.h" in headers
    for header in headers:
        r = compile_probe(tmp_path, argv, cwd, [header])
        assert r.returncode == 0, f"common/{header} alone:\n{r.stderr}"
