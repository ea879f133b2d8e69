"""The one payload parser: what is accepted, what is rejected and how the error names the field."""

from __future__ import annotations

import json

import pytest

from announcer.config import parse_config
from announcer.core.announcement import Announcement, Translation
from announcer.core.errors import InputError
from announcer.intake.parse import check_schema, clean_text, parse
from announcer.intake.wire import decode_stop, stop_priority

pytestmark = pytest.mark.unit  # the fast lane (make check)

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
    b = parse(
        json.dumps(
            {
                "text": "请到护士站",
                "emotion": "生气",
                "priority": "high",
                "targets": "ward-3",
                "id": "call-1",
                "repeat": 2,
                "speed": 1.5,
            }
        ).encode(),
        CFG,
    )
    assert (b.emotion, b.priority, b.speakers, b.id, b.repeat, b.speed) == (
        "angry",
        "high",
        ("lobby", "desk"),
        "call-1",
        2,
        1.5,
    )
    assert Announcement.from_json(b.to_json()) == b


def test_unknown_emotion_plays_as_neutral_with_warning() -> None:
    a = parse(b'{"text": "hi", "emotion": "grumpy"}', CFG)
    assert a.emotion == "neutral" and any("grumpy" in w for w in a.warnings)


def test_message_expiry_shortens_ttl() -> None:
    a = parse(b'{"text": "hi", "ttl": 100}', CFG, now=0.0, message_expiry=5)
    assert a.expires == 5.0


def test_sent_at_counts_the_ttl_from_when_it_was_sent() -> None:
    # queued 90 s at the centre while the site's link was down: 10 s of its 100 left
    a = parse(b'{"text": "hi", "ttl": 100, "sent_at": 1000}', CFG, now=1090.0)
    assert a.expires == 1100.0 and a.sent_at == 1000.0
    # the default ttl (600) counts from sent_at too; a sender's clock ahead of ours changes nothing
    assert parse(b'{"text": "hi", "sent_at": 1000}', CFG, now=1090.0).expires == 1600.0
    assert parse(b'{"text": "hi", "ttl": 100, "sent_at": 5000}', CFG, now=1090.0).expires == 1190.0
    # the earliest of the three wins: receipt + ttl, sent_at + ttl, the MQTT 5 message expiry
    assert parse(b'{"text": "hi", "ttl": 100, "sent_at": 1000}', CFG, now=1090.0, message_expiry=3).expires == 1093.0
    assert Announcement.from_json(a.to_json()) == a


def test_check_schema_needs_no_config() -> None:
    """``announcer send --site`` checks what needs no site's config: types, bounds, the id, the text."""
    check_schema({"text": "hi", "targets": "a-speaker-only-the-site-knows", "engine": "theirs"})
    for raw, field in (
        ({"text": "hi", "speed": 3}, "speed"),
        ({"text": "hi", "sent_at": "yesterday"}, "sent_at"),
        ({"text": "<b></b>"}, "text"),
        ({"text": "hi", "id": "has space"}, "id"),
    ):
        with pytest.raises(InputError) as info:
            check_schema(raw)
        assert info.value.field == field


@pytest.mark.parametrize(
    "payload, field, reason",
    [
        (b"\xff\xfe", "payload", "invalid"),
        (b'{"text": ', "payload", "invalid"),
        (b"[1, 2]", None, None),  # not JSON by the contract's rule: spoken as text
        (b'{"text": 5}', "text", "invalid"),
        (b'{"emotion": "happy"}', "text", "invalid"),
        (b'{"text": "   "}', "text", "invalid"),
        (b'{"text": "' + "长".encode() * 51 + b'"}', "text", "oversize"),
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
        # found by the garbage-in reliability test (tests/reliability/test_garbage.py): each once crashed
        # the MQTT handler (no event, message never acknowledged) or was accepted and failed later
        (b'{"text": "a", "speed": ' + b"9" * 400 + b"}", "speed", "invalid"),  # int beyond float: OverflowError
        (b'{"text": "\\ud800 a"}', "text", "invalid"),  # lone surrogate: could not be spooled or published
        (b'{"text": "a", "emotion": "\\udfff"}', "emotion", "invalid"),
        (b'{"text": "a", "\\ud800": 1}', "payload", "invalid"),
        (b'{"text": "a", "id": "a1\\n"}', "id", "invalid"),  # "$" matched before the newline
        (b'{"text": "a", "chime": "nope"}', "chime", "invalid"),  # failed with a KeyError at play time
        (b'{"text": "a", "engine": 1.5}', "engine", "invalid"),
        (b'{"text": "a", "engine": {"x": []}}', "engine", "invalid"),
    ],
)
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


