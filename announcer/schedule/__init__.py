"""Schedules: the site's daily routine (shift bells, reminders, visiting hours) fired on time.

Owns: five-field cron expressions (``cron``), the schedule's config model (``model``:
cron or times and weekdays, dates, holidays, what to announce, the missed-firing policy),
wall-clock times turned into instants, DST-safe, and the firing ids (``calendar``), the
clock seam (``clock``) and the runner thread (``runner``) that hands each due firing to the
intake side it is given (``announcer.intake.scheduled`` in the daemon).
May import: ``core`` only (like ``engines`` and ``sinks``, it declares a config model that
``config`` collects; the intake is handed in, never imported).
"""
