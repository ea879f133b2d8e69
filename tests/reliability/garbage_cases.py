"""The cases of the garbage-in test (``test_garbage.py``): hypothesis strategies, each case valid or
invalid by construction.

A ``Case`` knows its topic, its payload (``ID`` replaced by the case's id when published),
what must happen (``play``, ``reject``: one ``rejected`` event naming ``field``, or
``refuse``: a ``P/set/*`` value refused without an event) and where a valid one plays.
``generate(count, seed)`` draws a reproducible list of them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corpus import corpus_rows
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

MAX_TEXT = 100  # limits.max_text_chars: small, so a valid text at the limit is quick to speak
MAX_PAYLOAD = 65536
ID = "@ID@"  # replaced by the case's own id when it is published
SITES = {"default": "a", "kitchen": "files"}
SPEAKERS_OF = {"a": ("a",), "b": ("b",), "files": ("a", "b")}  # the valid targets used here
KNOWN = ("a", "b", "m", "files", "all")
FIELDS = (
    "text",
    "id",
    "emotion",
    "intensity",
    "speed",
    "volume",
    "priority",
    "targets",
    "chime",
    "repeat",
    "repeat_gap",
    "ttl",
    "engine",
    "voice",
    "lang",
)
TEXTS = tuple(sorted((r[2] for r in corpus_rows()), key=len)[:4])  # short, so the cache serves them fast


@dataclass
class Case:
    topic: str  # below the prefix ("say", "say/a", "stop/x", "set/volume") or "hermes"
    template: bytes  # the payload; ID is replaced by the case's id
    expect: str  # "play", "reject" (one rejected event) or "refuse" (P/set/*: no event)
    why: str  # the generator that made it (for messages)
    field: str = ""  # the field a rejection's error must name
    reason: str = "invalid"
    carries_id: bool = False  # the first event carries our id
    speakers: tuple[str, ...] = ()  # where a valid one plays

    def payload(self, ann_id: str) -> bytes:
        return self.template.replace(ID.encode(), ann_id.encode())


# --------------------------------------------------------------------------------- strategies
def dumps(obj: Any, ascii_only: bool = False) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8")


# characters the parser strips or collapses: the spoken text stays the corpus sentence
STRIPPED = (
    "",
    "",
    " ",
    "\t\n",
    "\x00",
    "\x07\x1b",
    "\x7f\x85\x9f",
    "\u200b\u200f",
    "\u202e\u2066\u2069",
    "<b></b>",
    "<speak>",
    "<break time='1s'/>",
    "  \r\n  ",
    "\x0b\x0c",
)
printable = st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co"))
valid_text = st.tuples(
    st.sampled_from(TEXTS),
    st.sampled_from(STRIPPED),
    st.one_of(st.just(""), st.just(""), st.just(""), st.text(printable, max_size=5)),
).map(lambda t: t[0] + t[1] + t[2])
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
extra_key = st.text(min_size=1, max_size=12).filter(lambda k: k not in FIELDS)
VALID_TARGETS = st.sampled_from([None, "a", ["a"], "b", "files", ["a", "b"], ["files", "a"], ["b", "b"]])


def speakers_of(targets: Any, default: tuple[str, ...] = ("a",)) -> tuple[str, ...]:
    if targets is None:
        return default
    out: list[str] = []
    for t in [targets] if isinstance(targets, str) else targets:
        out += [s for s in SPEAKERS_OF[t] if s not in out]
    return tuple(out)


@st.composite
def valid_json(draw: Callable[..., Any]) -> Case:
    fields: dict[str, Any] = {"id": ID, "text": draw(valid_text)}
    if draw(st.integers(0, 39)) == 0:  # the longest text allowed (its sentences mostly cached)
        fields["text"] = (TEXTS[0] * MAX_TEXT)[:MAX_TEXT]
    opts: dict[str, st.SearchStrategy[Any]] = {
        "emotion": st.sampled_from(["neutral", "calm", "中性", "平静", "happy", "开心", "no-such-emotion", "😀"]),
        "intensity": st.sampled_from([0, 1, 2, 1.0, 2.0]),
        "speed": st.sampled_from([0.5, 1, 1.0, 2, 2.0]),
        "volume": st.one_of(st.sampled_from([0, 1, 0.0, 1.0, 5e-324]), st.floats(0, 1)),
        "priority": st.sampled_from(["low", "normal", "high"]),
        "chime": st.sampled_from([True, False, "ding-dong", "alarm", "none"]),
        "ttl": st.sampled_from([3600, 1e9, 86400.5, 1e300]),
        "engine": st.just("zh"),
        "lang": st.sampled_from(["zh", "zh-CN", "", "x" * 300]),
        "voice": st.none(),  # null: the default voice (an unknown one would fail at play time)
    }
    for key in draw(st.lists(st.sampled_from(sorted(opts)), max_size=4, unique=True)):
        fields[key] = draw(opts[key])
    repeat, gap = draw(st.sampled_from([(None, None)] * 6 + [(2, 0), (2, 60), (10, 0), (1, 60.0), (2, 0.5)]))
    if repeat is not None:
        fields["repeat"] = repeat
    if gap is not None:
        fields["repeat_gap"] = gap
    targets = draw(VALID_TARGETS)
    if targets is not None:
        fields["targets"] = targets
    for _ in range(draw(st.integers(0, 2))):  # unknown fields only earn a warning
        fields[draw(extra_key)] = draw(json_values)
    body = dumps(fields)
    if draw(st.integers(0, 9)) == 0:  # deep, but within what the parser takes: still valid
        depth = draw(st.integers(10, 400))
        body = body[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    topic = draw(st.sampled_from(["say", "say", "say", "say/a", "say/b", "say/files"]))
    speakers = SPEAKERS_OF[topic[4:]] if "/" in topic else speakers_of(targets)
    return Case(topic, body, "play", "valid json", carries_id=True, speakers=speakers)


@st.composite
def valid_plain(draw: Callable[..., Any]) -> Case:
    lead = draw(st.sampled_from(["", " ", "\n\t", "\x01", "\u200b", "<p>"]))
    text = lead + draw(valid_text)
    topic = draw(st.sampled_from(["say", "say", "say/b", "say/files"]))
    return Case(topic, text.encode(), "play", "valid text", speakers=SPEAKERS_OF[topic[4:]] if "/" in topic else ("a",))


@st.composite
def valid_hermes(draw: Callable[..., Any]) -> Case:
    fields: dict[str, Any] = {"text": draw(valid_text), "id": ID}
    site = draw(st.sampled_from([None, "", "default", "kitchen", "kitchen", 0, False]))
    if site is not None:
        fields["siteId"] = site
    for key, strat in (
        ("sessionId", json_values),
        ("lang", st.sampled_from([None, "zh-CN", "en"])),
        ("volume", st.one_of(st.none(), st.floats(0, 1))),
        ("customData", json_values),
        ("modelId", st.text(max_size=10)),
    ):
        if draw(st.booleans()):
            fields[key] = draw(strat)
    speakers = SPEAKERS_OF[SITES["kitchen"]] if site == "kitchen" else ("a",)
    return Case("hermes", dumps(fields), "play", "valid hermes", carries_id=True, speakers=speakers)


def base(**fields: Any) -> dict[str, Any]:
    return {"id": ID, "text": TEXTS[0], **fields}


NUMERIC = {"intensity": (0, 2), "speed": (0.5, 2.0), "volume": (0, 1), "repeat_gap": (0, 60), "ttl": (0, None)}
not_number = st.one_of(
    st.booleans(),
    st.text(max_size=10),
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=2),
)
not_string = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=2),
)
unknown_name = st.text(printable, min_size=1, max_size=20).filter(
    lambda t: t not in KNOWN and "/" not in t and "+" not in t and "#" not in t
)
say_topic = st.sampled_from(["say", "say", "say", "say/a", "say/b", "say/files", "say/all"])


def out_of_range(field: str) -> st.SearchStrategy[Any]:
    lo, hi = NUMERIC[field]
    below = [lo - 1e-9, lo - 1, -1e308] + ([lo] if field == "ttl" else [])  # ttl must be > 0
    above = [] if hi is None else [hi + 1e-9, hi + 1, 1e308]
    outside = st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda v: v < lo or (field == "ttl" and v == 0) or (hi is not None and v > hi)
    )
    return st.one_of(st.sampled_from(below + above), outside)


@st.composite
def wrong_field(draw: Callable[..., Any]) -> Case:
    """One field wrong (type or range), the rest valid: the error names that field, the event has our id."""
    field = draw(
        st.sampled_from(
            ["text", "emotion", "priority", "targets", "chime", "repeat", "engine", "voice", "lang", *NUMERIC, *NUMERIC]
        )
    )
    if field in NUMERIC:
        value = draw(st.one_of(not_number, out_of_range(field)))
    elif field == "text":
        value = draw(st.one_of(st.none(), not_string))
    elif field == "priority":
        value = draw(
            st.one_of(
                st.none(),
                not_string,
                st.text(max_size=12).filter(lambda v: v not in ("low", "normal", "high", "emergency")),
            )
        )
    elif field == "targets":
        value = draw(
            st.one_of(
                st.sampled_from([[], [1], ["a", None], {"a": 1}, 0, True]),
                unknown_name,
                st.lists(unknown_name, min_size=1, max_size=3).map(lambda x: ["a", *x]),
            )
        )
    elif field == "chime":
        value = draw(
            st.one_of(
                st.none(),
                st.integers(),
                st.lists(st.booleans(), max_size=2),
                st.text(max_size=10).filter(lambda v: v not in ("ding-dong", "alarm", "none")),
            )
        )
    elif field == "repeat":
        value = draw(
            st.one_of(
                st.sampled_from([0, 11, -1, 1.0, 2.5, True, "2", None, 10**30]),
                st.integers().filter(lambda v: not 1 <= v <= 10),
            )
        )
    elif field == "engine":
        value = draw(st.one_of(not_string, st.text(max_size=10).filter(lambda v: v != "zh")))
    else:  # emotion, voice, lang: strings (voice: none here, an unknown voice fails at play time)
        value = draw(not_string)
    body = dumps(base(**{field: value}))
    topic = "say" if field == "targets" else draw(say_topic)  # a target in the topic overrides "targets"
    return Case(topic, body, "reject", f"wrong {field}", field=field, carries_id=True)


@st.composite
def odd_numbers(draw: Callable[..., Any]) -> Case:
    """NaN, Infinity, 1e400 and integers beyond any float (up to Python's 4300-digit limit, and past it)."""
    field = draw(st.sampled_from(sorted(NUMERIC)))
    kind = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "bigint", "bigint", "hugeint"]))
    head = dumps(base())[:-1] + f', "{field}": '.encode()
    if kind == "bigint":
        digits = draw(st.integers(310, 4300))
        return Case(
            draw(say_topic), head + b"9" * digits + b"}", "reject", "int beyond float", field=field, carries_id=True
        )
    if kind == "hugeint":  # the JSON parser itself refuses: no fields, so no id
        digits = draw(st.integers(4301, 20000))
        return Case(draw(say_topic), head + b"7" * digits + b"}", "reject", "int over 4300 digits", field="payload")
    return Case(draw(say_topic), head + kind.encode() + b"}", "reject", kind, field=field, carries_id=True)


