#!/bin/sh
# apt-install.sh WHO PACKAGE...: install the Debian packages of the list that are missing
# (apt-get update once, then apt-get install without recommends), as root or through sudo.
# Idempotent: exits at once when every package is already installed. WHO names the caller in
# its messages. Used by scripts/install-system-deps.sh and scripts/install-container-tools.sh.
set -eu
who=$1
shift

missing=""
for pkg in "$@"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing="$missing $pkg"
    fi
done
if [ -z "$missing" ]; then
    echo "$who: all present ($*)"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "$who: need root (or sudo) to install:$missing" >&2
    exit 1
fi

echo "$who: installing$missing"
$SUDO apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
echo "$who: done"
