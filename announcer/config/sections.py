"""The config file's sections (everything but the root ``Config`` and the plug-in unions).

Every model is frozen and rejects unknown keys (``Strict``). Engines and speakers declare
their own models in their modules; ``announcer.config.models`` collects them.
"""

from __future__ import annotations

import ipaddress
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, field_validator, model_validator

from ..core.emotions import EMOTIONS, resolve_emotion
from ..core.paths import DEFAULT_CACHE_DIR, DEFAULT_STATE_DIR
from ..core.schema import Intensity, Priority, RepeatGap, Slug, Speed, Ttl, Volume
from ..engines.wyoming_protocol import parse_uri
from .errors import CROSS_MARK


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
    # MQTT 5 response topics the daemon replies on (the terminal event); null: <topic_prefix>/reply/
    reply_prefixes: tuple[Annotated[str, Field(min_length=1, pattern=r"^[^#+]+$")], ...] | None = None

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
    """``defaults.*``: typed with the announcement schema's own types (``announcer.core.schema``)."""

    engine: str | None = None
    voice: str | None = None
    emotion: str = "neutral"
    intensity: Intensity = 1.0
    speed: Speed = 1.0
    volume: Volume = 1.0
    priority: Priority = "normal"
    targets: tuple[Slug, ...] = ()
    chime: bool | str = True
    ttl: Ttl = 600.0
    repeat_gap: RepeatGap = 1.0

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
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    )  # the day a window starts (22:00-07:00 on fri: into sat)
    volume: float = Field(0.4, ge=0, le=1)
    min_priority: Priority = "high"
    speakers: tuple[Slug, ...] = ()  # empty: every speaker


def _default_priority_chimes() -> dict[Literal["default", "low", "normal", "high", "emergency"], str]:
    return {"default": "ding-dong", "emergency": "alarm"}


class AudioConfig(Strict):
    target_lufs: float | None = Field(-16.0, ge=-40, le=-5)  # loudness every engine is normalised to; null: off
    priority_chimes: dict[Literal["default", "low", "normal", "high", "emergency"], str] = Field(
        default_factory=_default_priority_chimes
    )
    end_chime: str | None = None  # a chime after the speech (e.g. ding-dong); null: none


class SpoolConfig(Strict):
    path: Path = DEFAULT_STATE_DIR / "spool.sqlite3"
    keep_days: float = Field(7.0, gt=0, description="finished records are pruned after this")
    max_records: int = Field(100_000, ge=100)


class HistoryConfig(Strict):
    """The audit trail in the spool database: every announcement, where it came from, what each speaker did."""

    days: float = Field(90.0, gt=0, le=3650, description="records older than this are pruned")
    max_records: int = Field(500_000, ge=1000, le=100_000_000)  # beyond this the oldest go first (bounds the disk)


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
    # the audio one announcement may make (speech x repeat + gaps), estimated from the text before
    # synthesis (announcer.intake.parse.estimated_seconds); more is rejected, reason oversize
    max_audio_seconds: float = Field(600.0, gt=0, le=86400)


class HomeAssistantConfig(Strict):
    enabled: bool = True  # MQTT discovery (entities for announcer in Home Assistant)
    discovery_prefix: str = "homeassistant"
    node_id: str = Field("announcer", pattern=r"^[a-zA-Z0-9_-]+$")
    # Home Assistant itself, for `homeassistant` speakers (its media players): the base URL and a
    # long-lived access token (write `token: ${HA_TOKEN}`: never in the file itself)
    url: str | None = Field(None, pattern=r"^(https?|wss?)://[^\s/]+(/\S*)?$")  # http://homeassistant.local:8123
    token: str | None = Field(None, min_length=1, repr=False)


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


class NamedToken(Strict):
    """A bearer token with a name: the history records requests made with it by that name."""

    name: str = Field(min_length=1, max_length=64)
    token: str = Field(min_length=16, repr=False)