@st.composite
def bad_text(draw: Callable[..., Any]) -> Case:
    """Empty after cleaning, or over max_text_chars, as JSON (our id) or plain text (no id)."""
    empty = st.lists(st.sampled_from(STRIPPED), max_size=6).map("".join)
    long = st.tuples(st.sampled_from(["请", "a", "警", "😀", "é"]), st.integers(MAX_TEXT + 1, 12_000)).map(
        lambda t: TEXTS[1] + t[0] * t[1]
    )
    is_long = draw(st.booleans())
    text = draw(long if is_long else empty)
    reason = "oversize" if is_long else "invalid"
    if draw(st.booleans()):
        return Case(
            draw(say_topic),
            dumps(base(text=text)),
            "reject",
            "long text" if is_long else "empty text",
            field="text",
            reason=reason,
            carries_id=True,
        )
    return Case(
        draw(say_topic),
        text.encode(),
        "reject",
        "long plain" if is_long else "empty plain",
        field="text",
        reason=reason,
    )


@st.composite
def not_utf8(draw: Callable[..., Any]) -> bytes:
    raw = draw(st.binary(max_size=300))
    bad = draw(
        st.sampled_from(
            [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\xc0\xaf", b"\x80"]
        )
    )
    at = draw(st.integers(0, len(raw)))
    out = raw[:at] + bad + raw[at:]
    try:  # the neighbours can complete a truncated sequence ("\xe2\x82" + "\xac" is "€")
        out.decode("utf-8")
    except UnicodeDecodeError:
        return out
    return out + b"\xff"


@st.composite
def broken_json(draw: Callable[..., Any]) -> bytes:
    """Starts with "{" (so it is JSON by the contract) and does not parse."""
    good = json.dumps(
        draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)) | {"text": TEXTS[0]}, ensure_ascii=False
    )
    how = draw(st.sampled_from(["cut", "cut", "tail", "single quotes", "comma"]))
    if how == "cut":
        return good[: draw(st.integers(1, len(good) - 1))].encode()
    if how == "tail":
        return (good + draw(st.sampled_from([" x", "}", ",", " {", "\x00"]))).encode()
    if how == "comma":
        return (good[:-1] + ",}").encode()
    return good.replace('"', "'").encode()


