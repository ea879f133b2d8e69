"""The one error type for bad user input, shared by every front door (CLI, MQTT, HTTP)."""

from __future__ import annotations

import json


class InputError(ValueError):
    """Bad input from a user: names the field and, where it helps, what is allowed.

    ``str(err)`` is ``"<field>: <message>"``; ``reason`` is a short machine-readable
    tag for events (``invalid``, ``duplicate``, ``oversize`` ...).
    """

    def __init__(self, field: str, message: str, reason: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.reason = reason


class EngineUnavailable(RuntimeError):
    """An engine cannot run here (missing package, model files, ...); the message says how to fix it."""


def shown(value: object, limit: int = 60) -> str:
    """``value`` as JSON for an error message, cut to ``limit`` characters (payloads can be huge)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
