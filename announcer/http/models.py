"""Schemas of the HTTP API, for the OpenAPI document.

Request bodies are *documented* with models made from the announcement schema
(``announcer.core.schema.AnnouncementFields``) and *validated* by the one parser every
front door shares (``announcer.intake.parse``), so HTTP, MQTT and the CLI accept and
refuse exactly the same things with the same messages (``text``'s length limit comes
from the config at app creation).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..config import Config
from ..core.schema import AnnouncementFields, Priority


class ErrorResponse(BaseModel):
    status: Literal["error"] = "error"
    field: str = Field(description="the field, header or part of the request at fault")
    error: str = Field(description="what is wrong and, where it helps, what is allowed")


def _request_model(name: str, doc: str, exclude: tuple[str, ...] = ()) -> type[BaseModel]:
    """A request body documented from the announcement schema (every field but ``exclude``)."""
    fields: dict[str, Any] = {
        n: (f.annotation, f) for n, f in AnnouncementFields.model_fields.items() if n not in exclude
    }
    return create_model(name, __doc__=doc, __config__=ConfigDict(extra="allow"), **fields)


TtsRequest = _request_model(
    "TtsRequest",
    "The fields of an announcement that shape its sound. ``chime`` defaults "
    "to false here: /tts returns the speech alone unless asked.",
    exclude=("id", "priority", "targets", "ttl", "sent_at"),
)
AnnounceRequest = _request_model("AnnounceRequest", "An announcement: the fields of an MQTT announcement payload.")


class StopRequest(BaseModel):
    target: str | None = Field(None, description="a speaker or zone; all speakers when left out")
    priority_below: Priority | None = None


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
    state: str = Field(
        description="queued, started, finished, interrupted, cancelled, expired, rejected, failed "
        "or mixed (speakers ended differently)"
    )
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


class SpeakerResult(BaseModel):
    state: str
    ts: str | None = None
    error: str | None = None
    reason: str | None = None


class HistoryRecord(BaseModel):
    id: str
    received: str = Field(description="UTC, like an event's ts")
    source: str = Field(description="mqtt, http, schedule, hermes, cli")
    via: dict[str, str] = Field({}, description="topic and client (MQTT), user (HTTP), schedule")
    text: str | None = None
    template: str | None = None
    vars: dict[str, str] | None = None
    clips: list[str] = []
    targets: list[str] = []
    speakers: list[str] = []
    priority: str | None = None
    state: str = Field(description="queued, started, finished, cancelled, expired, failed, rejected or mixed")
    error: str | None = Field(None, description="why it was rejected")
    speaker_results: dict[str, SpeakerResult] = Field({}, description="each speaker's latest state and when")
    events: list[dict[str, Any]] = Field([], description="as published on P/events")


class HistoryList(BaseModel):
    announcements: list[HistoryRecord]
    count: int
    truncated: bool = Field(description="limit reached: there may be more")


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
    emotion_controls: list[str] = Field([], description="what the engine moves to render an emotion")
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
    languages: dict[str, str] = Field({}, description="language -> engine, for translations")


def body_schema(model: type[BaseModel], cfg: Config) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body, with the config's text limit."""
    schema = model.model_json_schema()
    schema["properties"]["text"]["maxLength"] = cfg.limits.max_text_chars
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "bad input (the field is named)",
        401: "missing or invalid bearer token",
        403: "client address not allowed",
        404: "not found",
        409: "duplicate id",
        413: "body or text too large",
        415: "body must be application/json",
        429: "rate limited or busy; try again shortly",
        503: "the engine cannot run now",
    }
    return {c: {"model": ErrorResponse, "description": descriptions[c]} for c in codes}
