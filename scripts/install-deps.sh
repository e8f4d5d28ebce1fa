#!/usr/bin/env bash
# Installs the Debian 12 packages mailgate needs to build, test, demo and benchmark, if missing.
# Uses apt-get as root, or through sudo. Does not start Debian's own Dovecot service.
set -euo pipefail

# Installed with --no-install-recommends, so whatever a tool needs only through a Recommends is
# listed here by name, with the reason:
#   libc6-dev        gcc's and clang's C library headers (a Recommends of gcc-12)
#   libnet-ssleay-perl, libio-socket-ssl-perl
#                    swaks' STARTTLS/TLS ("TLS not available: requires Net::SSLeay" without them)
#   ca-certificates  libcurl's and Python's default trust store (a Recommends of libcurl4)
#   make             the Makefile itself (not on a minimal Debian)
#   sqlite3          the sqlite3 shell: test_store builds old and newer schemas with it
#   libseccomp-dev   the workers' system call filter (src/worker/sandbox.c)
#   adduser          `make install` and the tests (as root) create the workers' user with it
#   libexpat1-dev    Outlook's Autodiscover requests are XML (src/http/autodiscover_request.c)
#   libc-ares-dev    the DNS lookups of `mailgate check` (src/cli/dns_lookup.c)
#   nsd              tests only: test_dns_check.py serves its test zones with it (a private
#                    instance; Debian's service is kept from starting like Dovecot's)
#   haproxy          make bench's TLS bridge, the reference mailgate is compared with (bench/haproxy.py)
PACKAGES=(
    make meson ninja-build pkg-config gcc libc6-dev clang libclang-rt-14-dev libc-ares-dev
    libssl-dev libevent-dev libcurl4-openssl-dev libjansson-dev libinih-dev libsqlite3-dev
    libargon2-dev libcmocka-dev sqlite3 libseccomp-dev libexpat1-dev zlib1g-dev adduser
    dovecot-core dovecot-imapd dovecot-pop3d dovecot-submissiond
    python3 python3-pytest python3-cryptography curl openssl ca-certificates
    swaks libnet-ssleay-perl libio-socket-ssl-perl nsd haproxy
    # the sign-in test (tests/integration/test_signin.py): headless Chromium via chromedriver
    chromium chromium-driver
    # tests/integration/test_metrics.py checks GET /metrics with its promtool (same package,
    # so --no-install-recommends is enough; policy-rc.d below keeps its service from starting)
    prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "mailgate: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "mailgate: need root or sudo to install packages" >&2; exit 1; }
    SUDO="sudo"
fi

# Keep the packaged Dovecot service from starting: the tests run private instances.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() { [ "$created_policy" = 1 ] && $SUDO rm -f "$policy"; true; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
