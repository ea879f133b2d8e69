"""Runtime settings that Home Assistant (or any MQTT client) changes and that survive restarts.

A small JSON file next to the spool (``<spool dir>/settings.json``), rewritten
atomically (temp file, fsync, rename, fsync of the directory) on every change:

* ``emotion``: the default emotion for announcements that name none (``None``: the
  config's ``defaults.emotion``);
* ``volume``: the master volume 0..1, multiplied into every speaker's gain;
* ``ha_config_topics``: the discovery config topics published last time, so that an
  entity whose zone left the config can be removed (empty retained payload);
* ``paused_schedules``: the schedules paused (Home Assistant's switch per schedule): they
  keep their times but announce nothing until resumed.

A missing file means defaults; an unreadable or malformed file is logged and replaced
by defaults on the next change (the daemon never refuses to start over it).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

from ..core.emotions import EMOTIONS, resolve_emotion
from ..core.files import atomic_write

_LOGGER = logging.getLogger(__name__)

FILE_NAME = "settings.json"


def settings_path(spool_path: Path | str) -> Path:
    """Where the settings live: next to the spool file."""
    return Path(spool_path).parent / FILE_NAME


def parse_emotion(value: str) -> str:
    """An emotion name or alias to its canonical name; ValueError naming the allowed ones."""
    emotion, warning = resolve_emotion(value.strip() if value else value)
    if warning or not value or not value.strip():
        raise ValueError(f"unknown emotion {value!r} (allowed: {', '.join(EMOTIONS)})")
    return emotion


def parse_volume(value: Any) -> float:
    """0..1; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"volume must be a number 0 .. 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"volume {value} is out of range (allowed: 0 .. 1)")
    return float(value)


class RuntimeSettings:
    """Thread-safe; every setter persists before it returns (OSError propagates)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        self._load()

    # ---- reading ----------------------------------------------------------------------
    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            _LOGGER.warning("settings: cannot read %s (%s); using defaults", self.path, exc)
            return
        if not isinstance(raw, dict):
            _LOGGER.warning("settings: %s is not a JSON object; using defaults", self.path)
            return
        data: dict[str, Any] = {}
        emo = raw.get("emotion")
        if emo is not None:
            try:
                data["emotion"] = parse_emotion(str(emo))
            except ValueError as exc:
                _LOGGER.warning("settings: %s: %s; ignored", self.path, exc)
        if raw.get("volume") is not None:
            try:
                data["volume"] = parse_volume(raw["volume"])
            except ValueError as exc:
                _LOGGER.warning("settings: %s: %s; ignored", self.path, exc)
        for key in ("ha_config_topics", "paused_schedules"):
            names = raw.get(key)
            if isinstance(names, list) and all(isinstance(t, str) for t in names):
                data[key] = list(names)
        self._data = data

    @property
    def emotion(self) -> str | None:
        with self._lock:
            return self._data.get("emotion")

    @property
    def volume(self) -> float:
        with self._lock:
            return float(self._data.get("volume", 1.0))

    @property
    def ha_config_topics(self) -> list[str]:
        with self._lock:
            return list(self._data.get("ha_config_topics", []))

    @property
    def paused_schedules(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._data.get("paused_schedules", ()))

    def field_defaults(self) -> dict[str, Any]:
        """Announcement fields to use when a payload leaves them out (for ``Intake``)."""
        emo = self.emotion
        return {"emotion": emo} if emo is not None else {}

    # ---- changing -----------------------------------------------------------------------
    def set_emotion(self, value: str) -> str:
        emotion = parse_emotion(value)
        self._update("emotion", emotion)
        return emotion

    def set_volume(self, value: Any) -> float:
        volume = parse_volume(value)
        self._update("volume", volume)
        return volume

    def set_schedule_paused(self, name: str, paused: bool) -> None:
        """Pause (or resume) the schedule ``name``; persisted before it returns."""
        names = set(self.paused_schedules)
        names = names | {name} if paused else names - {name}
        self._update("paused_schedules", sorted(names))

    def set_ha_config_topics(self, topics: list[str]) -> None:
        self._update("ha_config_topics", sorted(set(topics)))

    def _update(self, key: str, value: Any) -> None:
        with self._lock:
            if self._data.get(key) == value and self.path.exists():
                return
            data = dict(self._data, **{key: value})
            self._write(data)
            self._data = data

    def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        atomic_write(self.path, text.encode("utf-8"), prefix=".settings-")
