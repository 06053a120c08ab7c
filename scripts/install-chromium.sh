#!/bin/sh
# Install headless Chromium and its WebDriver (Debian packages `chromium` and
# `chromium-driver`) for the report's end-to-end browser test.
#
# Works as root or with passwordless sudo; otherwise it exits non-zero and says why,
# and the browser test skips with that reason.
set -eu

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "chromium and chromedriver are already installed."
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium.sh: apt-get not found; install Chromium and chromedriver" \
         "with your system's package manager to run the browser test." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-chromium.sh: need root or passwordless sudo to run" \
         "'apt-get install chromium chromium-driver'; the browser test will be skipped." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium chromium-driver
