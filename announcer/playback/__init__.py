"""Playback: schedule, synthesize, play — from a queued announcement to samples on each speaker.

Owns: the runtime a config turns into and its live holder (``runtime``); the scheduler
(``scheduler``: preemption, expiry, stop, drain, reload, a start gate; ``handover``: resume,
release and retire when a pair's leader changes) over thread-free per-speaker queues
(``queues``) and the ledger of who still owes what (``ledger``); one player per speaker
(``player``) with a deadline on every sink call (``sink_guard``); shared renders
(``render_pool``) from the synthesizer (``synthesizer``: engine + clause cache
(``clause_cache``) + fallback); the speaker chain (``speaker_chain``: chime, loudness,
volume, limiter); quiet hours (``quiet_hours``); a whole announcement rendered to one
``Audio`` without speakers (``offline``: ``say --out``, ``/tts``).
May import: ``core``, ``audio``, ``text``, ``engines``, ``sinks``, ``config``, ``spool``.
"""
