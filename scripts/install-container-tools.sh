#!/bin/sh
# Install the Debian packages that build and run announcer's container image without an image
# registry (scripts/build-container.sh, tests/test_container.py):
#   podman      builds and runs the image (rootful here)
#   buildah     podman's build engine (podman build uses it as a library; the CLI helps debugging)
#   mmdebstrap  makes the Debian base image from Debian's own package mirror
#   runc        the OCI runtime (crun fails on hosts with hybrid cgroups; container/containers.conf picks runc)
#   catatonit   the init of `podman run --init` (the add-on runs with init: true, as Home Assistant does)
# Idempotent: exits at once when every package is already installed.
# Runs as root, or through sudo when that is available.
set -eu

PACKAGES="podman buildah mmdebstrap runc catatonit"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing="$missing $pkg"
    fi
done
if [ -z "$missing" ]; then
    echo "install-container-tools: all present ($PACKAGES)"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-container-tools: need root (or sudo) to install:$missing" >&2
    exit 1
fi

echo "install-container-tools: installing$missing"
$SUDO apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
echo "install-container-tools: done"
