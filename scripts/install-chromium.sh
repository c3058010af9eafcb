#!/usr/bin/env bash
# The first step of the project's test command (README "Test it"; .ci/run runs exactly that line):
# the browser tests (tests/test_browser*.py) drive Debian's Chromium through Playwright, and
# `playwright install` cannot download browsers everywhere, so Chromium comes from apt-get,
# once: only when /usr/bin/chromium is missing (as root, or with sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "scripts/install-chromium.sh: Chromium is missing and this is not root and has no sudo;" >&2
        echo "  install it as root: apt-get update && apt-get install -y chromium" >&2
        exit 2
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/install-chromium.sh: Chromium is missing and there is no apt-get (Debian/Ubuntu);" >&2
        echo "  install Chromium so that /usr/bin/chromium runs it, then run this again" >&2
        exit 2
    fi
    echo "scripts/install-chromium.sh: installing Debian's chromium with apt-get (once, ~480 MB)" >&2
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
