#!/bin/sh
# A real Home Assistant for the slow-lane tests of the `homeassistant` speaker
# (tests/test_homeassistant_real.py): Home Assistant 2025.4.4 from PyPI in a virtual environment
# of its own, on Python 3.13, from the committed lock (tests/homeassistant-2025.4.4-py313.lock:
# the release's package constraints resolved once, with pycares pinned to 4.11.0, which the
# release's aiodns needs, and home-assistant-frontend pre-installed so `hass --skip-pip` never
# installs anything at run time).
#
# Prints the environment's directory on the last line. Built once per lock (its SHA-256 is in
# the directory name) under ${ANNOUNCER_HA_CACHE:-~/.cache/announcer}; a few minutes the first
# time (seven sdists are compiled: needs gcc/g++), instant afterwards.
# Python 3.13: $ANNOUNCER_PYTHON313, else python3.13 on PATH, else pyenv's newest 3.13.x.
set -eu
cd "$(dirname "$0")/.."
LOCK=tests/homeassistant-2025.4.4-py313.lock

works() {  # a Python 3.13 that runs (a pyenv shim of a version not selected does not)
    [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1
}
py=""
for candidate in "${ANNOUNCER_PYTHON313:-}" "$(command -v python3.13 2>/dev/null || true)" \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r); do
    if works "$candidate"; then
        py="$candidate"
        break
    fi
done
if [ -z "$py" ]; then
    echo "install-home-assistant: no Python 3.13 found; install one (pyenv install 3.13.0) or set ANNOUNCER_PYTHON313" >&2
    exit 3
fi

sum=$(sha256sum "$LOCK" | cut -c1-12)
cache="${ANNOUNCER_HA_CACHE:-$HOME/.cache/announcer}"
venv="$cache/ha-2025.4.4-py313-$sum"
if [ -f "$venv/.complete" ]; then
    echo "$venv"
    exit 0
fi

mkdir -p "$cache"
rm -rf "$venv"  # an unfinished build (no .complete): start again
echo "install-home-assistant: building $venv with $py (a few minutes)" >&2
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==0.6.10" >&2
# --compile-bytecode: without .pyc files Home Assistant starts 3-4 times slower (PYTHONDONTWRITEBYTECODE may be set)
"$venv/bin/uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" -r "$LOCK" >&2
touch "$venv/.complete"
echo "$venv"
