"""Issue 15 on the HTTP API: bad input is a 400 naming the field, never a 500 (finding 7), and
repeated refusals are logged once a minute with a count, not once per request (finding 10).

A real stack (``http_stack``: the embedded voice, file speakers, the spool, uvicorn on a free
loopback port). The fuzzing draws bodies the way the MQTT garbage test does
(``tests/reliability/garbage_cases.py``): deep nesting, huge numbers, lone surrogates, wrong
types, random JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from http_stack import TOKEN, Stack, start_stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from announcer.playback.synthesizer import Synthesizer, make_synthesizer

ENDPOINTS = ("/tts", "/announce", "/stop")
ALLOWED_STATUS = {200, 202, 400, 409, 413, 429, 503}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    from http_stack import stack_config

    s = make_synthesizer(stack_config(tmp_path_factory.mktemp("synth")))
    s.engine("zh").load()
    return s


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, synth: Synthesizer) -> Iterator[Stack]:
    s = start_stack(
        tmp_path_factory.mktemp("safety-http"),
        http=f"tokens: [{TOKEN}], max_body_bytes: 262144",
        limits="max_text_chars: 40, max_payload_bytes: 262144, per_minute: 100000",
        synth=synth,
    )
    yield s
    s.close()


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client(TOKEN) as c:
        yield c


def post_raw(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def assert_400(r: httpx.Response, field: str | None = None) -> dict:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    body = r.json()
    assert body["status"] == "error" and body["error"], body
    if field is not None:
        assert body["field"] == field, body
    return body


# ------------------------------------------------------------------------------ the findings
def deep(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


@pytest.mark.parametrize("path", ENDPOINTS)
def test_json_nested_30000_deep_is_a_400_naming_the_body(client: httpx.Client, path: str) -> None:
    assert_400(post_raw(client, path, b'{"text": ' + deep(30000) + b"}"), "body")
    assert_400(post_raw(client, path, b'{"target": ' + deep(30000) + b"}"), "body")
    assert_400(post_raw(client, path, deep(30000)), "body")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_integer_of_5000_digits_is_a_400(client: httpx.Client, path: str) -> None:
    field = "speed" if path != "/stop" else "priority_below"
    body = assert_400(post_raw(client, path, f'{{"text": "你好", "{field}": {"9" * 5000}}}'.encode()))
    assert body["field"] in ("body", field)


@pytest.mark.parametrize("path", ["/tts", "/announce"])
def test_huge_but_parseable_numbers_are_out_of_range(client: httpx.Client, path: str) -> None:
    assert_400(post_raw(client, path, f'{{"text": "你好", "speed": {"9" * 400}}}'.encode()), "speed")
    assert_400(post_raw(client, path, b'{"text": "\\u4f60", "volume": 1e999}'), "volume")
    assert_400(post_raw(client, path, b'{"text": "\\u4f60", "repeat": 100000000000000000000000}'), "repeat")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_lone_surrogate_is_a_400(client: httpx.Client, path: str) -> None:
    assert_400(post_raw(client, path, b'{"text": "\\ud800"}'))
    assert_400(post_raw(client, path, b'{"text": "ok", "\\udfff": 1}'))
    assert_400(post_raw(client, path, b'{"target": "\\ud800"}'))


def test_stop_still_takes_its_fields(client: httpx.Client) -> None:
    assert client.post("/stop", json={}).status_code == 200
    assert client.post("/stop", json={"target": "ward-3", "priority_below": "high"}).status_code == 200
    assert_400(client.post("/stop", json={"target": "nowhere"}), "target")
    assert_400(client.post("/stop", json={"priority_below": "urgent"}), "priority_below")
    assert_400(client.post("/stop", json=[]), "body")


def test_no_traceback_in_the_log(stack: Stack, client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for path in ENDPOINTS:
            post_raw(client, path, deep(30000))
            post_raw(client, path, b'{"text": "\\ud800"}')
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


# ------------------------------------------------------------------------------ fuzzing
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FIELD_NAMES = st.sampled_from(
    [
        "text",
        "speed",
        "volume",
        "repeat",
        "repeat_gap",
        "priority",
        "targets",
        "target",
        "priority_below",
        "chime",
        "id",
    ]
)


@st.composite
def body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["fields", "deep", "digits", "surrogate", "any", "bytes"]))
    if kind == "fields":
        obj = draw(st.dictionaries(FIELD_NAMES, JSON, max_size=4))
        return json.dumps(obj, ensure_ascii=draw(st.booleans()), allow_nan=True).encode("utf-8", "surrogatepass")
    if kind == "deep":
        depth = draw(st.sampled_from([999, 1500, 5000, 30000]))
        inner = draw(st.sampled_from(["1", '"x"', "{}"]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return ('{"' + draw(FIELD_NAMES) + '": ' + opener * depth + inner + closer * depth + "}").encode()
    if kind == "digits":
        digits = draw(st.sampled_from([310, 4301, 5000, 20000]))
        return f'{{"text": "你好", "{draw(FIELD_NAMES)}": {"7" * digits}}}'.encode()
    if kind == "surrogate":
        code = draw(st.integers(min_value=0xD800, max_value=0xDFFF))
        where = draw(st.sampled_from(["key", "value"]))
        esc = f"\\u{code:04x}"
        return (f'{{"{esc}": 1}}' if where == "key" else f'{{"{draw(FIELD_NAMES)}": "a{esc}"}}').encode()
    if kind == "any":
        return json.dumps(draw(JSON), allow_nan=True).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=40))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_fuzzed_bodies_never_get_a_500(client: httpx.Client, path: str) -> None:
    seen: dict[int, int] = {}

    @settings(max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(body())
    def one(data: bytes) -> None:
        r = post_raw(client, path, data)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code in ALLOWED_STATUS, (data[:200], r.status_code, r.text[:300])
        reply = r.json()
        if r.status_code >= 400:
            assert reply["status"] == "error" and reply["field"] and reply["error"], reply

    one()
    assert seen.get(400, 0) > 10, seen  # mostly garbage, and it was refused by name


# ------------------------------------------------------------------------------ log flooding
def test_repeated_auth_failures_are_one_line_a_minute(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="announcer.http"), stack.client("wrong-token-0123456789") as bad:
        for _ in range(200):
            assert bad.get("/api/info").status_code == 401
    lines = [r.getMessage() for r in caplog.records if "401" in r.getMessage()]
    assert 1 <= len(lines) <= 2, lines


def test_the_rate_limited_log_counts_what_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    from announcer.core.ratelog import RateLimitedLog

    now = [0.0]
    log = RateLimitedLog(logging.getLogger("announcer.test.ratelog"), interval=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="announcer.test.ratelog"):
        for i in range(1000):
            now[0] = i * 0.1  # 1000 in 100 s
            log.warning("bad", "bad thing from %s", f"10.0.0.{i % 250}")
        log.warning("other", "another kind")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "bad thing from 10.0.0.0"
    assert lines[1].endswith("(and 599 more like it in the last 60 s)"), lines
    assert lines[2] == "another kind" and len(lines) == 3
