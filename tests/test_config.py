"""Config loading: every mistake reported at once with its key path and line; env substitution."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from announcer.config import ConfigError, load_config, parse_config

pytestmark = pytest.mark.unit  # the fast lane (make check)

ROOT = Path(__file__).resolve().parent.parent


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return info.value.errors


def test_example_and_demo_configs_are_valid() -> None:
    cfg = parse_config(
        (ROOT / "config" / "announcer.example.yaml").read_text(),
        env={"MQTT_PASSWORD": "s3cret", "ANNOUNCER_HTTP_TOKEN": "t" * 20},
    )
    assert cfg.mqtt.password == "s3cret"
    assert set(cfg.engines) == {"kokoro-zh", "kokoro-en"} and cfg.default_engine == "kokoro-zh"
    assert cfg.languages == {"zh": "kokoro-zh", "en": "kokoro-en"}
    assert cfg.expand_targets(["ward-3", "lobby", "bus"]) == ("lobby", "archive", "bus")
    demo = parse_config((ROOT / "config" / "demo.yaml").read_text(), env={"DEMO_MQTT_PORT": "1884", "DEMO_DIR": "/x"})
    assert demo.mqtt.port == 1884 and str(demo.speakers["wav"].directory) == "/x/wav"


def test_empty_file_gives_working_defaults() -> None:
    cfg = parse_config("")
    assert cfg.engines["zh"].type == "embedded-zh"
    assert cfg.speakers["default"].type == "sounddevice"
    assert cfg.default_targets == ("default",)
    assert cfg.mqtt.topic_prefix == "announcer" and cfg.limits.max_text_chars == 2000


def test_every_error_reported_at_once_with_paths_and_lines() -> None:
    errs = errors_of("""\
mqtt:
  port: 70000
speakers:
  a: {type: file, directory: /tmp/x}
  b: {type: nope}
  c: {type: file, directorx: 1}
defaults: {emotion: weird, speed: 5}
foo: 1
""")
    joined = "\n".join(errs)
    assert "mqtt.port:" in joined and "(line 2)" in joined
    assert any(e.startswith("speakers.b:") and "sounddevice" in e and "(line 5)" in e for e in errs)
    assert any(e.startswith("speakers.c.directorx: unknown key") for e in errs)
    assert any(e.startswith("speakers.c.directory:") for e in errs)
    assert any(e.startswith("defaults.emotion:") and "neutral, happy" in e for e in errs)
    assert any(e.startswith("defaults.speed:") for e in errs)
    assert any(e.startswith("foo: unknown key") and "(line 8)" in e for e in errs)
    assert len(errs) == 7


def test_cross_references_are_checked() -> None:
    errs = errors_of("""\
speakers:
  a: {type: file, directory: /tmp/x}
zones:
  z: [a, ghost]
  a: [a]
defaults: {engine: nope, targets: [nowhere]}
hermes: {sites: {kitchen: ghost}}
""")
    joined = "\n".join(errs)
    for expected in (
        "zones.z.1: 'ghost' is not a speaker",
        "zones.a: a speaker already has this name",
        "defaults.engine: 'nope' is not an engine",
        "defaults.targets.0: 'nowhere'",
        "hermes.sites.kitchen: 'ghost'",
    ):
        assert expected in joined


def test_env_substitution_and_unset_variable() -> None:
    cfg = parse_config("mqtt: {host: '${BROKER}', password: 'p-${PW}'}", env={"BROKER": "mq.lan", "PW": "x"})
    assert cfg.mqtt.host == "mq.lan" and cfg.mqtt.password == "p-x"
    errs = errors_of("mqtt:\n  password: ${NOT_SET}\n")
    assert errs == ["mqtt.password: environment variable NOT_SET is not set (line 2)"]


def test_names_must_be_slugs_and_yaml_errors_are_reported() -> None:
    errs = errors_of("speakers:\n  大厅: {type: file, directory: /tmp/x}\n")
    assert any(e.startswith("speakers.大厅") for e in errs)
    errs = errors_of("mqtt: [unclosed\n")
    assert errs[0].startswith("<yaml>:") and "line" in errs[0]
    assert errors_of("- a\n- b\n")[0].startswith("<root>: the config file must be a mapping")


def test_config_is_frozen(tmp_path: Path) -> None:
    p = tmp_path / "a.yaml"
    p.write_text("mqtt: {host: h}\n")
    cfg = load_config(p)
    with pytest.raises(ValidationError):  # frozen
        cfg.mqtt.host = "other"  # type: ignore[misc]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read" in info.value.errors[0]
