"""The checks across sections of a config: each returns its problems, one ``key.path: message`` each.

A check reads a validated ``Config`` (every section is already well-formed) and looks at
how the sections refer to each other: names of engines, speakers, zones and chimes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..audio.chimes import BUILTIN_CHIMES

if TYPE_CHECKING:
    from .models import Config


def mqtt_password(cfg: Config) -> list[str]:
    if cfg.mqtt.password_file is None:
        return []
    errors = []
    if cfg.mqtt.password is not None:
        errors.append("mqtt.password_file: set either mqtt.password or mqtt.password_file, not both")
    try:
        if not cfg.mqtt.read_password():
            errors.append(f"mqtt.password_file: {cfg.mqtt.password_file} is empty")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        errors.append(f"mqtt.password_file: cannot read {cfg.mqtt.password_file}: {why}")
    return errors


def engines(cfg: Config) -> list[str]:
    errors = []
    if not cfg.engines:
        errors.append("engines: at least one engine is needed")
    if cfg.defaults.engine is not None and cfg.defaults.engine not in cfg.engines:
        errors.append(f"defaults.engine: {cfg.defaults.engine!r} is not an engine (have: {', '.join(cfg.engines)})")
    for lang, engine in cfg.languages.items():
        if engine not in cfg.engines:
            errors.append(f"languages.{lang}: {engine!r} is not an engine (have: {', '.join(cfg.engines)})")
    for name, ecfg in cfg.engines.items():  # supervised engines (sambert): who speaks while they are down
        fallback = getattr(ecfg, "fallback", None)
        if fallback is not None and (fallback == name or fallback not in cfg.engines):
            others = ", ".join(n for n in cfg.engines if n != name) or "none"
            errors.append(f"engines.{name}.fallback: {fallback!r} is not another engine (have: {others})")
    return errors


def zones(cfg: Config) -> list[str]:
    errors = [f"zones.{name}: a speaker already has this name" for name in sorted(set(cfg.speakers) & set(cfg.zones))]
    for zone, members in cfg.zones.items():
        if not members:
            errors.append(f"zones.{zone}: a zone needs at least one speaker")
        for i, m in enumerate(members):
            if m not in cfg.speakers:
                errors.append(f"zones.{zone}.{i}: {m!r} is not a speaker (have: {', '.join(cfg.speakers)})")
    for zone in cfg.zone_names:
        if zone not in cfg.zones:
            errors.append(f"zone_names.{zone}: not a zone (have: {', '.join(cfg.zones) or 'none'})")
    return errors


def targets(cfg: Config) -> list[str]:
    known = set(cfg.speakers) | set(cfg.zones)
    errors = [
        f"defaults.targets.{i}: {t!r} is not a speaker or zone"
        for i, t in enumerate(cfg.defaults.targets)
        if t not in known
    ]
    errors += [
        f"hermes.sites.{site}: {t!r} is not a speaker or zone" for site, t in cfg.hermes.sites.items() if t not in known
    ]
    for qi, q in enumerate(cfg.quiet_hours):
        errors += [
            f"quiet_hours.{qi}.speakers.{si}: {s!r} is not a speaker"
            for si, s in enumerate(q.speakers)
            if s not in cfg.speakers
        ]
    return errors


def chimes(cfg: Config) -> list[str]:
    names = set(cfg.chimes) | set(BUILTIN_CHIMES)
    named = [("defaults.chime", cfg.defaults.chime), ("audio.end_chime", cfg.audio.end_chime)]
    named += [(f"audio.priority_chimes.{k}", v) for k, v in cfg.audio.priority_chimes.items()]
    return [
        f"{key}: {name!r} is not a chime (have: {', '.join(sorted(names))})"
        for key, name in named
        if isinstance(name, str) and name not in names
    ]


CROSS_CHECKS: tuple[Callable[[Config], list[str]], ...] = (mqtt_password, engines, zones, targets, chimes)
