"""The spool: what the daemon keeps on disk about announcements and its own settings.

Owns: the durable store of accepted announcements and who still owes them (``store``,
SQLite, committed before the broker is acknowledged) and the runtime settings Home
Assistant changes (``settings``: default emotion, master volume).
May import: ``core``.
"""
