#!/bin/sh
# Install the Kokoro voices: `npm pack kokoro-js@1.2.1` (npm: the Debian package, see
# install-system-deps.sh), the tarball's sha512 and every voice's sha256 checked against
# announcer/engines/data/kokoro-js-1.2.1.sha256 (committed), the 54 voices/*.bin copied into
#   <python prefix>/share/announcer/kokoro/voices   (the virtual environment's own; --dest DIR for another)
# where the `kokoro` engine looks for them (or set engines.<name>.voices_dir). Idempotent: does nothing
# when every voice is there with the right hash. Nothing is fetched while the daemon runs.
#   sh scripts/install-kokoro-voices.sh [--dest DIR]      PYTHON=/path/to/python to use another environment
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m announcer.engines.kokoro_assets install "$@"
