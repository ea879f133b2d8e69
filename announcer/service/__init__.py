"""Service: the program around the parts — command line, daemon lifecycle, reload, status, systemd.

Owns: the CLI (``cli``) and ``announcer say`` (``say``); the daemon's wiring and lifecycle
(``daemon``: components started in order, stopped in ``STOP_ORDER``), ``announcer run``'s main
loop (``runner``: signals, READY), reload (``reload``:
read, keep restart-only sections, rebuild the runtime), the status (``status``: ``P/status``
and systemd's ``STATUS=``), the watchdog (``watchdog``), sd_notify (``sd_notify``) and the
heap trim when idle (``memory``).
May import: every other package.
"""
