"""Templates, recorded clips and schedules in the config and the payload: checked at load, checked at
request (each error naming its field), and rendered: a clip alone, and a template's clip, speech, clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from routine_stack import BELL

from announcer.audio.loudness import integrated_loudness
from announcer.config import ConfigError, load_config, parse_config
from announcer.core.announcement import CLIP, SAY, Announcement, Translation
from announcer.core.errors import InputError
from announcer.intake.parse import parse
from announcer.playback.offline import render_announcement
from announcer.playback.synthesizer import make_synthesizer

pytestmark = pytest.mark.unit

BASE = f"""
speakers: {{lobby: {{type: file, directory: /tmp/lobby}}, hall: {{type: file, directory: /tmp/hall}}}}
zones: {{ward-3: [lobby, hall]}}
defaults: {{targets: [lobby]}}
clips: {{bell: {BELL}}}
"""
TEMPLATES = """
templates:
  code_blue:
    text: "{ward}号病房，蓝色警报"
    vars: {ward: str}
    before: bell
    after: bell
    priority: emergency
    repeat: 3
    targets: [ward-3]
  visiting: {text: "探视时间开始了", emotion: happy, chime: ding-dong}
  floor: {text: "请到{floor}楼{room}室", vars: {floor: {type: int, choices: [1, 2, 3]}, room: {type: int, default: 1}}}
  dose: {text: "剂量{mg}毫克", vars: {mg: float}}
  gong: {before: bell}
"""


def cfg_of(extra: str = "", base: str = BASE):
    return parse_config(base + extra)


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    return [e.split(" (line")[0] for e in info.value.errors]


def rejected(payload: dict, cfg) -> str:
    with pytest.raises(InputError) as info:
        parse(json.dumps(payload, ensure_ascii=False).encode(), cfg)
    return str(info.value)


# ------------------------------------------------------------------------------ at load
def test_clip_files_are_decoded_at_load(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    long = tmp_path / "long.wav"
    sf.write(str(long), np.zeros(8000 * 121, np.float32), 8000)
    errors = errors_of(f"clips: {{gone: {tmp_path}/gone.wav, garbage: {garbage}, long: {long}}}")
    assert errors[0] == f"clips.gone: cannot read {tmp_path}/gone.wav: No such file or directory"
    assert errors[1].startswith(f"clips.garbage: cannot decode {garbage} as audio (WAV, FLAC or OGG)")
    assert errors[2] == f"clips.long: {long} is 121 s long; a clip may last at most 120 s"
    ogg = tmp_path / "bell.ogg"
    data, rate = sf.read(str(BELL), dtype="float32")
    sf.write(str(ogg), data, rate, format="OGG", subtype="VORBIS")
    assert parse_config(f"clips: {{bell: {BELL}, ogg: {ogg}}}").clips["ogg"] == ogg


def test_templates_are_checked_at_load() -> None:
    errors = errors_of(
        BASE
        + """
templates:
  a: {text: "{ward}号", vars: {}}
  b: {text: "hi", vars: {x: str}}
  c: {text: "{n:02d}号", vars: {n: int}}
  d: {text: "{ward", vars: {ward: str}}
  e: {text: "{n}", vars: {n: {type: int, default: "x"}}}
  f: {priority: high}
  g: {text: "x", before: nope, targets: [nowhere], chime: bong, emotion: grumpy}