@st.composite
def deep_json(draw: Callable[..., Any]) -> bytes:
    if draw(st.booleans()):
        depth = draw(st.integers(1500, 30_000))
        return dumps(base())[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    depth = draw(st.integers(1500, 9_000))  # 7 bytes a level: stays under max_payload_bytes
    return b'{"text": "x", "a": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


@st.composite
def oversize(draw: Callable[..., Any]) -> bytes:
    size = draw(st.integers(MAX_PAYLOAD + 1, MAX_PAYLOAD + 20_000))
    text = "请" * (size // 3 + 1)
    return dumps(base(text=text)) if draw(st.booleans()) else text.encode()


@st.composite
def surrogate(draw: Callable[..., Any]) -> tuple[bytes, str]:
    """A lone "\\ud800".."\\udfff" escape in a value or a key."""
    lone = chr(draw(st.integers(0xD800, 0xDFFF)))
    where = draw(st.sampled_from(["text", "emotion", "priority", "voice", "key"]))
    if where == "key":
        return dumps(base(**{"x" + lone: 1}), ascii_only=True), "payload"
    value = (TEXTS[0] + lone) if where == "text" else lone
    return dumps(base(**{where: value}), ascii_only=True), where


@st.composite
def bad_id(draw: Callable[..., Any]) -> bytes:
    value = draw(
        st.one_of(
            st.sampled_from(["", "has space", "x" * 65, "a1\n", "ü", "a/b", "id#1", "é" * 3]),
            not_string,
            st.text(max_size=70).filter(lambda v: not id_ok(v)),
        )
    )
    return dumps({"id": value, "text": TEXTS[0]})


def id_ok(v: str) -> bool:
    """The contract's id rule, written out here independently of the daemon's regex."""
    return 1 <= len(v) <= 64 and all(c.isascii() and (c.isalnum() or c in "._-") for c in v)


@st.composite
def garbage_say(draw: Callable[..., Any]) -> Case:
    kind = draw(st.sampled_from(["utf8", "json", "deep", "oversize", "surrogate", "id", "topic", "topic"]))
    topic = draw(say_topic)
    if kind == "utf8":
        return Case(topic, draw(not_utf8()), "reject", "not utf-8", field="payload")
    if kind == "json":
        return Case(topic, draw(broken_json()), "reject", "broken json", field="payload")
    if kind == "deep":
        return Case(topic, draw(deep_json()), "reject", "deep json", field="payload")
    if kind == "oversize":
        return Case(topic, draw(oversize()), "reject", "oversize", field="payload", reason="oversize")
    if kind == "surrogate":
        body, field = draw(surrogate())
        return Case(topic, body, "reject", "lone surrogate", field=field)
    if kind == "id":
        return Case(topic, draw(bad_id()), "reject", "bad id", field="id")
    target = draw(unknown_name)  # a valid payload on an unknown target's topic
    if draw(st.booleans()):
        return Case(f"say/{target}", dumps(base()), "reject", "unknown topic target", field="targets", carries_id=True)
    return Case(f"say/{target}", TEXTS[0].encode(), "reject", "unknown topic target", field="targets")


@st.composite
def garbage_stop(draw: Callable[..., Any]) -> Case:
    """Never a valid stop: a valid one would cancel what is playing."""
    target = draw(st.one_of(st.none(), st.sampled_from(["a", "b", "files", "all"])))
    topic = "stop" if target is None else f"stop/{target}"
    kind = draw(
        st.sampled_from(
            [
                "text",
                "utf8",
                "not object",
                "json",
                "unknown key",
                "below",
                "below",
                "id",
                "topic",
                "deep",
                "oversize",
                "surrogate",
            ]
        )
    )
    if kind == "text":  # something that is not blank and does not start with "{"
        text = draw(st.sampled_from(["please stop", "stop", "0", "x", "-", "true"])) + draw(st.text(max_size=20))
        return Case(topic, text.encode(), "reject", "stop text", field="payload")
    if kind == "utf8":
        return Case(topic, draw(not_utf8()), "reject", "stop not utf-8", field="payload")
    if kind == "not object":
        body = draw(st.one_of(st.lists(json_values, max_size=3), json_scalars))
        return Case(topic, dumps(body), "reject", "stop not an object", field="payload")
    if kind == "json":
        return Case(topic, draw(broken_json()), "reject", "stop broken json", field="payload")
    if kind == "unknown key":
        fields = {"id": ID, draw(extra_key.filter(lambda k: k not in ("priority_below",))): draw(json_values)}
        if draw(st.booleans()):
            fields["priority_below"] = draw(st.sampled_from(["low", "normal", "high", "emergency"]))
        return Case(topic, dumps(fields), "reject", "stop unknown key", field="payload", carries_id=True)
    if kind == "below":
        value = draw(
            st.one_of(
                not_string, st.text(max_size=12).filter(lambda v: v not in ("low", "normal", "high", "emergency"))
            )
        )
        return Case(
            topic,
            dumps({"id": ID, "priority_below": value}),
            "reject",
            "stop priority_below",
            field="priority_below",
            carries_id=True,
        )
    if kind == "id":
        body = json.loads(draw(bad_id()))
        body.pop("text")
        return Case(topic, dumps(body), "reject", "stop bad id", field="id")
    if kind == "topic":
        name = draw(unknown_name)
        if draw(st.booleans()):
            return Case(f"stop/{name}", b"", "reject", "stop unknown target", field="targets")
        body = {"id": ID} | ({"priority_below": "low"} if draw(st.booleans()) else {})
        return Case(f"stop/{name}", dumps(body), "reject", "stop unknown target", field="targets", carries_id=True)
    if kind == "deep":
        return Case(topic, draw(deep_json()), "reject", "stop deep json", field="payload")
    if kind == "oversize":
        return Case(
            topic,
            b"{" + b" " * (MAX_PAYLOAD + draw(st.integers(1, 5000))) + b"}",
            "reject",
            "stop oversize",
            field="payload",
            reason="oversize",
        )
    body, field = draw(surrogate())  # the check comes before the stop's own: it names the key
    return Case(topic, body, "reject", "stop lone surrogate", field=field)


@st.composite
def garbage_hermes(draw: Callable[..., Any]) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "utf8",
                "text",
                "not object",
                "json",
                "deep",
                "oversize",
                "site",
                "site",
                "site type",
                "hermes text",
                "volume",
                "lang",
            ]
        )
    )
    if kind == "utf8":
        return Case("hermes", draw(not_utf8()), "reject", "hermes not utf-8", field="payload")
    if kind == "text":
        return Case("hermes", TEXTS[0].encode(), "reject", "hermes plain text", field="payload")
    if kind == "not object":
        return Case(
            "hermes",
            dumps(draw(st.one_of(st.lists(json_values, max_size=3), json_scalars))),
            "reject",
            "hermes not an object",
            field="payload",
        )
    if kind == "json":
        return Case("hermes", draw(broken_json()), "reject", "hermes broken json", field="payload")
    if kind == "deep":
        return Case("hermes", draw(deep_json()), "reject", "hermes deep json", field="payload")
    if kind == "oversize":
        return Case("hermes", draw(oversize()), "reject", "hermes oversize", field="payload", reason="oversize")
    req: dict[str, Any] = {"text": TEXTS[0], "id": ID, "sessionId": "s"}
    if kind == "site":
        req["siteId"] = draw(st.text(min_size=1, max_size=20).filter(lambda s: s not in SITES))
        field = "siteId"
    elif kind == "site type":
        req["siteId"] = draw(
            st.one_of(
                st.sampled_from([1, True, 1.5, [1], {"a": 1}, ["default"]]),
                st.lists(json_scalars, min_size=1, max_size=3),
            )
        )
        field = "siteId"
    elif kind == "hermes text":
        value = draw(st.one_of(not_string, st.sampled_from(["", "  ", "\x00\u200b", "<b></b>", "请" * 401])))
        req["text"] = value
        field = "text"
    elif kind == "volume":
        req["volume"] = draw(st.one_of(not_number, out_of_range("volume")))
        field = "volume"
    else:
        req["lang"] = draw(not_string)
        field = "lang"
    reason = "oversize" if req.get("text") == "请" * 401 else "invalid"
    return Case("hermes", dumps(req), "reject", f"hermes {kind}", field=field, reason=reason, carries_id=True)


