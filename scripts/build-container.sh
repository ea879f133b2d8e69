#!/bin/sh
# Build announcer's container image (container/Containerfile) with podman, from Debian packages
# only: no image registry is needed. What it does (docs/container.md):
#   1. scripts/install-container-tools.sh (podman buildah mmdebstrap runc; skipped when present)
#   2. the base image: `mmdebstrap --variant=minbase bookworm` (docs, man pages and locales left
#      out, merged /usr) from this machine's Debian mirror, imported as
#      localhost/announcer-base:bookworm-<key>. The tarball is kept in the cache directory and the
#      image in podman's store, so later builds skip this step; --refresh-base makes them again
#      (for Debian's security updates).
#   3. podman build --format docker (docker format keeps the HEALTHCHECK), with the host's CA
#      bundle mounted read-only for pip when the machine reaches PyPI through a TLS proxy.
# Usage: sh scripts/build-container.sh [--refresh-base] [TAG]     (TAG default: localhost/announcer:<version>)
# Environment: ANNOUNCER_CACHE_DIR (default ~/.cache/announcer), CONTAINERS_CONF (default
# container/containers.conf), PIP_INDEX_URL (passed to the build when set), PIP_CERT (the CA bundle).
set -eu
cd "$(dirname "$0")/.."

refresh=0
if [ "${1:-}" = "--refresh-base" ]; then
    refresh=1
    shift
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
TAG=${1:-localhost/announcer:$version}

sh scripts/install-container-tools.sh
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/container/containers.conf}"
CACHE="${ANNOUNCER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/announcer}/container"
mkdir -p "$CACHE"

# ---- 1. the base image --------------------------------------------------------------------------
SUITE=bookworm
# this machine's Debian mirror when it is a bookworm one (deb822 or one-line format), else deb.debian.org
MIRROR=""
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ] && grep -q "$SUITE" "$f"; then
        MIRROR=$f
        break
    fi
done
set -- --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/man/*'
key=$( { echo "$SUITE $*"; [ -z "$MIRROR" ] || cat "$MIRROR"; } | sha256sum | cut -c1-12)
BASE=localhost/announcer-base:$SUITE-$key
TARBALL=$CACHE/debian-$SUITE-$key.tar

if [ "$refresh" = 1 ]; then
    rm -f "$TARBALL"
    podman rmi --force "$BASE" >/dev/null 2>&1 || true
fi
if podman image exists "$BASE"; then
    echo "build-container: base image $BASE (in podman's store)"
else
    if [ ! -f "$TARBALL" ] || [ ! -s "$TARBALL" ]; then
        echo "build-container: making $TARBALL with mmdebstrap (about a minute)"
        start=$(date +%s)
        # shellcheck disable=SC2086  # MIRROR is empty (mmdebstrap's default mirror) or one path
        # (mmdebstrap picks its output format from the name: keep .tar at the end)
        rm -rf "$TARBALL.part.tar"
        mmdebstrap --quiet "$@" "$SUITE" "$TARBALL.part.tar" $MIRROR </dev/null >"$CACHE/mmdebstrap.log" 2>&1 || {
            tail -n 30 "$CACHE/mmdebstrap.log" >&2
            exit 1
        }
        mv "$TARBALL.part.tar" "$TARBALL"
        echo "build-container: base tarball in $(($(date +%s) - start)) s"
    fi
    podman import --quiet "$TARBALL" "$BASE" >/dev/null
    echo "build-container: imported $BASE"
fi
# the current base under a fixed name too (ha-addon/announcer/Dockerfile's BUILD_FROM in the tests)
podman tag "$BASE" "localhost/announcer-base:$SUITE"

# ---- 2. the image ---------------------------------------------------------------------------------
CA=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
set -- --format docker --build-arg "BASE=$BASE" -f container/Containerfile -t "$TAG"
if [ -s "$CA" ]; then
    set -- "$@" --volume "$CA:/run/build-ca.pem:ro" --build-arg BUILD_CA=/run/build-ca.pem
fi
case "${PIP_INDEX_URL:-}" in
    http://* | https://*) set -- "$@" --build-arg "PIP_INDEX_URL=$PIP_INDEX_URL" ;;
esac
start=$(date +%s)
podman build "$@" .
size=$(podman image inspect --format '{{.Size}}' "$TAG")
echo "build-container: $TAG built in $(($(date +%s) - start)) s, $((size / 1000000)) MB"