"""
    )
    assert errors == [
        "templates.a: text uses {ward} but vars does not declare it",
        "templates.b: vars.x is declared but the text does not use {x}",
        "templates.c: text: {n:02d} is not a plain {name} placeholder",
        "templates.d: text: expected '}' before end of string (write {{ and }} for a literal brace)",
        'templates.e: vars.n.default: must be an integer, got "x" (template )',
        "templates.f: a template needs text, or a clip (before/after), or both",
        "templates.g.emotion: unknown emotion 'grumpy' (allowed: neutral, happy, sad, angry, fearful, surprised)",
    ]
    errors = errors_of(BASE + 'templates:\n  g: {text: "x", before: nope, targets: [nowhere], chime: bong}\n')
    assert errors == [
        "templates.g.before: 'nope' is not a clip (have: bell)",
        "templates.g.targets.0: 'nowhere' is not a speaker or zone",
        "templates.g.chime: 'bong' is not a chime (have: alarm, ding-dong, none)",
    ]


def test_a_relative_clip_path_is_beside_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc" / "clips").mkdir(parents=True)
    (tmp_path / "etc" / "clips" / "bell.flac").write_bytes(BELL.read_bytes())
    conf = tmp_path / "etc" / "announcer.yaml"
    conf.write_text("clips: {bell: clips/bell.flac}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the config's directory
    assert load_config(conf).clips["bell"] == tmp_path / "etc" / "clips" / "bell.flac"
    # the example config's bell is config/clips/bell.flac, wherever announcer runs from
    example = Path(__file__).resolve().parent.parent / "config" / "announcer.example.yaml"
    env = {"MQTT_PASSWORD": "x", "HA_TOKEN": "ha", "ANNOUNCER_HTTP_TOKEN": "t" * 20}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert load_config(example).clips["bell"] == example.parent / "clips" / "bell.flac"


def test_schedules_are_checked_at_load() -> None:
    errors = errors_of(
        BASE
        + TEMPLATES
        + """
schedules:
  both: {cron: "0 8 * * *", at: ["08:00"], text: hi}
  neither: {text: hi}
  bad-cron: {cron: "0 25 * * *", text: hi}
  never: {cron: "0 8 30 2 *", text: hi}
  bad-time: {at: ["8h"], text: hi}
  cron-days: {cron: "0 8 * * *", days: [mon], text: hi}
  dates: {at: ["08:00"], start_date: 2025-06-02, end_date: 2025-06-01, text: hi}
  two-things: {at: ["08:00"], text: hi, clip: bell}
  nothing: {at: ["08:00"]}
  loose-vars: {at: ["08:00"], text: hi, vars: {a: 1}}
  late: {at: ["08:00"], text: hi, missed: {play_within: 90000}}
  later: {at: ["08:00"], text: hi, missed: later}
  a-very-long-schedule-name-that-makes-the-firing-id-too-long: {at: ["08:00"], text: hi}
"""
    )
    assert errors == [
        "schedules.both: give either cron (e.g. '0 8 * * 1-5') or at (e.g. ['08:00']), not both or neither",
        "schedules.neither: give either cron (e.g. '0 8 * * 1-5') or at (e.g. ['08:00']), not both or neither",
        "schedules.bad-cron.cron: hour: 25 is out of range (allowed: 0-23)",
        "schedules.never.cron: '0 8 30 2 *' names a date that never exists",
        "schedules.bad-time.at: '8h' is not a time of day (use HH:MM, 00:00 .. 23:59)",
        "schedules.cron-days: days goes with at; with cron, the day-of-week field says it",
        "schedules.dates: end_date 2025-06-01 is before start_date 2025-06-02",
        "schedules.two-things: give exactly one of text, template or clip (what to announce); got text and clip",
        "schedules.nothing: give exactly one of text, template or clip (what to announce)",
        "schedules.loose-vars: vars go with a template",
        "schedules.late.missed: play_within: 90000 is not a number of seconds > 0 .. 86400",
        "schedules.later.missed: 'later' is not allowed (allowed: skip, or {play_within: <seconds>})",
        "schedules.a-very-long-schedule-name-that-makes-the-firing-id-too-long.[key]: String should have at most "
        "48 characters",
    ]
    errors = errors_of(
        BASE
        + TEMPLATES
        + """
schedules:
  a: {at: ["08:00"], template: nope}
  b: {at: ["08:00"], template: code_blue}
  c: {at: ["08:00"], template: floor, vars: {floor: 4}}
  d: {at: ["08:00"], clip: bel, targets: [nowhere], engine: tts}
