"""The HTTP API and web console (FastAPI), built on the daemon's own parts.

Nothing here synthesizes or touches the spool on the event loop: ``/tts`` renders in a
small dedicated thread pool (busy → 429), the other endpoints that read the spool or
accept an announcement are plain ``def`` handlers, which FastAPI runs in its thread pool.
``POST /announce`` and ``POST /stop`` go through the same intake as an MQTT message
(validate, spool, schedule, events); its ``Rejected`` result names the field for the
HTTP error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..audio.wav import WAV_HEADER_BYTES, WavTooLarge, WavWriter
from ..core.emotions import EMOTIONS
from ..core.errors import EngineUnavailable, InputError
from ..core.schema import ID_RE, PRIORITIES
from ..intake.intake import Origin, Rejected
from ..intake.parse import build, estimated_seconds
from ..intake.wire import json_object
from ..playback.offline import render_to_wav
from ..playback.synthesizer import SynthStats
from . import models as m
from .history import add_history_routes
from .security import USER_KEY, Guard, SecurityHeaders

_LOGGER = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
EMOTION_LABELS = {
    "neutral": "中性",
    "happy": "开心",
    "sad": "悲伤",
    "angry": "生气",
    "fearful": "害怕",
    "surprised": "惊讶",
}
REASON_STATUS = {"oversize": 413, "rate_limited": 429, "duplicate": 409}
MAX_PENDING_TTS = 8


class ApiError(Exception):
    def __init__(self, status: int, field: str, error: str) -> None:
        super().__init__(f"{field}: {error}")
        self.status = status
        self.field = field
        self.error = error

    @classmethod
    def from_input(cls, exc: InputError) -> ApiError:
        return cls(REASON_STATUS.get(exc.reason, 400), exc.field, exc.message)


def error_json(status: int, field: str, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": "error", "field": field, "error": error}, status_code=status, headers=headers)


def create_app(ctx: Any) -> FastAPI:
    """The ASGI app for ``ctx`` (an ``HttpContext``), wrapped in the access guard."""
    cfg = ctx.cfg  # for the OpenAPI document only: handlers read ctx.cfg, which follows a reload
    app = FastAPI(
        title="announcer",
        version=ctx.version,
        debug=False,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        description="Voice announcements over HTTP: synthesize (/tts) or announce on speakers "
        "(/announce). Bearer auth unless bound to localhost.",
    )
    pending = {"tts": 0}
    pending_lock = threading.Lock()

    # ---- errors ------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_json(exc.status, exc.field, exc.error)

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, exc: InputError) -> JSONResponse:
        e = ApiError.from_input(exc)
        return error_json(e.status, e.field, e.error)

    @app.exception_handler(EngineUnavailable)
    async def _engine_unavailable(_request: Request, exc: EngineUnavailable) -> JSONResponse:
        return error_json(503, "engine", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        loc = [str(p) for p in err.get("loc", ()) if p not in ("path", "query", "body")]
        return error_json(400, ".".join(loc) or "request", str(err.get("msg", "invalid")))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = {404: "path", 405: "method"}.get(exc.status_code, "request")
        return error_json(exc.status_code, field, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _LOGGER.exception("http: %s %s failed", request.method, request.url.path)
        return error_json(500, "server", "internal error (see the daemon's log)")

    async def json_body(request: Request, what: str = 'a JSON object with at least "text"') -> dict[str, Any]:
        """The body as a JSON object; 400 naming ``body`` (or the field) for anything Python's JSON
        cannot hold safely: nesting past the recursion limit, huge integers, lone surrogates."""
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "body", "not valid UTF-8") from None
        try:
            return json_object(text, f"send {what}", f"must be {what}")
        except InputError as exc:
            raise ApiError(400, "body" if exc.field == "payload" else exc.field, exc.message) from None

    # ---- console and health --------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", response_model=m.Health, summary="Liveness (no auth)")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get(
        "/api/info",
        response_model=m.Info,
        summary="Engines, voices, emotions, speakers and zones",
        responses=m.error_responses(401, 403),
    )
    def info() -> dict[str, Any]:
        return _info(ctx)

    # ---- synthesis ---------------------------------------------------------------------
    @app.post(
        "/tts",
        response_model=m.TtsResponse,
        summary="Synthesize to a WAV (not played)",
        openapi_extra=m.body_schema(m.TtsRequest, cfg),
        responses=m.error_responses(400, 401, 403, 413, 415, 429, 503),
    )
    async def tts(request: Request) -> dict[str, Any]:
        raw = await json_body(request)
        raw.setdefault("chime", False)
        runtime = ctx.live.current  # one runtime for the whole request, even across a reload
        live = runtime.config
        ann = build(raw, live, source="http", ignore_unknown=False)  # the voice is checked by the worker:
        # a remote engine may need the network to list its voices, never on the event loop
        ctx.tts_limiter.per_minute = live.limits.per_minute
        if not ctx.tts_limiter.allow():
            raise ApiError(
                429, "limits.per_minute", f"more than {live.limits.per_minute} syntheses in a minute; try again shortly"
            )
        with pending_lock:
            if pending["tts"] >= MAX_PENDING_TTS:
                raise ApiError(429, "tts", "busy: too many syntheses waiting; try again shortly")
            pending["tts"] += 1
        try:
            stats = SynthStats()
            loop = asyncio.get_running_loop()
            audio_id, written = await loop.run_in_executor(
                ctx.tts_pool, lambda: synthesize_to_store(ctx, runtime, ann, stats)
            )
        finally:
            with pending_lock:
                pending["tts"] -= 1
        ctx.metrics.observe_tts(stats.synth_seconds, stats.audio_seconds)
        return {
            "status": "success",
            "id": audio_id,
            "audio_url": f"/audio/{audio_id}.wav",
            "duration": round(written.seconds, 3),
            "sample_rate": written.rate,
            "warnings": list(ann.warnings),
        }

    @app.get(
        "/audio/{audio_id}.wav",
        response_class=FileResponse,
        summary="A WAV made by /tts",
        responses={
            200: {"content": {"audio/wav": {}}, "description": "PCM-16 WAV"},
            **m.error_responses(400, 401, 403, 404),
        },
    )
    def audio(audio_id: str = PathParam(pattern=r"^[0-9a-f]{32}$")) -> FileResponse:
        path = ctx.audio.path(audio_id)
        if path is None:
            raise ApiError(
                404, "id", f"no audio {audio_id!r} (generated audio is kept {ctx.cfg.http.audio_max_age:g} s)"
            )
        return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "private, no-store"})

    @app.get(
        "/handout/{name}",
        response_class=Response,
        summary="Audio a media player was told to play (homeassistant speakers; the URL is the credential)",
        responses={
            200: {"content": {"audio/wav": {}}, "description": "the announcement"},
            **m.error_responses(400, 404),
        },
    )
    def handout(name: str = PathParam(pattern=r"^[A-Za-z0-9_-]{43}(\.[a-z0-9]{1,4})?$")) -> Response:
        item = ctx.handouts.get(name)
        if item is None:
            raise ApiError(404, "path", "no such audio (it is handed out for one announcement only)")
        return Response(item[0], media_type=item[1], headers={"Cache-Control": "no-store"})

    # ---- speakers ----------------------------------------------------------------------
    @app.get(
        "/speakers/{name}/sdp",
        response_class=Response,
        summary="The SDP of an rtp speaker's stream (for ffmpeg, VLC, a SIP gateway)",
        responses={
            200: {"content": {"application/sdp": {}}, "description": "SDP"},
            **m.error_responses(400, 401, 403, 404),
        },
    )
    def speaker_sdp(name: str) -> Response:
        sink = ctx.live.current.sinks.get(name)
        sdp = sink.session_description() if sink is not None else None
        if sdp is None:
            have = [n for n, s in ctx.live.current.sinks.items() if s.session_description() is not None]
            raise ApiError(404, "name", f"{name!r} is not an rtp speaker (rtp speakers: {', '.join(have) or 'none'})")
        return Response(sdp, media_type="application/sdp")

    # ---- announcements -------------------------------------------------------------------
    @app.post(
        "/announce",
        status_code=202,
        response_model=m.AnnounceResponse,
        summary="Queue an announcement on speakers (the fields of an MQTT announcement)",
        openapi_extra=m.body_schema(m.AnnounceRequest, cfg),
        responses=m.error_responses(400, 401, 403, 409, 413, 415, 429),
    )
    async def announce(request: Request) -> dict[str, Any]:
        raw = await json_body(request)
        user = request.scope.get(USER_KEY)
        origin = Origin(source="http", via=(("user", user),) if user else ())
        result = await asyncio.get_running_loop().run_in_executor(None, lambda: ctx.intake.accept(raw, origin))
        if isinstance(result, Rejected):
            raise ApiError.from_input(result.error)
        ann = result.ann
        return {
            "status": "accepted",
            "id": ann.id,
            "url": f"/announcements/{ann.id}",
            "targets": list(ann.targets),
            "speakers": list(ann.speakers),
            "warnings": list(ann.warnings),
        }

    @app.get(
        "/announcements",
        response_model=m.AnnouncementList,
        summary="Recent announcements, newest first",
        responses=m.error_responses(400, 401, 403),
    )
    def announcements(limit: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
        return {"announcements": ctx.recent.recent(limit)}

    @app.get(
        "/announcements/{ann_id}",
        response_model=m.AnnouncementRecord,
        summary="One announcement: its state and events",
        responses=m.error_responses(400, 401, 403, 404),
    )
    def announcement(ann_id: str = PathParam(pattern=ID_RE.pattern)) -> dict[str, Any]:
        record = ctx.recent.get(ann_id)
        spooled = ctx.spool.state(ann_id)
        if record is None and spooled is None:
            raise ApiError(404, "id", f"no announcement {ann_id!r} (recent ones and the spool were searched)")
        record = record or {"id": ann_id, "state": "queued", "events": []}
        if spooled is not None:
            ann_state, speakers = spooled
            record["speaker_states"] = speakers
            if ann_state is not None:
                record["state"] = ann_state
            record.setdefault("speakers", list(speakers))
        return record

    @app.post(
        "/stop",
        response_model=m.StopResponse,
        summary="Stop and cancel (all speakers or one target)",
        openapi_extra={"requestBody": {"content": {"application/json": {"schema": m.StopRequest.model_json_schema()}}}},
        responses=m.error_responses(400, 401, 403, 413, 415),
    )
    async def stop(request: Request) -> dict[str, Any]:
        body = stop_request(await json_body(request, 'a JSON object (fields "target", "priority_below")'))
        fields = {"priority_below": body.priority_below} if body.priority_below is not None else {}
        result = await asyncio.get_running_loop().run_in_executor(
            None, lambda: ctx.intake.stop(fields, body.target, Origin(source="http"), target_field="target")
        )
        if isinstance(result, Rejected):
            raise ApiError.from_input(result.error)
        return {"status": "success", "stopped": result}

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics (text format 0.0.4)",
        responses={200: {"content": {"text/plain": {}}, "description": "metrics"}, **m.error_responses(401, 403)},
    )
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    add_history_routes(app, ctx, ApiError)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def synthesize_to_store(ctx: Any, runtime: Any, ann: Any, stats: SynthStats) -> tuple[str, WavWriter]:
    """``/tts``'s work (in the worker pool): ``ann`` written into the audio store as it renders.

    ``http.audio_max_mb`` holds for this file too: what the text will make is estimated first
    and refused (413, nothing synthesized) when it cannot fit; older files go to make room;
    and the file is written with the cap, in case the estimate was short.
    """
    rate = runtime.synth.engine(ann.engine).sample_rate
    seconds = estimated_seconds(ann.text, ann.speed, ann.repeat, ann.repeat_gap)
    expected = WAV_HEADER_BYTES + int(seconds * rate) * 2
    limit_mb = ctx.audio.max_bytes / 1048576
    try:
        ctx.audio.reserve(expected)
    except WavTooLarge:
        raise InputError(
            "text",
            f"the WAV would be about {expected / 1048576:.0f} MiB, over http.audio_max_mb ({limit_mb:g})",
            "oversize",
        ) from None
    try:
        audio_id, path = ctx.audio.new_id()
        written = render_to_wav(runtime.config, runtime.synth, ann, path, runtime.chimes, stats, ctx.audio.max_bytes)
    except WavTooLarge:
        raise InputError(
            "text", f"the WAV grew past http.audio_max_mb ({limit_mb:g}); nothing kept", "oversize"
        ) from None
    finally:
        ctx.audio.release(expected)
    ctx.audio.sweep()
    return audio_id, written


def stop_request(obj: dict[str, Any]) -> m.StopRequest:
    try:
        return m.StopRequest.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        raise ApiError(400, field, str(err.get("msg", "invalid"))) from None


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document without its 422 responses: validation errors are 400 here."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in doc.get("paths", {}).values():
            for op in path.values():
                op.get("responses", {}).pop("422", None)
        schemas = doc.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = doc
    return app.openapi_schema


def wrap(app: FastAPI, ctx: Any) -> Any:
    """The app behind the access guard and the security headers: what uvicorn serves."""
    max_body = ctx.cfg.http.max_body_bytes or ctx.cfg.limits.max_payload_bytes
    return SecurityHeaders(Guard(app, ctx.policy, max_body))


def _info(ctx: Any) -> dict[str, Any]:
    cfg = ctx.cfg
    engines = []
    for name, eng in ctx.synth.engines.items():
        error = None
        try:
            if eng.supervised:  # served by a process or server of its own: we only look
                if eng.state != "ready":
                    error = f"engine {name} is {eng.state}"
            else:
                eng.load()  # once loaded, cheap; a remote engine that is down says why
            d = eng.describe()
            engines.append(
                {**d, "name": name, "available": error is None, "error": error, "default_voice": eng.default_voice}
            )
        except Exception as exc:  # noqa: BLE001  # an engine that cannot run is listed, not fatal
            engines.append(
                {"name": name, "type": getattr(eng, "type_name", "?"), "available": False, "error": str(exc)}
            )
    defaults = cfg.defaults
    return {
        "version": ctx.version,
        "auth_required": ctx.policy.auth_required,
        "engines": engines,
        "default_engine": cfg.default_engine,
        "emotions": [{"name": e, "display": EMOTION_LABELS.get(e, e)} for e in EMOTIONS],
        "priorities": list(PRIORITIES),
        "speakers": [{"name": n, "display": getattr(s, "name", None) or n} for n, s in cfg.speakers.items()],
        "zones": [
            {"name": z, "display": cfg.zone_names.get(z, z), "speakers": list(members)}
            for z, members in cfg.zones.items()
        ],
        "default_targets": list(cfg.default_targets),
        "defaults": {
            "emotion": defaults.emotion,
            "intensity": defaults.intensity,
            "speed": defaults.speed,
            "priority": defaults.priority,
            "voice": defaults.voice,
        },
        "max_text_chars": cfg.limits.max_text_chars,
        "languages": dict(cfg.languages),
    }
