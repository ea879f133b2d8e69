"""Schemas of the HTTP API, for the OpenAPI document.

Request bodies are *documented* with these models but *validated* by the one parser
every front door shares (``announcement.build``), so HTTP, MQTT and the CLI accept and
refuse exactly the same things with the same messages. The limits in the schemas
mirror that parser (``text`` length comes from the config at app creation).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import Config


class ErrorResponse(BaseModel):
    status: Literal["error"] = "error"
    field: str = Field(description="the field, header or part of the request at fault")
    error: str = Field(description="what is wrong and, where it helps, what is allowed")


class _Speech(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str = Field(min_length=1, description="what to say (markup and control characters are removed)")
    emotion: str | None = Field(None, description="neutral happy sad angry fearful surprised, or an alias "
                                                  "(中性 开心 悲伤 生气 害怕 惊讶 ...); unknown plays as neutral")
    intensity: float | None = Field(None, ge=0, le=2, description="how strongly the emotion is expressed")
    speed: float | None = Field(None, ge=0.5, le=2.0, description="speaking rate, 2.0 = twice as fast")
    volume: float | None = Field(None, ge=0, le=1)
    engine: str | None = Field(None, description="a configured engine (GET /api/info)")
    voice: str | None = Field(None, description="a voice of that engine")
    lang: str | None = None
    chime: bool | str | None = Field(None, description="true/false or a chime name")
    repeat: int | None = Field(None, ge=1, le=10)
    repeat_gap: float | None = Field(None, ge=0, le=60)


class TtsRequest(_Speech):
    """``chime`` defaults to false here: /tts returns the speech alone unless asked."""


class AnnounceRequest(_Speech):
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$", description="correlation id (played once)")
    priority: Literal["low", "normal", "high", "emergency"] | None = None
    targets: str | list[str] | None = Field(None, description="speaker or zone name(s); default: defaults.targets")
    ttl: float | None = Field(None, gt=0, description="seconds; not started by then: expired, never played")


class StopRequest(BaseModel):
    target: str | None = Field(None, description="a speaker or zone; all speakers when left out")
    priority_below: Literal["low", "normal", "high", "emergency"] | None = None


class TtsResponse(BaseModel):
    status: Literal["success"] = "success"
    id: str
    audio_url: str = Field(description="GET it (with the same Authorization) for the PCM-16 WAV")
    duration: float = Field(description="seconds")
    sample_rate: int
    warnings: list[str] = []


class AnnounceResponse(BaseModel):
    status: Literal["accepted"] = "accepted"
    id: str
    url: str = Field(description="GET it for the announcement's events")
    targets: list[str]
    speakers: list[str]
    warnings: list[str] = []


class StopResponse(BaseModel):
    status: Literal["success"] = "success"
    stopped: int


class AnnouncementRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    state: str = Field(description="queued, started, finished, interrupted, cancelled, expired, rejected, failed "
                                   "or mixed (speakers ended differently)")
    text: str | None = None
    targets: list[str] = []
    speakers: list[str] = []
    speaker_states: dict[str, str] = Field({}, description="per speaker, from the spool")
    priority: str | None = None
    emotion: str | None = None
    source: str | None = None
    received: float | None = None
    events: list[dict[str, Any]] = Field([], description="as published on P/events")


class AnnouncementList(BaseModel):
    announcements: list[AnnouncementRecord]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class EngineInfo(BaseModel):
    name: str
    type: str
    available: bool
    languages: list[str] = []
    voices: list[str] = []
    default_voice: str | None = None
    emotions: list[str] = []
    sample_rate: int | None = None
    error: str | None = None


class Named(BaseModel):
    name: str
    display: str


class ZoneInfo(Named):
    speakers: list[str]


class Info(BaseModel):
    version: str
    auth_required: bool
    engines: list[EngineInfo]
    default_engine: str
    emotions: list[Named]
    priorities: list[str]
    speakers: list[Named]
    zones: list[ZoneInfo]
    default_targets: list[str]
    defaults: dict[str, Any]
    max_text_chars: int


def body_schema(model: type[BaseModel], cfg: Config) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body, with the config's text limit."""
    schema = model.model_json_schema()
    schema["properties"]["text"]["maxLength"] = cfg.limits.max_text_chars
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {400: "bad input (the field is named)", 401: "missing or invalid bearer token",
                    403: "client address not allowed", 404: "not found", 409: "duplicate id",
                    413: "body or text too large", 415: "body must be application/json",
                    429: "rate limited or busy; try again shortly", 503: "the engine cannot run now"}
    return {c: {"model": ErrorResponse, "description": descriptions[c]} for c in codes}
