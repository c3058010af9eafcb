#!/usr/bin/env bash
# The first step of the project's test command (README "Test it"; .ci/run runs exactly that line):
# the browser tests (tests/test_browser*.py) drive Debian's Chromium through Playwright, and
# `playwright install` cannot download browsers everywhere, so Chromium comes from apt-get,
# once: only when /usr/bin/chromium is missing (as root, or with sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/need-debian-package.sh /usr/bin/chromium chromium "~480 MB"
