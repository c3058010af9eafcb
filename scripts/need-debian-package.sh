#!/usr/bin/env bash
# need-debian-package.sh BINARY PACKAGE SIZE: install Debian's PACKAGE with apt-get, once, when BINARY (a command
# name or an absolute path) is missing; as root, or with sudo when not root. The project's test command
# (README "Test it"; .ci/run runs exactly that line) reaches it through scripts/install-*.sh.
set -euo pipefail
binary="$1" package="$2" size="$3"
caller="scripts/install-$package.sh"

if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "$binary" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "$caller: $package is missing and this is not root and has no sudo;" >&2
        echo "  install it as root: apt-get update && apt-get install -y $package" >&2
        exit 2
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$caller: $package is missing and there is no apt-get (Debian/Ubuntu);" >&2
        echo "  install $package so that $binary runs, then run this again" >&2
        exit 2
    fi
    echo "$caller: installing Debian's $package with apt-get (once, $size)" >&2
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
fi
