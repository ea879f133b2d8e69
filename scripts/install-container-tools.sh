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

# shellcheck disable=SC2086  # word splitting of the package list is intended
exec sh "$(dirname "$0")/apt-install.sh" install-container-tools $PACKAGES