def _token(value: Any) -> str | NamedToken:
    """A token as a string (at least 16 characters) or ``{name, token}``; one clear error either way."""
    if isinstance(value, str):
        if len(value) < 16:
            raise ValueError("String should have at least 16 characters")
        return value
    if isinstance(value, NamedToken):
        return value
    if isinstance(value, dict):
        try:
            return NamedToken.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{where}: {err['msg']}" if where else err["msg"]) from None
    raise ValueError("a token is a string (at least 16 characters) or {name: ..., token: ...}")


Token = Annotated[str | NamedToken, PlainValidator(_token)]


class HttpConfig(Strict):
    """The HTTP API and web console. Off a loopback address, bearer auth is required."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # static bearer tokens: a string, or {name, token} (the history names who announced)
    tokens: tuple[Token, ...] = ()
    jwt_secret: str | None = Field(None, min_length=32)  # accept HS256 JWTs signed with it (exp required)
    allow_ips: tuple[str, ...] = ()  # CIDR networks; empty: any address
    audio_max_age: float = Field(3600.0, gt=0)  # seconds a /tts WAV is kept
    audio_max_mb: float = Field(100.0, gt=0)  # total size of kept /tts WAVs
    audio_dir: Path | None = None  # default: <spool directory>/http-audio
    max_body_bytes: int | None = Field(None, ge=256, le=16 * 1024 * 1024)  # default: limits.max_payload_bytes
    max_connections_per_client: int = Field(8, ge=1, le=1024)  # open at once per client address; more: closed
    header_timeout: float = Field(10.0, ge=0.5, le=300)  # seconds to send a complete request header, else closed
    # how media players (homeassistant speakers) reach this server: http://192.168.1.5:8080;
    # default: http://<bind>:<port> when bind is a specific address
    public_url: str | None = Field(None, pattern=r"^https?://[^\s/]+/?$")

    @property
    def base_url(self) -> str | None:
        """``public_url``, else ``http://<bind>:<port>`` when ``bind`` names one address (None for 0.0.0.0/::)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.bind in ("0.0.0.0", "::", ""):
            return None
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"http://{host}:{self.port}"

    def token_pairs(self) -> list[tuple[str, str]]:
        """``(name, token)`` of every token; an unnamed one is ``token #N`` (its place in the list, from 1)."""
        return [
            (t.name, t.token) if isinstance(t, NamedToken) else (f"token #{i}", t) for i, t in enumerate(self.tokens, 1)
        ]

    @field_validator("allow_ips")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, net in enumerate(v):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(
                    f"item {i}: {net!r} is not an IP address or CIDR network (e.g. 192.168.1.0/24, 10.0.0.5, fd00::/8)"
                ) from None
        return v

    @model_validator(mode="after")
    def _auth_off_loopback(self) -> HttpConfig:
        if self.enabled and not is_loopback(self.bind) and not self.tokens and not self.jwt_secret:
            raise ValueError(
                CROSS_MARK + "http.tokens: required when http.bind is not a loopback address (or set http.jwt_secret)"
            )
        return self


# ---- end http ----


class SiteConfig(Strict):
    """This daemon's building in a fleet: it answers the fleet topics ``<fleet.prefix>/say[/<name>[/<target>]]``
    and ``<fleet.prefix>/stop[/<name>]``, and its events and status carry ``site``."""

    name: Slug  # the site's id in topics and events (b3)
    display: str | None = None  # a display name in any language (三号楼)


class FleetConfig(Strict):
    """The topics a fleet shares (docs/fleet.md); read only when ``site`` is set (and by ``announcer fleet``)."""

    prefix: str = Field("announcer-fleet", pattern=r"^[^#+\s]+$")


class PairConfig(Strict):
    """An active/standby pair: two daemons with the same config but ``mqtt.client_id``, one of them playing.

    Each member's ``mqtt.client_id`` is its name in the pair's topics (``P/pair/<client_id>/...``);
    ``peer`` is the other's. Leadership is a retained lease guarded by each member's last will
    (``announcer.integrations.pair``).
    """

    peer: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")  # the other member's mqtt.client_id
    role: Literal["auto", "primary", "standby"] = "auto"  # who leads when both start and nobody leads yet
    peer_timeout: float = Field(10.0, gt=0, le=600)  # seconds to wait for the peer's word before leading alone


class LoggingConfig(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v
