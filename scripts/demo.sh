#!/usr/bin/env bash
# `make demo`: local fake Entra ID + private Dovecot + mailgate on 127.0.0.1, one real client
# session through the gateway, connection instructions; runs until Ctrl-C.
# MAILGATE_BIN overrides the binary (default build/mailgate); extra arguments go to demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 tests/harness/demo.py --mailgate "${MAILGATE_BIN:-build/mailgate}" "$@"
