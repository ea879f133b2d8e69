"""Message templates (``templates:``): named messages with typed variables and their own defaults.

```yaml
templates:
  code_blue:
    text: "{ward}号病房，蓝色警报"
    vars: {ward: str}                  # or {ward: {type: int, default: 3, choices: [1, 2, 3]}}
    translations: {en: "Code blue, ward {ward}"}   # spoken after the text (languages: en -> an engine)
    before: code-tone                  # a clip played before the speech (and after: ...)
    priority: emergency
    repeat: 3
```

A payload names the template and gives its variables (``{"template": "code_blue", "vars":
{"ward": "3"}}``); the template's defaults (priority, emotion, chime, repeat, targets ...)
apply where the payload leaves a field out. The text's placeholders are plain ``{name}``
(no formats, no positions, ``{{``/``}}`` for braces), each one a declared variable, and
every declared variable is used: checked at load. ``translations`` give the message in other
languages with the same placeholders (each a declared variable; one may leave a variable out);
a payload's own ``translations`` replace them. At request ``expand`` checks the values:

* ``str``: a string (a number is taken as its text), at most ``max_length`` characters;
* ``int``: an integer, or a string of one (the command line sends strings);
* ``float``: a number, or a string of one;
* ``choices``: the value (as text) must be one of them; ``default``: used when none is given.

A missing, unknown or invalid variable raises ``InputError`` whose field is ``vars.<name>``.
"""

from __future__ import annotations

import math
import re
import string
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..core.emotions import EMOTIONS, resolve_emotion
from ..core.errors import InputError, shown
from ..core.schema import (
    PRESET_FIELDS,
    Intensity,
    LangCode,
    Priority,
    Repeat,
    RepeatGap,
    Slug,
    Speed,
    Ttl,
    VarValue,
    Volume,
)
from .sections import Strict

VarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
_INT = re.compile(r"^[+-]?\d{1,18}$")
DEFAULT_KEYS = PRESET_FIELDS  # the announcement fields a template may give defaults for


class TemplateVar(Strict):
    type: Literal["str", "int", "float"] = "str"
    default: VarValue | None = None
    choices: tuple[VarValue, ...] = ()
    max_length: int = Field(100, ge=1, le=1000)  # characters of a value, as text

    def check(self, template: str, name: str, value: Any) -> str:
        """``value`` as the text it is said as; InputError naming ``vars.<name>`` otherwise."""
        field = f"vars.{name}"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InputError(field, f"must be a string or a number, got {shown(value)}")
        if self.type == "int":
            if isinstance(value, float) or (isinstance(value, str) and not _INT.match(value.strip())):
                raise InputError(field, f"must be an integer, got {shown(value)} (template {template})")
            text = str(int(value))
        elif self.type == "float":
            try:
                number = float(value)
            except ValueError:
                raise InputError(field, f"must be a number, got {shown(value)} (template {template})") from None
            if not math.isfinite(number):
                raise InputError(field, f"must be a finite number, got {shown(value)}")
            text = f"{number:g}"
        else:
            text = value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
        if len(text) > self.max_length:
            raise InputError(field, f"{len(text)} characters is over the limit of {self.max_length}", "oversize")
        allowed = [_as_text(c) for c in self.choices]
        if allowed and text not in allowed:
            raise InputError(field, f"{shown(value)} is not allowed (allowed: {', '.join(allowed)})")
        return text


