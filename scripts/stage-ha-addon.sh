#!/bin/sh
# Stage the Home Assistant add-on for a local install: DEST/announcer/ gets the add-on folder
# (ha-addon/announcer), announcer's source (src/) and the image's build scripts (build/), which is
# what Home Assistant builds on the device. Usage (docs/container.md, "Home Assistant add-on"):
#   sh scripts/stage-ha-addon.sh /path/to/addons     # e.g. the Samba/SSH share's addons folder
# Then in Home Assistant: Settings > Add-ons > Add-on store > (menu) Check for updates > "Announcer".
set -eu
cd "$(dirname "$0")/.."
DEST=${1:?usage: stage-ha-addon.sh DEST}
out="$DEST/announcer"
rm -rf "$out"
mkdir -p "$out/src" "$out/build"
cp -R ha-addon/announcer/. "$out/"
cp pyproject.toml README.md LICENSE "$out/src/"
cp -R announcer "$out/src/announcer"
find "$out/src" -name __pycache__ -type d -prune -exec rm -rf {} +
cp container/debian-packages.sh container/python-env.sh requirements/runtime.lock requirements/voice.lock "$out/build/"
echo "stage-ha-addon: $out"
