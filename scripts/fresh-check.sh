#!/usr/bin/env bash
# Proves that `make check` passes on a fresh Debian 12: builds a minimal Debian 12 root with
# debootstrap (no build tools, no test tools, none of our packages), copies a clean clone of this
# repository into it and runs `.ci/run` there (its own mount and PID namespaces, the fresh root
# as /), as CI would on a new machine.
#
#   scripts/fresh-check.sh [--rev REV] [--rebuild-base] [--dir DIR]
#
#   --rev REV        what to check (default HEAD); only committed work counts, as in CI
#   --rebuild-base   debootstrap again instead of reusing DIR/base (the pristine minbase root,
#                    kept between runs because debootstrap takes minutes; each run starts from
#                    a fresh copy of it, so no package installed by an earlier run survives)
#   --dir DIR        where the roots and the log live (default /var/tmp/mailgate-fresh)
#
# Needs root (debootstrap, unshare, mount) and the Debian archive. Not part of `make check`.
# /proc, /sys and /dev are mounted for the run and unmounted after; every process still running
# inside the root when .ci/run ends is killed, so nothing started inside outlives the script.
# Exit status: that of .ci/run. Its output is also in DIR/ci-run.log.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=/var/tmp/mailgate-fresh
REV=HEAD
REBUILD_BASE=0
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm

while [ $# -gt 0 ]; do
    case "$1" in
    --rev) REV=$2; shift 2 ;;
    --rebuild-base) REBUILD_BASE=1; shift ;;
    --dir) DIR=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "fresh-check: unknown argument: $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || { echo "fresh-check: must run as root (debootstrap, unshare, mount)" >&2; exit 2; }

BASE=$DIR/base
ROOT=$DIR/root
LOG=$DIR/ci-run.log
mkdir -p "$DIR"

say() { echo "fresh-check: $*"; }

# Processes whose root directory is inside $ROOT (started by the run); none may outlive us.
procs_in_root() {
    local p link
    for p in /proc/[0-9]*; do
        link=$(readlink "$p/root" 2>/dev/null) || continue
        case "$link" in "$ROOT" | "$ROOT"/*) echo "${p#/proc/}" ;; esac
    done
}

kill_inside() {
    local pids
    pids=$(procs_in_root)
    [ -z "$pids" ] && return 0
    say "stopping processes left inside the root: $(echo $pids)"
    kill -TERM $pids 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        sleep 0.5
        pids=$(procs_in_root)
        [ -z "$pids" ] && return 0
    done
    kill -KILL $pids 2>/dev/null || true
}

unmount_all() {
    local m
    # Deepest first; ignore what is not mounted.
    for m in "$ROOT/dev/pts" "$ROOT/dev/shm" "$ROOT/dev" "$ROOT/sys" "$ROOT/proc"; do
        if mountpoint -q "$m" 2>/dev/null; then
            umount "$m" 2>/dev/null || umount -l "$m" || true
        fi
    done
}

cleanup() {
    kill_inside
    unmount_all
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A root left by an interrupted run: make sure nothing is mounted before deleting it.
if [ -d "$ROOT" ]; then
    kill_inside
    unmount_all
    rm -rf --one-file-system "$ROOT"
fi

if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap (host)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi

if [ "$REBUILD_BASE" = 1 ] || [ ! -e "$BASE/.complete" ]; then
    rm -rf --one-file-system "$BASE"
    say "debootstrap --variant=minbase $SUITE from $MIRROR"
    debootstrap --variant=minbase "$SUITE" "$BASE" "$MIRROR"
    touch "$BASE/.complete"
fi

say "fresh root from the minimal base"
cp -a "$BASE" "$ROOT"
rm -f "$ROOT/.complete"

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
# Reach the archive the way this machine's apt does (an archive snapshot has expired Release
# dates; the host's apt is told to accept them, so the root's must be too).
if apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
    echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99fresh-check"
fi
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/hosts "$ROOT/etc/hosts"

say "clean clone of $REV"
git clone -q --no-hardlinks "$REPO" "$ROOT/root/mailgate"
git -C "$ROOT/root/mailgate" checkout -q --detach "$REV"
say "commit $(git -C "$ROOT/root/mailgate" log -1 --format='%h %s')"
# CI puts a read-only copy of shared/ beside the clone; do the same.
if [ -d "$REPO/../shared" ]; then
    cp -a "$REPO/../shared" "$ROOT/root/shared"
    chmod -R a-w "$ROOT/root/shared"
fi

mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
if [ -d /dev/pts ] && mountpoint -q /dev/pts; then mount --bind /dev/pts "$ROOT/dev/pts"; fi
if [ -d /dev/shm ] && mountpoint -q /dev/shm; then mount --bind /dev/shm "$ROOT/dev/shm"; fi

say "running .ci/run inside the root (log: $LOG)"
set +e
# Not chroot: inside a chroot the kernel refuses new user namespaces, which a real machine
# allows and the gateway's workers use. A mount namespace whose root is the fresh root
# (pivot_root) looks like a machine of its own; a PID namespace ends every process started
# inside when .ci/run ends.
unshare --mount --pid --fork --propagation private -- /bin/bash -c '
    set -e
    mount --rbind "$1" "$1"
    cd "$1"
    mkdir -p .oldroot
    pivot_root . .oldroot
    mount -t proc proc /proc
    /.oldroot/usr/bin/umount -l /.oldroot
    rmdir /.oldroot
    exec /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "cd /root/mailgate && bash .ci/run"' _ "$ROOT" </dev/null 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
say ".ci/run exited with status $status"
exit "$status"
