#!/usr/bin/env bash
# Kept for older instructions: scripts/install-test-packages.sh installs Chromium (and the other programs
# the tests start) when missing.
exec "$(dirname "$0")/install-test-packages.sh"
