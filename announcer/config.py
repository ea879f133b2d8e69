"""Typed, frozen configuration loaded from one YAML file.

* Loading (YAML, ``${VAR}`` substitution, one combined error report naming each bad key
  path) is in ``announcer.config_loader``; its public names are re-exported here.
* Unknown keys are errors (``extra="forbid"``); checks across sections report each
  problem under its own key path (``CROSS_MARK``).
* Engines and speakers declare their own config models in their modules
  (``announcer.engines.*.Config``, ``announcer.sinks.*.Config``); this module
  collects them into discriminated unions on ``type``.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config_loader import (  # noqa: F401 (re-exported: `from announcer.config import load_config` keeps working)
    CROSS_MARK,
    ConfigError,
    find_config_path,
    load_config,
    parse_config,
)
from .emotions import EMOTIONS, resolve_emotion
from .engines.base import ENGINE_MODULES
from .sinks.base import SINK_MODULES

SLUG = r"^[a-z0-9_-]+$"
Slug = Annotated[str, Field(pattern=SLUG, min_length=1, max_length=64)]
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "emergency")
Priority = Literal["low", "normal", "high", "emergency"]

DEFAULT_STATE_DIR = Path(os.environ.get("STATE_DIRECTORY", "/var/lib/announcer")).expanduser()
DEFAULT_CACHE_DIR = Path(
    os.environ.get("CACHE_DIRECTORY") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "announcer")
).expanduser()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSConfig(Strict):
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    # No "insecure" switch on purpose: the broker's host name is always verified.


class MqttConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("announcer", pattern=r"^[^#+\s]+$")
    client_id: str = Field("announcer-main", min_length=1, max_length=64)
    username: str | None = None
    password: str | None = Field(None, repr=False)  # never in a repr, a log line or an error message
    password_file: Path | None = None  # read at start, stripped (e.g. a systemd credential or a 0600 file)
    tls: TLSConfig | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive: int = Field(30, ge=5, le=3600)
    session_expiry: int = Field(86400, ge=0, description="seconds the broker keeps our session")
    reconnect_min_delay: float = Field(1.0, gt=0)
    reconnect_max_delay: float = Field(60.0, gt=0)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) else v

    def read_password(self) -> str | None:
        """``password``, or the contents of ``password_file`` (stripped); OSError if it cannot be read."""
        if self.password_file is not None:
            return Path(self.password_file).read_text(encoding="utf-8").strip()
        return self.password


class DefaultsConfig(Strict):
    engine: str | None = None
    voice: str | None = None
    emotion: str = "neutral"
    intensity: float = Field(1.0, ge=0, le=2)
    speed: float = Field(1.0, ge=0.5, le=2.0)
    volume: float = Field(1.0, ge=0, le=1)
    priority: Priority = "normal"
    targets: tuple[Slug, ...] = ()
    chime: bool | str = True
    ttl: float = Field(600.0, gt=0)
    repeat_gap: float = Field(1.0, ge=0, le=60)

    @field_validator("emotion")
    @classmethod
    def _emotion(cls, v: str) -> str:
        emotion, warning = resolve_emotion(v)
        if warning:
            raise ValueError(f"unknown emotion {v!r} (allowed: {', '.join(EMOTIONS)})")
        return emotion

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class QuietHoursConfig(Strict):
    """Windows in which only announcements at or above ``min_priority`` play, at most at ``volume``."""

    start: dtime
    end: dtime
    days: Annotated[tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...], Field(min_length=1)] = (
        "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # the day a window starts (22:00-07:00 on fri: into sat)
    volume: float = Field(0.4, ge=0, le=1)
    min_priority: Priority = "high"
    speakers: tuple[Slug, ...] = ()  # empty: every speaker


class AudioConfig(Strict):
    target_lufs: float | None = Field(-16.0, ge=-40, le=-5)  # loudness every engine is normalised to; null: off
    priority_chimes: dict[Literal["default", "low", "normal", "high", "emergency"], str] = Field(
        default_factory=lambda: {"default": "ding-dong", "emergency": "alarm"})
    end_chime: str | None = None  # a chime after the speech (e.g. ding-dong); null: none


class SpoolConfig(Strict):
    path: Path = DEFAULT_STATE_DIR / "spool.sqlite3"
    keep_days: float = Field(7.0, gt=0, description="finished records are pruned after this")
    max_records: int = Field(100_000, ge=100)


class CacheConfig(Strict):
    enabled: bool = True
    directory: Path = DEFAULT_CACHE_DIR
    max_mb: float = Field(200.0, gt=0)


class ShutdownConfig(Strict):
    """SIGTERM: a ``high``/``emergency`` announcement that is playing may finish within ``drain_timeout``."""

    drain_timeout: float = Field(20.0, ge=0, le=600)  # keep it below the unit's TimeoutStopSec (45 s) minus ~10 s


class LimitsConfig(Strict):
    max_text_chars: int = Field(2000, ge=1, le=100_000)
    max_payload_bytes: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    max_queue: int = Field(100, ge=1)
    per_minute: int = Field(120, ge=1)


class HomeAssistantConfig(Strict):
    enabled: bool = True
    discovery_prefix: str = "homeassistant"
    node_id: str = Field("announcer", pattern=r"^[a-zA-Z0-9_-]+$")


class HermesConfig(Strict):
    enabled: bool = False
    sites: dict[str, Slug] = Field(default_factory=dict)


class WyomingConfig(Strict):
    """Wyoming TTS server (Home Assistant Assist): ``announcer.wyoming_server``."""

    enabled: bool = False
    uri: str = "tcp://127.0.0.1:10200"  # tcp://0.0.0.0:10200 to serve other hosts; unix:///path

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        from .engines.wyoming import parse_uri

        parse_uri(v)
        return v


# ---- http (HTTP API and web console: announcer/http/) ----
_LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HttpConfig(Strict):
    """The HTTP API and web console. Off a loopback address, bearer auth is required."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    tokens: tuple[Annotated[str, Field(min_length=16)], ...] = ()  # static bearer tokens
    jwt_secret: str | None = Field(None, min_length=32)  # accept HS256 JWTs signed with it (exp required)
    allow_ips: tuple[str, ...] = ()  # CIDR networks; empty: any address
    audio_max_age: float = Field(3600.0, gt=0)  # seconds a /tts WAV is kept
    audio_max_mb: float = Field(100.0, gt=0)  # total size of kept /tts WAVs
    audio_dir: Path | None = None  # default: <spool directory>/http-audio
    max_body_bytes: int | None = Field(None, ge=256, le=16 * 1024 * 1024)  # default: limits.max_payload_bytes

    @field_validator("allow_ips")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, net in enumerate(v):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"item {i}: {net!r} is not an IP address or CIDR network "
                                 "(e.g. 192.168.1.0/24, 10.0.0.5, fd00::/8)") from None
        return v

    @model_validator(mode="after")
    def _auth_off_loopback(self) -> "HttpConfig":
        if self.enabled and not is_loopback(self.bind) and not self.tokens and not self.jwt_secret:
            raise ValueError(CROSS_MARK + "http.tokens: required when http.bind is not a loopback address "
                                           "(or set http.jwt_secret)")
        return self
# ---- end http ----


class LoggingConfig(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


def _plugin_union(modules: dict[str, str]) -> Any:
    models = tuple(importlib.import_module(m).Config for m in modules.values())
    return Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]


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
    def _cross_references(self) -> "Config":
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


BUILTIN_CHIMES: tuple[str, ...] = ("ding-dong", "alarm", "none")
