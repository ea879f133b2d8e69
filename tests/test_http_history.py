"""``GET /history`` and who announced over HTTP: named tokens, unnamed ones, JWT subjects; templates and
clips through ``POST /announce``; JSON and CSV with filters (the real stack of tests/http_stack.py)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_stack import JWT_SECRET, TOKEN, Stack, start_stack
from routine_stack import BELL

from announcer.http.security import sign_jwt_hs256

pytestmark = pytest.mark.timeout(120)

NAMED = "ops-panel-token-0123456789"
ROUTINE = f"""
timezone: Asia/Shanghai
clips: {{bell: {BELL}}}
templates:
  code_blue: {{text: "{{ward}}号病房，蓝色警报", vars: {{ward: str}}, before: bell, priority: emergency}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(
        tmp_path_factory.mktemp("history"),
        http=f"tokens: [{{name: ops-panel, token: {NAMED}}}, {TOKEN}], jwt_secret: {JWT_SECRET}",
        extra=ROUTINE,
    )
    yield s
    s.close()


def announce(stack: Stack, token: str, body: dict) -> str:
    with stack.client(token) as c:
        r = c.post("/announce", json=body)
        assert r.status_code == 202, r.text
        ann_id = r.json()["id"]
        stack.wait_state(c, ann_id)
    return ann_id


def records(client: httpx.Client, **params: str) -> list[dict]:
    r = client.get("/history", params=params)
    assert r.status_code == 200, r.text
    return r.json()["announcements"]


def test_who_announced_is_recorded_from_the_credential(stack: Stack) -> None:
    jwt = sign_jwt_hs256({"sub": "nurse-li", "exp": time.time() + 600}, JWT_SECRET)
    by_named = announce(stack, NAMED, {"template": "code_blue", "vars": {"ward": "3"}, "targets": "archive"})
    by_plain = announce(stack, TOKEN, {"clip": "bell"})
    by_jwt = announce(stack, jwt, {"text": "请到护士站", "targets": "ward-3"})
    stack.history.flush()
    with stack.client(TOKEN) as c:
        found = {r["id"]: r for r in records(c, source="http")}
        r = c.post("/announce", json={"template": "code_blue"})
        assert r.status_code == 400 and r.json()["field"] == "vars.ward"
    assert found[by_named]["via"] == {"user": "ops-panel"}
    assert (found[by_named]["template"], found[by_named]["vars"], found[by_named]["clips"]) == (
        "code_blue",
        {"ward": "3"},
        ["bell"],
    )
    assert found[by_plain]["via"] == {"user": "token #2"} and found[by_plain]["clips"] == ["bell"]
    assert found[by_jwt]["via"] == {"user": "jwt:nurse-li"}
    assert set(found[by_jwt]["speaker_results"]) == {"lobby", "archive"}
    assert all(found[i]["state"] == "finished" for i in (by_named, by_plain, by_jwt))


def test_filters_csv_and_errors(stack: Stack) -> None:
    first = announce(stack, TOKEN, {"clip": "bell", "targets": "archive"})
    second = announce(stack, TOKEN, {"text": "二号", "targets": "lobby"})
    stack.history.flush()
    with stack.client(TOKEN) as c:
        body = c.get("/history", params={"limit": 2}).json()
        assert [r["id"] for r in body["announcements"]] == [second, first]
        assert body["count"] == 2 and body["truncated"] is True
        assert [r["id"] for r in records(c, target="archive", limit="1")] == [first]
        assert second not in [r["id"] for r in records(c, target="archive")]
        assert records(c, since="2099-01-01") == []
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))  # Asia/Shanghai
        assert second in [r["id"] for r in records(c, since=today)]
        r = c.get("/history", params={"format": "csv", "order": "oldest", "target": "lobby"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        mine = [row for row in rows if row["id"] == second]
        assert [(x["speaker"], x["speaker_state"], x["text"]) for x in mine] == [("lobby", "finished", "二号")]
        assert mine[0]["received_local"].endswith("CST")
        bad = c.get("/history", params={"since": "last tuesday"})
        assert bad.status_code == 400 and bad.json()["field"] == "since"
        assert c.get("/history", params={"format": "xml"}).status_code == 400
        assert c.get("/history", params={"limit": 0}).status_code == 400
    with httpx.Client(base_url=stack.url) as anonymous:
        assert anonymous.get("/history").status_code == 401
    doc = httpx.get(stack.url + "/openapi.json").json()
    body_schema = doc["paths"]["/announce"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "/history" in doc["paths"] and {"template", "vars", "clip"} <= set(body_schema["properties"])


def test_a_spool_without_history_answers_empty(tmp_path: Path) -> None:
    s = start_stack(tmp_path / "fresh", extra=ROUTINE)
    try:
        with s.client() as c:
            assert c.get("/history").json() == {"announcements": [], "count": 0, "truncated": False}
    finally:
        s.close()
