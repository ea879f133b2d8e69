"""``GET /history``: the audit trail (``announcer.spool.history``) over HTTP, as JSON or CSV.

Filters: ``since`` and ``until`` (ISO date or time; without an offset, in the site's
``timezone``), ``target`` (a speaker or zone), ``source``, ``state``, ``limit`` (1 .. 10000,
default 200), ``order`` (``newest``, default, or ``oldest``) and ``format`` (``json``,
default, or ``csv``: one row per announcement and speaker, as ``announcer history --csv``).
When ``limit`` was reached there may be more: ``truncated`` in JSON, the header
``X-Announcer-Truncated: true`` with CSV (ask again with a narrower ``since``/``until``).
Read from the spool in FastAPI's thread pool (a plain ``def`` handler), never on the event loop.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query
from fastapi.responses import Response

from ..schedule.calendar import site_zone
from ..spool.history_query import HistoryQuery, HistoryUnavailable, parse_when, read_history, to_csv
from . import models as m

MAX_HTTP_LIMIT = 10_000


def add_history_routes(app: FastAPI, ctx: Any, error: type[Exception]) -> None:
    """Register ``GET /history`` on ``app``; ``error(status, field, message)`` is the API's error."""

    @app.get(
        "/history",
        response_model=m.HistoryList,
        summary="What was announced: sources, texts or templates, targets and each speaker's outcome",
        responses={
            200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
            **m.error_responses(400, 401, 403),
        },
    )
    def history(
        since: str | None = Query(None, description="ISO date or time (site timezone unless it has an offset)"),
        until: str | None = Query(None, description="ISO date or time, exclusive"),
        target: str | None = Query(None, max_length=64, description="a speaker or zone"),
        source: str | None = Query(None, max_length=32, description="mqtt, http, schedule, hermes, cli"),
        state: str | None = Query(None, max_length=32),
        limit: int = Query(200, ge=1, le=MAX_HTTP_LIMIT),
        order: Literal["newest", "oldest"] = "newest",
        format: Literal["json", "csv"] = "json",
    ) -> Any:
        tz = site_zone(ctx.cfg.timezone)
        try:
            query = HistoryQuery(
                since=parse_when(since, tz, "since") if since else None,
                until=parse_when(until, tz, "until") if until else None,
                target=target,
                source=source,
                state=state,
                limit=limit,
                newest_first=order == "newest",
            )
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise error(400, field, message) from None
        try:
            records = read_history(ctx.spool.read, query)
        except HistoryUnavailable:
            records = []
        truncated = len(records) >= limit
        if format == "csv":
            return Response(
                to_csv(records, tz),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": 'attachment; filename="announcer-history.csv"',
                    "X-Announcer-Truncated": "true" if truncated else "false",
                },
            )
        return {"announcements": records, "count": len(records), "truncated": truncated}
