#!/usr/bin/env bash
# A step of the project's test command (README "Test it"; .ci/run runs exactly that line): the scale-out
# tests (tests/test_redis_*.py, tests/test_scaleout*.py) start real redis-server processes on unix sockets,
# so Debian's redis-server comes from apt-get, once, when it is missing. Nothing is started here: the tests
# start and stop their own servers by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/need-debian-package.sh redis-server redis-server "~10 MB"
