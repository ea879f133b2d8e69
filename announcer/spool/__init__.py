"""The spool: what the daemon keeps on disk about announcements and its own settings.

Owns: the durable store of accepted announcements and who still owes them (``store``,
SQLite, committed before the broker is acknowledged, with its schema versions), the audit
trail in the same database (``history``: recording and pruning; ``history_query``:
filters, JSON records, CSV) and the runtime settings Home Assistant changes
(``settings``: default emotion, master volume, paused schedules).
May import: ``core``.
"""
