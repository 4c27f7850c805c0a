#!/usr/bin/env bash
# Installs headless Chromium (Debian's `chromium` package) for tests/e2e/test_browser.py,
# which screenshots the VictoriaLogs web UI showing an audit event.
#
# Debian's package rather than a browser download: the project's machines reach the
# package registries only, and an install step that fetches its own browser build fails.
# Idempotent: prints nothing and exits 0 when the browser is already there.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "install-browser.sh: $CHROMIUM is missing and this is not root." >&2
    echo "  Install it as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null; then
    echo "install-browser.sh: $CHROMIUM is missing and apt-get is not available." >&2
    echo "  Install Chromium with this system's package manager (it must be $CHROMIUM)." >&2
    exit 1
fi

echo "install-browser.sh: installing Debian's chromium (for the browser test)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# A font, named rather than left to dependencies: without one the screenshot is all boxes.
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

if [[ ! -x "$CHROMIUM" ]]; then
    echo "install-browser.sh: apt-get installed chromium but $CHROMIUM is not there." >&2
    exit 1
fi
echo "install-browser.sh: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed."