def _as_text(value: VarValue) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class TemplateConfig(Strict):
    text: str | None = Field(None, min_length=1, description="what is said; {name} is a variable")
    translations: dict[LangCode, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict, description="the text in other languages, spoken after it: {en: 'Code blue, ward {ward}'}"
    )
    before: Slug | None = None  # a clip played before the speech
    after: Slug | None = None  # a clip played after it
    vars: dict[VarName, TemplateVar] = Field(default_factory=dict)
    targets: tuple[Slug, ...] | None = None
    priority: Priority | None = None
    emotion: str | None = None
    intensity: Intensity | None = None
    speed: Speed | None = None
    volume: Volume | None = None
    chime: bool | str | None = None
    repeat: Repeat | None = None
    repeat_gap: RepeatGap | None = None
    ttl: Ttl | None = None

    @field_validator("vars", mode="before")
    @classmethod
    def _shorthands(cls, v: Any) -> Any:
        """``ward: str`` is ``{type: str}``; ``ward: [1, 2, 3]`` is ``{choices: [1, 2, 3]}``."""
        if not isinstance(v, dict):
            return v
        return {
            k: {"type": d} if isinstance(d, str) else {"choices": d} if isinstance(d, list) else d for k, d in v.items()
        }

    @field_validator("targets", mode="before")
    @classmethod
    def _one_target(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("emotion")
    @classmethod
    def _emotion(cls, v: str | None) -> str | None:
        if v is not None and resolve_emotion(v)[1]:
            raise ValueError(f"unknown emotion {v!r} (allowed: {', '.join(EMOTIONS)})")
        return v

    @model_validator(mode="after")
    def _placeholders(self) -> TemplateConfig:
        if self.text is None and self.before is None and self.after is None:
            raise ValueError("a template needs text, or a clip (before/after), or both")
        used = placeholders(self.text or "")
        undeclared = [n for n in used if n not in self.vars]
        if undeclared:
            raise ValueError(f"text uses {{{undeclared[0]}}} but vars does not declare it")
        unused = [n for n in self.vars if n not in used]
        if unused:
            raise ValueError(f"vars.{unused[0]} is declared but the text does not use {{{unused[0]}}}")
        if self.translations and self.text is None:
            raise ValueError("translations: a template of clips only has no text to translate")
        for lang, translated in self.translations.items():
            try:
                names = placeholders(translated)
            except ValueError as exc:
                raise ValueError(f"translations.{lang}: {exc}") from None
            undeclared = [n for n in names if n not in self.vars]
            if undeclared:
                raise ValueError(f"translations.{lang} uses {{{undeclared[0]}}} but vars does not declare it")
        for name, var in self.vars.items():
            if var.default is not None:
                try:
                    var.check("", name, var.default)
                except InputError as exc:
                    raise ValueError(f"vars.{name}.default: {exc.message}") from None
        return self

    def expand(self, name: str, values: dict[str, Any] | None) -> tuple[str | None, dict[str, str]]:
        """The text with ``values`` filled in (None: a template of clips only) and the values as text."""
        values = dict(values or {})
        unknown = [k for k in values if k not in self.vars]
        if unknown:
            allowed = ", ".join(self.vars) or "none"
            raise InputError(f"vars.{str(unknown[0])[:40]}", f"not a variable of template {name} (allowed: {allowed})")
        given: dict[str, str] = {}
        for var_name, var in self.vars.items():
            value = values.get(var_name, var.default)
            if value is None:
                raise InputError(f"vars.{var_name}", f"required by template {name}")
            given[var_name] = var.check(name, var_name, value)
        text = self.text.format_map(given) if self.text is not None else None
        return text, given

    def expand_translations(self, given: dict[str, str]) -> dict[str, str]:
        """The translations with the checked values ``given`` (from ``expand``) filled in."""
        return {lang: text.format_map(given) for lang, text in self.translations.items()}

    def defaults(self) -> dict[str, Any]:
        """The announcement fields this template sets when a payload leaves them out."""
        out: dict[str, Any] = {}
        for key in DEFAULT_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


def placeholders(text: str) -> list[str]:
    """The ``{name}`` placeholders of ``text``, in order; ValueError for any other kind of field."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"text: {exc} (write {{{{ and }}}} for a literal brace)") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field) or spec or conversion:
            raise ValueError(f"text: {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                             "is not a plain {name} placeholder")  # fmt: skip
        if field not in names:
            names.append(field)
    return names