@pytest.mark.parametrize(
    "payload, message",
    [
        (b'{"text": "a", "speed": ' + b"9" * 5000 + b"}", "payload: a number in the JSON has too many digits"),
        (b'{"text": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "payload: JSON nested too deeply"),
        (b'{"text": "a", "x": ' + b'{"x": ' * 5000 + b"1" + b"}" * 5000 + b"}", "payload: JSON nested too deeply"),
    ],
)
def test_json_python_cannot_hold_is_rejected(payload: bytes, message: str) -> None:
    """An int over 4300 digits raised ValueError, deep nesting RecursionError: neither was an InputError."""
    big = CFG.model_copy(update={"limits": CFG.limits.model_copy(update={"max_payload_bytes": 65536})})
    with pytest.raises(InputError) as info:
        parse(payload, big)
    assert str(info.value) == message and info.value.reason == "invalid"


def test_huge_values_are_cut_in_errors() -> None:
    with pytest.raises(InputError) as info:
        parse(json.dumps({"text": "a", "priority": "x" * 900}).encode(), CFG)
    assert len(str(info.value)) < 200 and "allowed: low, normal, high, emergency" in str(info.value)
    with pytest.raises(InputError, match=r"speed: 9{10,}… is out of range \(allowed: 0.5 .. 2.0\)"):
        parse(b'{"text": "a", "speed": ' + b"9" * 400 + b"}", CFG)


def test_named_chimes_are_accepted() -> None:
    assert parse(b'{"text": "a", "chime": "alarm"}', CFG).chime == "alarm"
    assert parse(b'{"text": "a", "chime": "none"}', CFG).chime == "none"
    with pytest.raises(InputError, match=r"chime: unknown chime \"bell\" \(allowed: true, false, alarm, ding-dong"):
        parse(b'{"text": "a", "chime": "bell"}', CFG)


@pytest.mark.parametrize(
    "payload, below",
    [
        (b"", None),
        (b"  \n", None),
        (b"{}", None),
        (b'{"priority_below": "emergency"}', "emergency"),
        (b'{"priority_below": null}', None),
        (b'{"priority_below": "high", "id": "s-1"}', "high"),
    ],
)
def test_valid_stops(payload: bytes, below: str | None) -> None:
    assert stop_priority(decode_stop(payload, CFG)) == below


@pytest.mark.parametrize(
    "payload, field",
    [
        (b"please stop", "payload"),
        (b"[1]", "payload"),
        (b"5", "payload"),
        (b"null", "payload"),
        (b'{"priority_below": ', "payload"),
        (b"\xff\xfe", "payload"),
        (b"{" + b" " * 1100 + b"}", "payload"),  # over max_payload_bytes
        (b'{"foo": 1}', "payload"),  # unknown fields: rejected, not "stop everything"
        (b'{"priority_below": "urgent"}', "priority_below"),
        (b'{"priority_below": 3}', "priority_below"),
        (b'{"priority_below": ["low"]}', "priority_below"),
        (b'{"id": "bad id"}', "id"),
        (b'{"id": "\\ud800"}', "id"),
    ],
)
def test_invalid_stops_name_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(InputError) as info:
        stop_priority(decode_stop(payload, CFG))
    assert info.value.field == field, str(info.value)
    if field == "payload":
        assert "priority_below" in str(info.value) or "bytes" in str(info.value) or "UTF-8" in str(info.value)
    if field == "priority_below":
        assert "allowed: low, normal, high, emergency" in str(info.value)


# --- translations (bilingual announcements) --------------------------------------------
BILINGUAL = parse_config("""
engines: {zh: {type: embedded-zh}, en: {type: espeak, voice: en-us}}
languages: {zh: zh, en: en}
speakers: {lobby: {type: file, directory: /tmp/a}}
limits: {max_text_chars: 50}
""")


def test_translations_are_spoken_by_their_languages_engines() -> None:
    payload = {"text": "请到三号病房。", "translations": {"en": " Please come to <b>ward 3</b>. "}}
    a = parse(json.dumps(payload, ensure_ascii=False), BILINGUAL)
    assert (a.text, a.engine) == ("请到三号病房。", "zh")
    assert a.translations == (Translation("en", "Please come to ward 3 .", "en"),)
    assert a.engines == ("zh", "en")
    assert Announcement.from_json(a.to_json()) == a
    # the text's own language picks its engine when none is named
    b = parse(json.dumps({"text": "Fire drill at noon.", "lang": "en"}), BILINGUAL)
    assert b.engine == "en"
    # a spool record written before translations existed still loads
    old = json.loads(a.to_json())
    del old["translations"]
    assert Announcement.from_json(json.dumps(old)).translations == ()


@pytest.mark.parametrize(
    ("translations", "error"),
    [
        ({"fr": "Bonjour"}, "translations: no engine for language 'fr' (configured: zh, en; map it in languages)"),
        ({"en": ""}, "translations: must be an object of language code -> non-empty text"),
        ({"en": 5}, "translations: must be an object of language code -> non-empty text"),
        ({"e n": "x"}, "translations: must be an object of language code -> non-empty text"),
        ("en", "translations: must be an object of language code -> non-empty text"),
        ({}, "translations: must be an object of language code -> non-empty text"),
        ({"en": "<i></i>"}, "translations: en: must not be empty (after removing markup and control characters)"),
        ({"en": "x" * 51}, "translations: en: 51 characters is over the limit of 50"),
    ],
)
def test_bad_translations_are_rejected_naming_the_field(translations: object, error: str) -> None:
    with pytest.raises(InputError) as info:
        parse(json.dumps({"text": "请注意", "translations": translations}), BILINGUAL)
    assert str(info.value).startswith(error), str(info.value)


def test_a_language_must_name_an_engine() -> None:
    from announcer.config import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config("engines: {zh: {type: embedded-zh}}\nlanguages: {en: kokoro-en}\n")
    assert info.value.errors == ["languages.en: 'kokoro-en' is not an engine (have: zh) (line 2)"]