"""
    )
    assert errors == [
        "schedules.a.template: 'nope' is not a template (have: code_blue, visiting, floor, dose, gong)",
        "schedules.b.vars.ward: required by template code_blue",
        "schedules.c.vars.floor: 4 is not allowed (allowed: 1, 2, 3)",
        "schedules.d.clip: 'bel' is not a clip (have: bell)",
        "schedules.d.targets.0: 'nowhere' is not a speaker or zone",
        "schedules.d.engine: 'tts' is not an engine (have: zh)",
    ]


# ------------------------------------------------------------------------------ at request
def test_a_template_expands_with_its_defaults_and_the_payload_wins() -> None:
    cfg = cfg_of(TEMPLATES)
    a = parse(b'{"template": "code_blue", "vars": {"ward": "3"}, "id": "cb-1"}', cfg)
    assert a.text == "3号病房，蓝色警报" and a.summary == a.text
    assert a.parts == ((CLIP, "bell"), (SAY, "3号病房，蓝色警报"), (CLIP, "bell"))
    assert (a.priority, a.repeat, a.targets, a.speakers) == ("emergency", 3, ("ward-3",), ("lobby", "hall"))
    assert a.template == "code_blue" and a.vars == (("ward", "3"),)
    assert Announcement.from_json(a.to_json()) == a  # the spool keeps all of it
    b = parse(b'{"template": "code_blue", "vars": {"ward": 5}, "priority": "high", "repeat": 1}', cfg)
    assert (b.text, b.priority, b.repeat) == ("5号病房，蓝色警报", "high", 1)
    v = parse(b'{"template": "visiting"}', cfg)
    assert (v.text, v.parts, v.emotion, v.chime) == ("探视时间开始了", (), "happy", "ding-dong")
    f = parse(b'{"template": "floor", "vars": {"floor": "2"}}', cfg)  # the command line sends strings
    assert f.text == "请到2楼1室" and f.vars == (("floor", "2"), ("room", "1"))
    assert parse(b'{"template": "dose", "vars": {"mg": 2.50}}', cfg).text == "剂量2.5毫克"
    g = parse(b'{"template": "gong"}', cfg)
    assert (g.text, g.parts, g.summary) == ("", ((CLIP, "bell"),), "[clip bell]")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"template": "nope"}, 'template: unknown template "nope" (allowed: code_blue, visiting, floor, dose, gong)'),
        ({"template": 5}, "template: must be a template name (a string)"),
        ({"template": "code_blue"}, "vars.ward: required by template code_blue"),
        (
            {"template": "code_blue", "vars": {"ward": "3", "bed": "2"}},
            "vars.bed: not a variable of template code_blue (allowed: ward)",
        ),  # fmt: skip
        (
            {"template": "code_blue", "vars": {"ward": ["3"]}},
            "vars: must be an object of variable name -> string or number",
        ),  # fmt: skip
        (
            {"template": "code_blue", "vars": {"ward": True}},
            "vars: must be an object of variable name -> string or number",
        ),  # fmt: skip
        ({"template": "code_blue", "vars": {"ward": "x" * 101}}, "vars.ward: 101 characters is over the limit of 100"),
        ({"template": "floor", "vars": {"floor": "two"}}, 'vars.floor: must be an integer, got "two" (template floor)'),
        ({"template": "floor", "vars": {"floor": 4}}, "vars.floor: 4 is not allowed (allowed: 1, 2, 3)"),
        ({"template": "dose", "vars": {"mg": "lots"}}, 'vars.mg: must be a number, got "lots" (template dose)'),
        ({"text": "hi", "vars": {"a": 1}}, "vars: only with a template (give template too)"),
        (
            {"text": "hi", "template": "visiting"},
            "template: give one of text, template or clip (not text and template)",
        ),
        ({"template": "visiting", "clip": "bell"}, "clip: give one of text, template or clip (not template and clip)"),
        ({"clip": "gong"}, 'clip: unknown clip "gong" (allowed: bell)'),
        ({"clip": 1}, "clip: must be a clip name (a string)"),
        ({}, "text: required (a non-empty string)"),
        ({"priority": "high"}, "text: required (a non-empty string)"),
    ],
)
def test_request_errors_name_the_field(payload: dict, error: str) -> None:
    assert rejected(payload, cfg_of(TEMPLATES)) == error


def test_a_clip_alone() -> None:
    a = parse(b'{"clip": "bell", "targets": "hall"}', cfg_of(TEMPLATES))
    assert (a.text, a.parts, a.clips, a.speaks, a.summary) == ("", ((CLIP, "bell"),), ("bell",), False, "[clip bell]")
    assert a.speakers == ("hall",)


def test_clips_count_in_the_render_budget(tmp_path: Path) -> None:
    """limits.max_audio_seconds counts a clip at its length, times repeat (a long clip repeated is refused)."""
    long = tmp_path / "long.wav"
    sf.write(long, np.full(100 * 8000, 0.1, np.float32), 8000)  # 100 s
    cfg = cfg_of(
        f"clips: {{bell: {BELL}, long: {long}}}\nlimits: {{max_audio_seconds: 300}}\n",
        base=BASE.replace(f"clips: {{bell: {BELL}}}\n", ""),
    )
    assert parse(json.dumps({"clip": "long", "repeat": 2}).encode(), cfg).clips == ("long",)  # ~205 s
    with pytest.raises(InputError) as info:
        parse(json.dumps({"clip": "long", "repeat": 3}).encode(), cfg)  # ~305 s
    assert info.value.field == "repeat" and info.value.reason == "oversize", info.value
    assert "100 s of clips" in str(info.value) and "limits.max_audio_seconds (300 s)" in str(info.value)


def test_a_spooled_record_from_before_parts_still_reads() -> None:
    old = {"id": "x1", "text": "你好", "targets": ["lobby"], "speakers": ["lobby"], "received": 1.0}
    a = Announcement.from_json(json.dumps(old))
    assert a.pieces() == ((SAY, "你好"),) and a.via == () and a.template is None


# ------------------------------------------------------------------------------ rendered
def test_a_clip_renders_without_an_engine_normalised_like_speech(tmp_path: Path) -> None:
    cfg = cfg_of(f"cache: {{directory: {tmp_path}}}\ndefaults: {{targets: [lobby], chime: false}}\n")
    synth = make_synthesizer(cfg)
    audio = render_announcement(cfg, synth, parse(b'{"clip": "bell"}', cfg))
    assert not synth.engine("zh")._loaded  # the bell needs no model
    data, rate = sf.read(str(BELL), dtype="float32")
    assert audio.sample_rate == rate == 16000
    assert audio.duration == pytest.approx(len(data) / rate + 0.25, abs=0.01)  # the clip and its gap
    assert integrated_loudness(audio.samples, rate) == pytest.approx(cfg.audio.target_lufs, abs=0.5)
    off = cfg_of(f"cache: {{directory: {tmp_path}}}\ndefaults: {{targets: [lobby], chime: false}}\n"
                 "audio: {target_lufs: null}\n")  # fmt: skip
    raw = render_announcement(off, make_synthesizer(off), parse(b'{"clip": "bell"}', off))
    assert np.max(np.abs(raw.samples)) == pytest.approx(0.8, abs=0.02)  # as recorded (peak 0.8)


def test_a_template_plays_clip_speech_clip(tmp_path: Path) -> None:
    cfg = cfg_of(TEMPLATES + f"cache: {{directory: {tmp_path}}}\n")
    synth = make_synthesizer(cfg)
    ann = parse(b'{"template": "code_blue", "vars": {"ward": "3"}, "repeat": 1, "chime": false}', cfg)
    audio = render_announcement(cfg, synth, ann)
    speech = render_announcement(cfg, synth, parse(b'{"text": "3\\u53f7\\u75c5\\u623f", "chime": false}', cfg))
    assert audio.sample_rate == 24000  # the engine's rate: the bell was resampled to it
    clip_seconds = sf.info(str(BELL)).duration + 0.25
    assert audio.duration > 2 * clip_seconds + speech.duration * 0.8
    head = audio.samples[: int(1.0 * 24000)]
    tail = audio.samples[-int(clip_seconds * 24000) : -int(clip_seconds * 24000) + 24000]
    assert np.corrcoef(head, tail)[0, 1] > 0.99  # the same bell before and after the speech
    middle = audio.samples[int(clip_seconds * 24000) : -int(clip_seconds * 24000)]
    assert np.sqrt(np.mean(middle**2)) > 0.02  # and speech between them


# ------------------------------------------------------------------------------ per language
BILINGUAL = """
engines: {zh: {type: embedded-zh}, en: {type: espeak, voice: en-us}}
languages: {zh: zh, en: en}
templates:
  code_blue:
    text: "{ward}号病房，蓝色警报"
    translations: {en: "Code blue, ward {ward}"}
    vars: {ward: str}
    before: bell
    after: bell
  code_blue_zh: {text: "{ward}号病房，蓝色警报", vars: {ward: str}, before: bell, after: bell}
  fire: {text: "火警演习", translations: {en: "Fire drill"}}
  gong: {before: bell}
