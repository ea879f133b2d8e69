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
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, field_validator, model_validator

from ..core.schema import LangCode, Slug
from ..engines.base import ENGINE_MODULES
from ..schedule.model import ScheduleConfig, ScheduleName
from ..sinks.base import SINK_MODULES
from .checks import CROSS_CHECKS
from .errors import CROSS_MARK
from .sections import (
    AudioConfig,
    CacheConfig,
    DefaultsConfig,
    FleetConfig,
    HermesConfig,
    HistoryConfig,
    HomeAssistantConfig,
    HttpConfig,
    LimitsConfig,
    LoggingConfig,
    MqttConfig,
    PairConfig,
    QuietHoursConfig,
    ShutdownConfig,
    SiteConfig,
    SpoolConfig,
    Strict,
    WyomingConfig,
)
from .templates import TemplateConfig


def _plugin_union(modules: dict[str, str]) -> Any:
    models = tuple(importlib.import_module(m).Config for m in modules.values())
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


if TYPE_CHECKING:  # the unions are built from the plug-ins at import time: to a type checker, any config model
    EngineConfig = Any
    SpeakerConfig = Any
else:
    EngineConfig = _plugin_union(ENGINE_MODULES)
    SpeakerConfig = _plugin_union(SINK_MODULES)


def _default_engines() -> dict[str, Any]:
    return {"zh": {"type": "embedded-zh"}}


def _default_speakers() -> dict[str, Any]:
    return {"default": {"type": "sounddevice", "device": None, "name": "default output"}}


class Config(Strict):
    mqtt: MqttConfig = MqttConfig()
    engines: dict[Slug, EngineConfig] = Field(default_factory=_default_engines, validate_default=True)
    speakers: dict[Slug, SpeakerConfig] = Field(default_factory=_default_speakers, validate_default=True)
    # language code -> the engine that speaks it: a translation ({"translations": {"en": ...}}) in a language
    # not listed here is rejected; an announcement with `lang` and no `engine` is spoken by lang's engine
    languages: dict[LangCode, Slug] = Field(default_factory=dict)
    zones: dict[Slug, tuple[Slug, ...]] = Field(default_factory=dict)
    zone_names: dict[Slug, str] = Field(default_factory=dict)  # display names, from `zones: {z: {name: ...}}`
    chimes: dict[Slug, Path] = Field(default_factory=dict)
    clips: dict[Slug, Path] = Field(default_factory=dict)  # recorded clips (WAV, FLAC, OGG), decoded at load
    templates: dict[Slug, TemplateConfig] = Field(default_factory=dict)
    schedules: dict[ScheduleName, ScheduleConfig] = Field(default_factory=dict)
    defaults: DefaultsConfig = DefaultsConfig()
    audio: AudioConfig = AudioConfig()
    quiet_hours: tuple[QuietHoursConfig, ...] = ()
    timezone: str | None = None  # IANA name (Asia/Shanghai) for quiet hours and schedules; null: the system's
    history: HistoryConfig = HistoryConfig()
    spool: SpoolConfig = SpoolConfig()
    cache: CacheConfig = CacheConfig()
    limits: LimitsConfig = LimitsConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    hermes: HermesConfig = HermesConfig()
    wyoming: WyomingConfig = WyomingConfig()
    http: HttpConfig = HttpConfig()
    logging: LoggingConfig = LoggingConfig()
    site: SiteConfig | None = None  # this daemon's building in a fleet (docs/fleet.md); null: not in a fleet
    fleet: FleetConfig = FleetConfig()
    pair: PairConfig | None = None  # one member of an active/standby pair; null: a daemon of its own

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{v!r} is not an IANA time zone (e.g. Asia/Shanghai, Europe/Berlin, UTC); "
                "null: the system's local time"
            ) from None
        return v

    @model_validator(mode="before")
    @classmethod
    def _zone_mapping_form(cls, data: Any) -> Any:
        """``zones: {ward-3: {speakers: [a, b], name: 三号病房}}``: ``zones: {ward-3: [a, b]}`` plus a display name."""
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
        errors = [line for check in CROSS_CHECKS for line in check(self)]
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
