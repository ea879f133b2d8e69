#!/bin/sh
# Install the Debian/Ubuntu packages announcer needs at run time and in tests:
#   mosquitto          the broker the test-suite starts (its own instance, on a free port)
#   mosquitto-clients  mosquitto_pub / mosquitto_sub for operators
#   libportaudio2      PortAudio, used by the sounddevice speaker
#   alsa-utils         aplay / speaker-test to check a sound card
#   systemd            systemd-analyze, to verify the unit files in the tests
#   chromium chromium-driver  headless browser for the web-console test (tests/test_console_browser.py)
#   fonts-wqy-microhei a small CJK font, so the console's Chinese labels render in that test's screenshot
#   npm                the npm client: scripts/install-kokoro-voices.sh fetches the Kokoro voices (kokoro-js) with it
#                      (skipped when an `npm` command is already there, e.g. with nodejs from another source, whose
#                      package conflicts with Debian's npm)
# Idempotent: exits at once when every package is already installed.
# Runs as root, or through sudo when that is available.
set -eu

PACKAGES="mosquitto mosquitto-clients libportaudio2 alsa-utils systemd chromium chromium-driver fonts-wqy-microhei npm"

if command -v npm >/dev/null 2>&1; then
    PACKAGES=$(echo "$PACKAGES" | sed 's/ npm$//')
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing="$missing $pkg"
    fi
done
if [ -z "$missing" ]; then
    echo "install-system-deps: all present ($PACKAGES)"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-system-deps: need root (or sudo) to install:$missing" >&2
    exit 1
fi

echo "install-system-deps: installing$missing"
$SUDO apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
echo "install-system-deps: done"
