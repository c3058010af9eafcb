#!/usr/bin/env bash
# A step of the project's test command (README "Test it"; .ci/run runs exactly that line): the scale-out
# tests (tests/test_redis_*.py, tests/test_scaleout*.py) start real redis-server processes on unix sockets,
# so Debian's redis-server comes from apt-get, once: only when redis-server is missing (as root, or with
# sudo when not root). Nothing is started here: the tests start and stop their own servers by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "scripts/install-redis.sh: redis-server is missing and this is not root and has no sudo;" >&2
        echo "  install it as root: apt-get update && apt-get install -y redis-server" >&2
        exit 2
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/install-redis.sh: redis-server is missing and there is no apt-get (Debian/Ubuntu);" >&2
        echo "  install Redis 7 or later so that redis-server is on PATH, then run this again" >&2
        exit 2
    fi
    echo "scripts/install-redis.sh: installing Debian's redis-server with apt-get (once, ~10 MB)" >&2
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
