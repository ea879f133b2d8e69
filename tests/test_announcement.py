"""The one payload parser: what is accepted, what is rejected and how the error names the field."""

from __future__ import annotations

import json

import pytest

from announcer.announcement import Announcement, clean_text, parse
from announcer.config import parse_config
from announcer.errors import InputError

CFG = parse_config("""
speakers:
  lobby: {type: file, directory: /tmp/a}
  desk: {type: file, directory: /tmp/b}
zones: {ward-3: [lobby, desk]}
defaults: {targets: [lobby], emotion: neutral}
limits: {max_text_chars: 50, max_payload_bytes: 1024}
""")


def test_plain_text_and_json() -> None:
    a = parse("  前门有人按门铃。 ".encode(), CFG, now=1000.0)
    assert a.text == "前门有人按门铃。" and a.targets == ("lobby",) and a.emotion == "neutral"
    assert a.expires == 1000.0 + 600 and len(a.id) == 12
    b = parse(json.dumps({"text": "请到护士站", "emotion": "生气", "priority": "high", "targets": "ward-3",
                          "id": "call-1", "repeat": 2, "speed": 1.5}).encode(), CFG)
    assert (b.emotion, b.priority, b.speakers, b.id, b.repeat, b.speed) == \
        ("angry", "high", ("lobby", "desk"), "call-1", 2, 1.5)
    assert Announcement.from_json(b.to_json()) == b


def test_unknown_emotion_plays_as_neutral_with_warning() -> None:
    a = parse(b'{"text": "hi", "emotion": "grumpy"}', CFG)
    assert a.emotion == "neutral" and any("grumpy" in w for w in a.warnings)


def test_message_expiry_shortens_ttl() -> None:
    a = parse(b'{"text": "hi", "ttl": 100}', CFG, now=0.0, message_expiry=5)
    assert a.expires == 5.0


@pytest.mark.parametrize("payload, field, reason", [
    (b"\xff\xfe", "payload", "invalid"),
    (b'{"text": ', "payload", "invalid"),
    (b"[1, 2]", None, None),  # not JSON by the contract's rule: spoken as text
    (b'{"text": 5}', "text", "invalid"),
    (b'{"emotion": "happy"}', "text", "invalid"),
    (b'{"text": "   "}', "text", "invalid"),
    (b'{"text": "' + "长" .encode() * 51 + b'"}', "text", "oversize"),
    (b"x" * 1025, "payload", "oversize"),
    (b'{"text": "a", "speed": "fast"}', "speed", "invalid"),
    (b'{"text": "a", "speed": 3}', "speed", "invalid"),
    (b'{"text": "a", "intensity": -1}', "intensity", "invalid"),
    (b'{"text": "a", "volume": 2}', "volume", "invalid"),
    (b'{"text": "a", "repeat": 11}', "repeat", "invalid"),
    (b'{"text": "a", "ttl": 0}', "ttl", "invalid"),
    (b'{"text": "a", "priority": "urgent"}', "priority", "invalid"),
    (b'{"text": "a", "targets": "nowhere"}', "targets", "invalid"),
    (b'{"text": "a", "targets": 3}', "targets", "invalid"),
    (b'{"text": "a", "id": "has space"}', "id", "invalid"),
    (b'{"text": "a", "engine": "nope"}', "engine", "invalid"),
    (b'{"text": "a", "chime": 3}', "chime", "invalid"),
])
def test_rejections_name_the_field(payload: bytes, field: str | None, reason: str | None) -> None:
    if field is None:
        assert parse(payload, CFG).text == payload.decode()
        return
    with pytest.raises(InputError) as info:
        parse(payload, CFG)
    assert info.value.field == field and info.value.reason == reason
    assert str(info.value).startswith(f"{field}: ")


def test_allowed_values_are_listed() -> None:
    with pytest.raises(InputError, match=r"allowed: low, normal, high, emergency"):
        parse(b'{"text": "a", "priority": "urgent"}', CFG)
    with pytest.raises(InputError, match=r"allowed: lobby, desk, ward-3"):
        parse(b'{"text": "a", "targets": ["nowhere"]}', CFG)


def test_markup_and_control_characters_are_stripped() -> None:
    assert clean_text("<speak>请<b>注意</b></speak>\x07\u202e 大厅") == "请注意大厅"
    assert clean_text("Hello<br>world\t!") == "Hello world !"
    with pytest.raises(InputError, match="text: must not be empty"):
        parse(json.dumps({"text": "<b>\u0007\u200b</b>"}).encode(), CFG)