@st.composite
def garbage_settings(draw: Callable[..., Any]) -> Case:
    """Home Assistant's commands: refused (warning, state republished unchanged), no announcement event."""
    if draw(st.booleans()):
        body = draw(st.one_of(not_utf8(), st.text(max_size=30).map(lambda t: ("zz" + t).encode())))
        return Case("set/emotion", body, "refuse", "bad emotion setting")
    body = draw(
        st.one_of(
            st.sampled_from([b"-1", b"100.5", b"1e400", b"nan", b"inf", b"-inf", b"", b"50%", b"-0.0001", b"1" * 400]),
            not_utf8(),
            st.text(max_size=20).map(lambda t: ("v" + t).encode()),
        )
    )
    return Case("set/volume", body, "refuse", "bad volume setting")


KINDS: list[tuple[int, st.SearchStrategy[Case]]] = [  # (share of the cases, strategy)
    (16, wrong_field()),
    (6, odd_numbers()),
    (5, bad_text()),
    (14, garbage_say()),
    (14, garbage_stop()),
    (10, garbage_hermes()),
    (2, garbage_settings()),
    (7, valid_json()),
    (3, valid_plain()),
    (3, valid_hermes()),
]


def generate(count: int, seed_value: int) -> list[Case]:
    """``count`` cases, each kind its share (hypothesis would favour the simplest), in a seeded order."""
    total = sum(w for w, _s in KINDS)
    cases: list[Case] = []
    for w, strategy in KINDS:

        @seed(seed_value)
        @settings(
            max_examples=max(1, count * w // total),
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def collect(case: Case) -> None:
            cases.append(case)

        collect()
    random.Random(seed_value).shuffle(cases)
    return cases
