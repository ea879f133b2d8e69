"""The vocabulary every other package speaks: announcements, their schema, events, errors.

Owns: the ``Announcement`` value (``announcement``), the one payload schema and its types
(``schema``), the typed events and the event bus (``events``), the error types
(``errors``), emotion names and aliases (``emotions``), atomic file writes and private modes (``files``),
rate-limited log lines (``ratelog``) and the default state and cache directories (``paths``).
May import: nothing else of announcer (only the standard library and pydantic).
"""
