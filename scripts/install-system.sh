#!/bin/sh
# Install announcer as a system service on Debian/Ubuntu with systemd, from this source tree.
# Idempotent: run it again to repair, or after `git pull` to upgrade (a new version gets a new
# virtual environment beside the old one, which stays for a rollback).
#
#   sudo sh scripts/install-system.sh [--voices "baker ..."] [--prefix /opt/announcer]
#
# What goes where:
#   /opt/announcer/<version>/        a virtual environment: requirements/runtime.lock (hash-checked),
#                                    announcer, the voices (announcer voices install, hash-checked)
#   /opt/announcer/current           -> the version the service runs (rollback: point it back, restart)
#   /etc/announcer/announcer.yaml    the config (from config/announcer.example.yaml; never overwritten)
#   /etc/announcer/clips/            its recorded clips (from config/clips; missing ones added)
#   /etc/announcer/announcer.env     secrets as VAR=value, read by the unit (mode 0600, never overwritten)
#   /etc/systemd/system/announcer.service   the unit (systemd/announcer.service, ExecStart -> current)
#   /var/lib/announcer, /var/cache/announcer   spool and clause cache (the unit's State/CacheDirectory=)
#   user and group `announcer` (system account, in group audio)
#
# --root DIR stages everything under DIR instead of / (no user, no chown, no systemctl: for
# packaging and for tests/test_install_system.py).
set -eu
cd "$(dirname "$0")/.."

PREFIX=/opt/announcer
VOICES="baker kokoro-zh af_heart"  # the example config speaks with Kokoro (zf_xiaoyi, af_heart)
ROOT=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=$2; shift 2 ;;
        --voices) VOICES=$2; shift 2 ;;
        --root) ROOT=$2; shift 2 ;;
        *) echo "install-system: unknown option $1 (allowed: --prefix DIR, --voices \"NAME ...\", --root DIR)" >&2; exit 2 ;;
    esac
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
PY=${PYTHON:-python3}
VENV=$ROOT$PREFIX/$VERSION
CONF=$ROOT/etc/announcer
UNIT=$ROOT/etc/systemd/system/announcer.service
staged() { [ -n "$ROOT" ]; }

if ! staged; then
    [ "$(id -u)" = 0 ] || { echo "install-system: run as root (sudo)" >&2; exit 1; }
    # run-time packages only (scripts/install-system-deps.sh also installs what the tests need)
    sh scripts/apt-install.sh install-system python3-venv libportaudio2 alsa-utils mosquitto-clients >/dev/null
    if ! getent passwd announcer >/dev/null; then
        useradd --system --home-dir /var/lib/announcer --no-create-home --shell /usr/sbin/nologin \
            --user-group --groups audio announcer
    fi
fi

# 1. the program, in a virtual environment of its own version
if [ ! -x "$VENV/bin/announcer" ] || [ requirements/runtime.lock -nt "$VENV/.installed" ]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
        -r requirements/runtime.lock
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps .
    touch "$VENV/.installed"
fi
# 2. the voices (quick when installed)
# shellcheck disable=SC2086  # a list of names
"$VENV/bin/announcer" voices install $VOICES >/dev/null
ln -sfn "$VERSION" "$ROOT$PREFIX/current.new" && mv -T "$ROOT$PREFIX/current.new" "$ROOT$PREFIX/current"

# 3. config and secrets: created once, then the operator's
install -d -m 0750 "$CONF"
if [ ! -f "$CONF/announcer.yaml" ]; then
    cp config/announcer.example.yaml "$CONF/announcer.yaml.tmp"  # its spool and cache: the unit's directories
    chmod 0640 "$CONF/announcer.yaml.tmp" && mv "$CONF/announcer.yaml.tmp" "$CONF/announcer.yaml"
fi
# the example config's clips (clips/bell.flac, relative to the config): added when missing, never replaced
install -d -m 0750 "$CONF/clips"
for clip in config/clips/*; do
    [ -e "$CONF/clips/$(basename "$clip")" ] || install -m 0640 "$clip" "$CONF/clips/"
done
if [ ! -f "$CONF/announcer.env" ]; then
    printf '# VAR=value lines for ${VAR} in announcer.yaml (MQTT_PASSWORD=..., HA_TOKEN=...)\n' > "$CONF/announcer.env"
    chmod 0600 "$CONF/announcer.env"
fi
staged || chown -R root:announcer "$CONF"

# 4. the unit, running the current version
install -d "$(dirname "$UNIT")"
sed "s|^ExecStart=[^ ]*|ExecStart=$PREFIX/current/bin/announcer|" systemd/announcer.service > "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT" && chmod 0644 "$UNIT"
if ! staged && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable announcer.service >/dev/null 2>&1
    if systemctl is-active --quiet announcer.service; then systemctl restart announcer.service; fi
fi
echo "install-system: announcer $VERSION in $VENV (current), config $CONF/announcer.yaml, unit $UNIT"
staged || echo "next: edit $CONF/announcer.yaml (and announcer.env), then: announcer check-config -c $CONF/announcer.yaml && systemctl start announcer"
