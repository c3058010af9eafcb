#!/usr/bin/env bash
# The first step of the project's test command (README "Test it"; .ci/run runs exactly that line): the
# system programs the tests start besides chatroom itself, from Debian's packages with apt-get, each only
# when missing (as root, or with sudo when not root):
#   chromium  the browser tests (tests/test_browser*.py) drive Debian's Chromium through Playwright, whose
#             own browser download does not work everywhere (~480 MB, once)
#   irssi     a real IRC client in a pseudo-terminal (tests/test_irc_irssi.py)
#   curl      fetches and gives files by one-time link there, as an irssi user does
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v irssi >/dev/null 2>&1 || missing+=(irssi)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "scripts/install-test-packages.sh: missing ${missing[*]}, and this is not root and has no sudo;" >&2
    echo "  install as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/install-test-packages.sh: missing ${missing[*]} and there is no apt-get (Debian/Ubuntu);" >&2
    echo "  install them so that /usr/bin/chromium and irssi run, then run this again" >&2
    exit 2
fi
echo "scripts/install-test-packages.sh: installing ${missing[*]} with apt-get (once)" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
