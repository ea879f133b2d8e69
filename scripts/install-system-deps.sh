#!/bin/sh
# Install the Debian/Ubuntu packages announcer needs at run time and in tests:
#   mosquitto          the broker the test-suite starts (its own instance, on a free port)
#   mosquitto-clients  mosquitto_pub / mosquitto_sub for operators
#   libportaudio2      PortAudio, used by the sounddevice speaker
#   alsa-utils         aplay / speaker-test to check a sound card
#   systemd            systemd-analyze, to verify the unit files in the tests
#   chromium chromium-driver  headless browser for the web-console test (tests/test_console_browser.py)
#   fonts-wqy-microhei a small CJK font, so the console's Chinese labels render in that test's screenshot
#   gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav ffmpeg
#                      real RTP receivers for the rtp speaker's tests (and the README's check commands)
#   iproute2           ip netns: the multicast tests' own network namespaces
#   snapserver snapclient  a real Snapcast server and client for the snapcast speaker's tests
# Idempotent: exits at once when every package is already installed.
# Runs as root, or through sudo when that is available.
set -eu

PACKAGES="mosquitto mosquitto-clients libportaudio2 alsa-utils systemd chromium chromium-driver fonts-wqy-microhei
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav ffmpeg iproute2
    snapserver snapclient"

# shellcheck disable=SC2086  # word splitting of the package list is intended
exec sh "$(dirname "$0")/apt-install.sh" install-system-deps $PACKAGES
