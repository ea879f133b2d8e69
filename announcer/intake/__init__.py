"""Intake: from a front door's raw fields to a committed, scheduled announcement, or a rejection.

Owns: wire decoding (``wire``: bytes, JSON, stop payloads), the one parser (``parse``:
fields validated with the schema and the config, errors worded the contract's way), the
rate limit (``rate_limit``), what an announcement says (``content``: text, a template's
expansion, clips), ``Intake`` itself (``intake``: validate, spool, schedule; returns
``Accepted`` or ``Rejected`` to every front door, the ``rejected`` event emitted) and the
schedules' front door (``scheduled``: a due firing through ``Intake.accept``).
May import: ``core``, ``audio`` (chime names), ``config``, ``spool``, ``schedule`` (a firing's types).
"""
