"""Loading a config file: YAML, ``${ENV}`` substitution and one combined error report.

* YAML is read with the safe loader; ``${VAR}`` in any string is replaced from the
  environment (an unset variable is an error at that key).
* Unknown keys are errors. Every error is reported at once, one line each, as
  ``key.path: message (line N)``.
* The models live in ``announcer.config.models`` and ``.sections``; the package
  (``announcer.config``) re-exports what the rest of the program uses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..engines.base import ENGINE_MODULES
from ..sinks.base import SINK_MODULES
from .errors import CROSS_MARK, ConfigError
from .models import Config

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(value: Any, path: str, errors: list[str], env: dict[str, str]) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                errors.append(f"{path or '<root>'}: environment variable {name} is not set")
                return ""
            return env[name]

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else str(k), errors, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{path}.{i}" if path else str(i), errors, env) for i, v in enumerate(value)]
    return value


def _line_index(text: str) -> dict[str, int]:
    """Map dotted key paths to 1-based YAML line numbers (best effort)."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: Any, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = f"{path}.{k.value}" if path else str(k.value)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                key = f"{path}.{i}" if path else str(i)
                lines[key] = v.start_mark.line + 1
                walk(v, key)

    if root is not None:
        walk(root, "")
    return lines


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    # drop the discriminator tag pydantic inserts for tagged unions (e.g. speakers.x.file.directory)
    parts = [str(p) for p in loc]
    cleaned: list[str] = []
    for i, p in enumerate(parts):
        if i >= 2 and parts[i - 2] in ("engines", "speakers") and (p in ENGINE_MODULES or p in SINK_MODULES):
            continue
        cleaned.append(p)
    return ".".join(cleaned)


def _format_errors(exc: ValidationError, lines: dict[str, int]) -> list[str]:
    out: list[str] = []
    for err in exc.errors():
        msg = str(err.get("msg", ""))
        if CROSS_MARK in msg:
            for line in msg.split(CROSS_MARK, 1)[1].splitlines():
                key = line.split(":", 1)[0]
                out.append(_with_line(line, key, lines))
            continue
        path = _loc_to_path(tuple(err["loc"]))
        etype = err.get("type")
        if etype == "extra_forbidden":
            msg = "unknown key"
        elif etype == "union_tag_invalid":
            msg = msg.replace("Input tag", "type").replace("found using 'type'", "")
        elif etype == "union_tag_not_found":
            msg = "missing 'type'"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        msg = " ".join(msg.split())
        out.append(_with_line(f"{path or '<root>'}: {msg}", path, lines))
    return out


def _with_line(message: str, path: str, lines: dict[str, int]) -> str:
    probe = path
    while probe:
        if probe in lines:
            return f"{message} (line {lines[probe]})"
        probe = probe.rpartition(".")[0]
    return message


def parse_config(
    text: str, source: str = "<string>", env: dict[str, str] | None = None, base_dir: Path | None = None
) -> Config:
    """Validate YAML text; raise ConfigError with every problem found. ``base_dir`` (the config
    file's directory): where relative paths of ``clips`` and ``chimes`` are (else the working directory)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError([f"<yaml>: {getattr(exc, 'problem', None) or exc}{where}"], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["<root>: the config file must be a mapping of sections (mqtt:, engines:, ...)"], source)
    errors: list[str] = []
    data = _substitute(data, "", errors, dict(os.environ) if env is None else env)
    if base_dir is not None:
        data = _sounds_beside(data, base_dir)
    lines = _line_index(text)
    errors = [_with_line(e, e.split(":", 1)[0], lines) for e in errors]
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(errors + _format_errors(exc, lines), source) from None
    if errors:
        raise ConfigError(errors, source)
    return cfg


def _sounds_beside(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Relative paths of ``clips`` and ``chimes`` made relative to ``base_dir``: the sound files that
    ship with a config live beside it (``clips/bell.flac`` next to ``announcer.yaml``)."""
    out = dict(data)
    for section in ("clips", "chimes"):
        entries = data.get(section)
        if isinstance(entries, dict):
            out[section] = {
                k: str(base_dir / v) if isinstance(v, str) and v and not Path(v).expanduser().is_absolute() else v
                for k, v in entries.items()
            }
    return out


def find_config_path(explicit: str | None) -> Path | None:
    """``-c`` if given, else ``$ANNOUNCER_CONFIG``, ``./announcer.yaml``, ``/etc/announcer/announcer.yaml``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("ANNOUNCER_CONFIG")
    if env:
        return Path(env)
    for cand in (Path("announcer.yaml"), Path("/etc/announcer/announcer.yaml")):
        if cand.exists():
            return cand
    return None


def load_config(path: str | os.PathLike[str] | None, required: bool = True) -> Config:
    """Load a config file, or built-in defaults when ``path`` is None and not ``required``."""
    if path is None:
        if required:
            raise ConfigError(
                [
                    "<config>: no config file (use -c, $ANNOUNCER_CONFIG, ./announcer.yaml "
                    "or /etc/announcer/announcer.yaml)"
                ]
            )
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"<config>: cannot read {p}: {exc.strerror or exc}"], str(p)) from None
    return parse_config(text, str(p), base_dir=p.parent)
