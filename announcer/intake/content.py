"""What an announcement says: its ``text``, a template's expansion, or a recorded clip.

A payload gives exactly one of ``text``, ``template`` (with ``vars``) or ``clip``. This module
checks each against the config and turns the result into the announcement's text and
``parts`` (``announcer.core.announcement``): a clip alone is ``((CLIP, name),)``, a template
with clips around its speech ``((CLIP, before), (SAY, text), (CLIP, after))``.

Rules:

* A template's defaults (``announcer.config.templates``) fill the fields the payload leaves
  out, before anything else does (the Home Assistant default emotion, ``defaults.*``), and
  are checked like the payload's own fields.
* Errors name the field: ``template: unknown template 'x' (allowed: ...)``, ``vars.ward:
  required by template code_blue``, ``clip: unknown clip 'x' (allowed: ...)``, and for two of
  text, template and clip at once ``clip: give one of text, template or clip (not text and clip)``.
* A template's text is cleaned and limited like any text (``limits.max_text_chars``).
* ``translations`` (the announcement in other languages) are cleaned and limited like the text;
  each language needs an engine in ``languages``. A template's own translations, expanded with
  the same variables, are used when the payload gives none.
"""

from __future__ import annotations

import re
from typing import Any

from ..config import Config
from ..core.announcement import CLIP, SAY, Translation
from ..core.errors import InputError, shown

_MARKUP = re.compile(r"<[^<>]{0,200}>")  # SSML/HTML-like tags: never spoken, never passed to an engine
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])")
SAID = ("text", "template", "clip")


def clean_text(text: str) -> str:
    """Strip markup and control characters (bidi overrides, zero-width) and collapse whitespace."""
    text = _CONTROL.sub("", _MARKUP.sub(" ", text))
    text = " ".join(text.split())
    return _CJK_GAP.sub("", text)


def checked_text(value: str, cfg: Config) -> str:
    text = clean_text(value)
    if not text:
        raise InputError("text", "must not be empty (after removing markup and control characters)")
    if len(text) > cfg.limits.max_text_chars:
        raise InputError("text", f"{len(text)} characters is over the limit of {cfg.limits.max_text_chars}", "oversize")
    return text


def with_template_defaults(raw: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """``raw`` with the named template's defaults where ``raw`` has no value (unchanged without one)."""
    tpl = cfg.templates.get(raw["template"]) if isinstance(raw.get("template"), str) else None
    if tpl is None:
        return raw
    out = dict(raw)
    for key, value in tpl.defaults().items():
        if out.get(key) is None:
            out[key] = value
    return out


def check_text(value: str | None, raw: dict[str, Any], cfg: Config) -> str | None:
    if value is None:
        if raw.get("template") is None and raw.get("clip") is None:
            raise InputError("text", "required (a non-empty string)")
        return None
    return checked_text(value, cfg)


def check_template(value: str | None, raw: dict[str, Any], cfg: Config) -> str | None:
    _one_said("template", raw)
    if value is not None and value not in cfg.templates:
        raise InputError("template", f"unknown template {shown(value)} (allowed: {', '.join(cfg.templates) or 'none'})")
    return value


def check_vars(value: dict[str, Any] | None, template: str | None, cfg: Config) -> dict[str, str]:
    """The template's variables as text (defaults filled in); its expanded text is checked too."""
    if template is None:
        if value is not None:
            raise InputError("vars", "only with a template (give template too)")
        return {}
    text, given = cfg.templates[template].expand(template, value)
    if text is not None:
        checked_text(text, cfg)
    return given


def check_clip(value: str | None, raw: dict[str, Any], cfg: Config) -> str | None:
    _one_said("clip", raw)
    if value is not None and value not in cfg.clips:
        raise InputError("clip", f"unknown clip {shown(value)} (allowed: {', '.join(cfg.clips) or 'none'})")
    return value


def _one_said(name: str, raw: dict[str, Any]) -> None:
    if raw.get(name) is None:
        return
    earlier = [k for k in SAID[: SAID.index(name)] if raw.get(k) is not None]
    if earlier:
        raise InputError(name, f"give one of text, template or clip (not {earlier[0]} and {name})")


def said(fields: dict[str, Any], cfg: Config) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``(text, parts)`` of checked fields: the text to show (and say), and the pieces when not just it."""
    if fields["clip"] is not None:
        return "", ((CLIP, fields["clip"]),)
    name = fields["template"]
    if name is None:
        return fields["text"], ()
    tpl = cfg.templates[name]
    text, _ = tpl.expand(name, fields["vars"])
    text = checked_text(text, cfg) if text is not None else ""
    if tpl.before is None and tpl.after is None:
        return text, ()
    parts = [(CLIP, tpl.before)] if tpl.before else []
    parts += [(SAY, text)] if text else []
    parts += [(CLIP, tpl.after)] if tpl.after else []
    return text, tuple(parts)


def check_translations(value: dict[str, str] | None, fields: dict[str, Any], cfg: Config) -> tuple[Translation, ...]:
    """Each translation cleaned like the text and given its language's engine (``languages`` in the
    config); without any in the payload, the template's (``fields``: the fields checked so far)."""
    tpl = cfg.templates[fields["template"]] if fields.get("template") is not None else None
    if value is None and tpl is not None:
        value = tpl.expand_translations(fields["vars"]) or None
    if value is None:
        return ()
    if fields.get("text") is None and (tpl is None or tpl.text is None):
        raise InputError("translations", "only with text, or a template with text (a clip is not translated)")
    out = []
    for lang, text in value.items():
        engine = cfg.languages.get(lang)
        if engine is None:
            have = ", ".join(cfg.languages) or "none"
            raise InputError(
                "translations", f"no engine for language {lang[:20]!r} (configured: {have}; map it in languages)"
            )
        cleaned = clean_text(text)
        if not cleaned:
            raise InputError(
                "translations", f"{lang}: must not be empty (after removing markup and control characters)"
            )
        if len(cleaned) > cfg.limits.max_text_chars:
            raise InputError(
                "translations",
                f"{lang}: {len(cleaned)} characters is over the limit of {cfg.limits.max_text_chars}",
                "oversize",
            )
        out.append(Translation(lang, cleaned, engine))
    return tuple(out)