"""


def test_template_translations_are_checked_at_load() -> None:
    errors = errors_of(
        BASE
        + """
engines: {zh: {type: embedded-zh}, en: {type: espeak, voice: en-us}}
languages: {en: en}
templates:
  a: {text: "{ward}号", vars: {ward: str}, translations: {en: "Ward {bed}"}}
  b: {before: bell, translations: {en: "Bell"}}
"""
    )
    assert errors == [
        "templates.a: translations.en uses {bed} but vars does not declare it",
        "templates.b: translations: a template of clips only has no text to translate",
    ]
    engines = "engines: {zh: {type: embedded-zh}, en: {type: espeak, voice: en-us}}\nlanguages: {en: en}\n"
    errors = errors_of(
        BASE
        + engines
        + 'templates:\n  c: {text: "火警", translations: {fr: "Au feu"}}\n'
        + 'schedules:\n  drill: {at: ["12:00"], text: "火警演习", translations: {de: "Feueralarm"}}\n'
    )
    assert errors == [
        "templates.c.translations.fr: no engine for this language (languages: en)",
        "schedules.drill.translations.de: no engine for this language (languages: en)",
    ]


def test_a_schedule_fires_its_translations() -> None:
    cfg = cfg_of(
        BILINGUAL + 'schedules:\n  drill: {at: ["12:00"], text: "火警演习", translations: {en: "Fire drill"}}\n'
    )
    fields = cfg.schedules["drill"].fields()
    assert fields == {"text": "火警演习", "translations": {"en": "Fire drill"}}
    a = parse(json.dumps(fields, ensure_ascii=False).encode(), cfg)
    assert a.translations == (Translation("en", "Fire drill", "en"),)


def test_a_template_speaks_its_translations_unless_the_payload_gives_its_own() -> None:
    cfg = cfg_of(BILINGUAL)
    a = parse(b'{"template": "code_blue", "vars": {"ward": "3"}}', cfg)
    assert a.text == "3号病房，蓝色警报"
    assert a.translations == (Translation("en", "Code blue, ward 3", "en"),)
    assert Announcement.from_json(a.to_json()) == a
    b = parse(json.dumps({"template": "fire", "translations": {"en": "Drill", "zh": "演习"}}).encode(), cfg)
    assert [(t.lang, t.text) for t in b.translations] == [("en", "Drill"), ("zh", "演习")]
    assert rejected({"template": "gong", "translations": {"en": "Bell"}}, cfg) == (
        "translations: only with text, or a template with text (a clip is not translated)"
    )
    assert rejected({"clip": "bell", "translations": {"en": "Bell"}}, cfg) == (
        "translations: only with text, or a template with text (a clip is not translated)"
    )


def test_a_bilingual_template_plays_clip_text_translation_clip(tmp_path: Path) -> None:
    cfg = cfg_of(BILINGUAL + f"cache: {{directory: {tmp_path}}}\n")
    synth = make_synthesizer(cfg)
    payload = {"template": "code_blue", "vars": {"ward": "3"}, "chime": False}
    both = render_announcement(cfg, synth, parse(json.dumps(payload).encode(), cfg))
    payload["template"] = "code_blue_zh"  # the same without its English
    zh_only = render_announcement(cfg, synth, parse(json.dumps(payload).encode(), cfg))
    english = render_announcement(
        cfg, synth, parse(b'{"text": "Code blue, ward 3", "engine": "en", "chime": false}', cfg)
    )
    # the English version, after half a second, is what the bilingual one has more
    extra = both.duration - zh_only.duration
    assert extra == pytest.approx(english.duration + 0.5, abs=0.6), (both.duration, zh_only.duration, english.duration)
    rate = both.sample_rate
    clip = int((sf.info(str(BELL)).duration + 0.25) * rate)
    head, tail = (
        both.samples[: rate // 2],
        both.samples[len(both.samples) - clip : len(both.samples) - clip + rate // 2],
    )
    assert np.corrcoef(head, tail)[0, 1] > 0.99  # the bell first and last: the translation is before the end clip
