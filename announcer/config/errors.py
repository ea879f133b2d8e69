"""The config's error report: ``ConfigError`` and the marker for checks across sections."""

from __future__ import annotations

# A model validator that checks across sections raises ``ValueError(CROSS_MARK + lines)``,
# each line ``key.path: message`` naming its own key; the error report splits them.
CROSS_MARK = "\x00cross\x00"


class ConfigError(Exception):
    """Every problem in a config file, one ``key.path: message`` line each."""

    def __init__(self, errors: list[str], source: str = "") -> None:
        self.errors = errors
        self.source = source
        super().__init__("\n".join(errors))
