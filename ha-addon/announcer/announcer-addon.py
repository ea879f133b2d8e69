#!/opt/announcer/bin/python
"""The Home Assistant add-on's entry point: add-on options + the Supervisor's MQTT service -> announcer run.

1. ``/config/announcer.yaml`` (the add-on's own config folder, ``addon_config``) when the user
   put one there: a full announcer config, used as it is; the options are then ignored.
2. Otherwise the options the Supervisor wrote to ``/data/options.json`` (validated against
   ``config.yaml``'s schema) and the broker the Supervisor announces
   (``GET http://supervisor/services/mqtt`` with ``$SUPERVISOR_TOKEN``; the Mosquitto broker
   add-on provides it) become ``/data/announcer.yaml``: the spool and the clause cache in
   ``/data`` (kept in backups, but the cache), the WAVs of the ``archive`` speaker in
   ``/media/announcer``, sound through ALSA's default device, which the Supervisor routes to
   Home Assistant's PulseAudio (``audio: true``).
3. ``announcer run -c <that file>`` replaces this process.

Problems are one line on stderr and exit 1 (the add-on's log), never a traceback.
``ANNOUNCER_ADDON_DATA``, ``ANNOUNCER_ADDON_CONFIG`` and ``ANNOUNCER_SUPERVISOR_URL`` move the
folders and the Supervisor (tests only).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

ANNOUNCER = "/opt/announcer/bin/announcer"
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class AddonError(Exception):
    pass


def mqtt_service(base_url: str, token: str | None) -> dict[str, Any]:
    """The broker the Supervisor announces: host, port, ssl, protocol, username, password."""
    if not token:
        raise AddonError("SUPERVISOR_TOKEN is not set: run this as a Home Assistant add-on (services: mqtt:need)")
    req = urllib.request.Request(f"{base_url}/services/mqtt", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise AddonError(
            f"the Supervisor has no MQTT service for us ({exc.code}): install and start the Mosquitto broker add-on"
        ) from None
    except (OSError, ValueError) as exc:
        raise AddonError(f"cannot ask the Supervisor at {base_url} for the MQTT service: {exc}") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not data.get("host") or not data.get("port"):
        raise AddonError(f"the Supervisor's MQTT service has no host/port: {body!r:.200}")
    return data


def _engines(voice: str) -> dict[str, Any]:
    """``baker``: the embedded voice (non-commercial); any other: that Kokoro voice (in the image)."""
    if voice == "baker":
        return {"zh": {"type": "embedded-zh"}}
    return {"kokoro": {"type": "kokoro", "voice": voice, "threads": 2}}


def render_config(
    options: dict[str, Any], mqtt: dict[str, Any], data_dir: str = "/data", timezone: str | None = None
) -> dict[str, Any]:
    """announcer's config (a dict for YAML) from the add-on options, the MQTT service and ``$TZ``."""
    device = options.get("device") or "default"
    speakers: dict[str, Any] = {
        "speaker": {
            "type": "sounddevice",
            "device": None if device == "default" else device,
            "volume": options.get("volume", 0.8),
            "name": options.get("speaker_name") or "Home Assistant",
        }
    }
    targets = ["speaker"]
    if options.get("archive", True):
        speakers["archive"] = {"type": "file", "directory": "/media/announcer", "keep_days": 7}
        targets.append("archive")
    cfg: dict[str, Any] = {
        "mqtt": {
            "host": str(mqtt["host"]),
            "port": int(mqtt["port"]),
            "topic_prefix": options.get("topic_prefix", "announcer"),
            "client_id": "announcer-addon",
        },
        "engines": _engines(options.get("voice") or "baker"),
        "speakers": speakers,
        "defaults": {"targets": targets},
        "timezone": timezone or None,  # the Supervisor passes Home Assistant's in $TZ
        "quiet_hours": [
            {
                "start": q["start"],
                "end": q["end"],
                "days": DAYS,
                "volume": q.get("volume", 0.4),
                "min_priority": q.get("min_priority", "high"),
            }
            for q in options.get("quiet_hours") or []
        ],
        "spool": {"path": f"{data_dir}/spool.sqlite3"},
        "cache": {"directory": f"{data_dir}/cache"},
        # the Supervisor gives an add-on 10 s to stop unless config.yaml says otherwise (timeout: 30)
        "shutdown": {"drain_timeout": 20},
        "homeassistant": {"enabled": True},
        "logging": {"level": options.get("log_level", "INFO")},
    }
    if mqtt.get("username"):
        # the password goes into its own file (written by main): never ${...}-substituted, never in the YAML
        cfg["mqtt"]["username"] = str(mqtt["username"])
        cfg["mqtt"]["password_file"] = f"{data_dir}/mqtt.password"
    if mqtt.get("ssl"):
        cfg["mqtt"]["tls"] = {"ca_certs": "/etc/ssl/certs/ca-certificates.crt"}
    if options.get("wyoming", False):
        cfg["wyoming"] = {"enabled": True, "uri": "tcp://0.0.0.0:10200"}
    return cfg


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def main(argv: Sequence[str] | None = None, execv: Callable[[str, list[str]], Any] = os.execv) -> int:
    data_dir = Path(os.environ.get("ANNOUNCER_ADDON_DATA", "/data"))
    config_dir = Path(os.environ.get("ANNOUNCER_ADDON_CONFIG", "/config"))
    supervisor = os.environ.get("ANNOUNCER_SUPERVISOR_URL", "http://supervisor")
    override = config_dir / "announcer.yaml"
    if override.is_file():
        print(f"announcer-addon: using {override} (the add-on's options are ignored)", file=sys.stderr)
        path = override
    else:
        try:
            options = json.loads((data_dir / "options.json").read_text(encoding="utf-8"))
            mqtt = mqtt_service(supervisor, os.environ.get("SUPERVISOR_TOKEN"))
        except OSError as exc:
            print(f"announcer-addon: cannot read the options: {exc}", file=sys.stderr)
            return 1
        except (AddonError, ValueError) as exc:
            print(f"announcer-addon: {exc}", file=sys.stderr)
            return 1
        path = data_dir / "announcer.yaml"
        _write_private(data_dir / "mqtt.password", str(mqtt.get("password") or ""))
        cfg = render_config(options, mqtt, str(data_dir), os.environ.get("TZ"))
        _write_private(path, yaml.safe_dump(cfg, allow_unicode=True))
        print(f"announcer-addon: broker {mqtt['host']}:{mqtt['port']}, config {path}", file=sys.stderr)
    execv(ANNOUNCER, ["announcer", "run", "-c", str(path)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
