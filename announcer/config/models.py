"""The root of the config: ``Config``, its plug-in unions and the checks across sections.

* Loading (YAML, ``${VAR}`` substitution, one combined error report naming each bad key
  path) is in ``announcer.config.loader``.
* Unknown keys are errors (``extra="forbid"``); checks across sections report each
  problem under its own key path (``CROSS_MARK``).
* Engines and speakers declare their own config models in their modules
  (``announcer.engines.*.Config``, ``announcer.sinks.*.Config``); this module
  collects them into discriminated unions on ``type``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field, field_validator, model_validator

from ..audio.chimes import BUILTIN_CHIMES
from ..core.schema import Slug
from ..engines.base import ENGINE_MODULES
from ..sinks.base import SINK_MODULES
from .errors import CROSS_MARK
from .sections import (
    AudioConfig,
    CacheConfig,
    DefaultsConfig,
    HermesConfig,
    HomeAssistantConfig,
    HttpConfig,
    LimitsConfig,
    LoggingConfig,
    MqttConfig,
    QuietHoursConfig,
    ShutdownConfig,
    SpoolConfig,
    Strict,
    WyomingConfig,
)


def _plugin_union(modules: dict[str, str]) -> Any:
    models = tuple(importlib.import_module(m).Config for m in modules.values())
    return Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007


EngineConfig = _plugin_union(ENGINE_MODULES)
SpeakerConfig = _plugin_union(SINK_MODULES)


def _default_engines() -> dict[str, Any]:
    return {"zh": {"type": "embedded-zh"}}


def _default_speakers() -> dict[str, Any]:
    return {"default": {"type": "sounddevice", "device": None, "name": "default output"}}


class Config(Strict):
    mqtt: MqttConfig = MqttConfig()
    engines: dict[Slug, EngineConfig] = Field(default_factory=_default_engines, validate_default=True)  # type: ignore[valid-type]
    speakers: dict[Slug, SpeakerConfig] = Field(default_factory=_default_speakers, validate_default=True)  # type: ignore[valid-type]
    zones: dict[Slug, tuple[Slug, ...]] = Field(default_factory=dict)
    zone_names: dict[Slug, str] = Field(default_factory=dict)  # display names, from `zones: {z: {name: ...}}`
    chimes: dict[Slug, Path] = Field(default_factory=dict)
    defaults: DefaultsConfig = DefaultsConfig()
    audio: AudioConfig = AudioConfig()
    quiet_hours: tuple[QuietHoursConfig, ...] = ()
    timezone: str | None = None  # IANA name (Asia/Shanghai) for quiet hours; null: the system's local time
    spool: SpoolConfig = SpoolConfig()
    cache: CacheConfig = CacheConfig()
    limits: LimitsConfig = LimitsConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    hermes: HermesConfig = HermesConfig()
    wyoming: WyomingConfig = WyomingConfig()
    http: HttpConfig = HttpConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Asia/Shanghai, Europe/Berlin, UTC); "
                             "null: the system's local time") from None
        return v

    @model_validator(mode="before")
    @classmethod
    def _zone_mapping_form(cls, data: Any) -> Any:
        """``zones: {ward-3: {speakers: [a, b], name: 三号病房}}`` is ``zones: {ward-3: [a, b]}`` plus a display name."""
        if not isinstance(data, dict) or not isinstance(data.get("zones"), dict):
            return data
        zones: dict[Any, Any] = {}
        names = dict(data["zone_names"]) if isinstance(data.get("zone_names"), dict) else {}
        for zone, value in data["zones"].items():
            if isinstance(value, dict) and "speakers" in value and set(value) <= {"speakers", "name"}:
                zones[zone] = value["speakers"]
                if value.get("name") is not None:
                    names[zone] = value["name"]
            else:
                zones[zone] = value
        out = dict(data, zones=zones)
        if names:
            out["zone_names"] = names
        return out

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        errors: list[str] = []
        if self.mqtt.password_file is not None:
            if self.mqtt.password is not None:
                errors.append("mqtt.password_file: set either mqtt.password or mqtt.password_file, not both")
            try:
                if not self.mqtt.read_password():
                    errors.append(f"mqtt.password_file: {self.mqtt.password_file} is empty")
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or type(exc).__name__
                errors.append(f"mqtt.password_file: cannot read {self.mqtt.password_file}: {why}")
        if not self.engines:
            errors.append("engines: at least one engine is needed")
        if self.defaults.engine is not None and self.defaults.engine not in self.engines:
            errors.append(f"defaults.engine: {self.defaults.engine!r} is not an engine (have: {', '.join(self.engines)})")
        for name, ecfg in self.engines.items():  # managed engines (sambert): who speaks while they are down
            fallback = getattr(ecfg, "fallback", None)
            if fallback is not None and (fallback == name or fallback not in self.engines):
                errors.append(f"engines.{name}.fallback: {fallback!r} is not another engine "
                              f"(have: {', '.join(n for n in self.engines if n != name) or 'none'})")
        clash = set(self.speakers) & set(self.zones)
        for name in sorted(clash):
            errors.append(f"zones.{name}: a speaker already has this name")
        for zone, members in self.zones.items():
            if not members:
                errors.append(f"zones.{zone}: a zone needs at least one speaker")
            for i, m in enumerate(members):
                if m not in self.speakers:
                    errors.append(f"zones.{zone}.{i}: {m!r} is not a speaker (have: {', '.join(self.speakers)})")
        for zone in self.zone_names:
            if zone not in self.zones:
                errors.append(f"zone_names.{zone}: not a zone (have: {', '.join(self.zones) or 'none'})")
        targets = set(self.speakers) | set(self.zones)
        for i, t in enumerate(self.defaults.targets):
            if t not in targets:
                errors.append(f"defaults.targets.{i}: {t!r} is not a speaker or zone")
        for site, t in self.hermes.sites.items():
            if t not in targets:
                errors.append(f"hermes.sites.{site}: {t!r} is not a speaker or zone")
        for qi, q in enumerate(self.quiet_hours):
            for si, s in enumerate(q.speakers):
                if s not in self.speakers:
                    errors.append(f"quiet_hours.{qi}.speakers.{si}: {s!r} is not a speaker")
        chime_names = set(self.chimes) | set(BUILTIN_CHIMES)
        named = [("defaults.chime", self.defaults.chime), ("audio.end_chime", self.audio.end_chime)]
        named += [(f"audio.priority_chimes.{k}", v) for k, v in self.audio.priority_chimes.items()]
        for key, name in named:
            if isinstance(name, str) and name not in chime_names:
                errors.append(f"{key}: {name!r} is not a chime (have: {', '.join(sorted(chime_names))})")
        if errors:
            raise ValueError(CROSS_MARK + "\n".join(errors))
        return self

    # ---- conveniences for the rest of the program ---------------------------------
    @property
    def default_engine(self) -> str:
        return self.defaults.engine or next(iter(self.engines))

    @property
    def default_targets(self) -> tuple[str, ...]:
        return self.defaults.targets or tuple(self.speakers)[:1]

    def expand_targets(self, targets: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """Speaker names for a list of speaker/zone names, in order, without repeats."""
        out: list[str] = []
        for t in targets:
            for s in self.zones.get(t, (t,)):
                if s not in out:
                    out.append(s)
        return tuple(out)
