"""Integrations: Home Assistant (MQTT discovery and its commands), Rhasspy Hermes, the Wyoming
TTS server (Home Assistant Assist), and an active/standby pair's member.

Owns: the hook every MQTT integration implements (``base.Integration``), ``homeassistant``
(``discovery``: the payloads as pure functions; ``bridge``: publishing them and taking
HA's commands, the schedules' sensor and pause switches included), ``hermes``
(``hermes/tts/say`` in, ``sayFinished`` out), ``wyoming`` (``voices``: the voice table;
``wire``: reading events with size limits; ``server``: the asyncio server on the live runtime)
and ``pair`` (``lease``: who leads; ``member``: the daemon's part; ``shadow``: what the other
member played).
May import: ``core``, ``audio``, ``text``, ``engines``, ``config``, ``spool``, ``intake``,
``playback``, ``mqtt``, ``schedule`` (the runner's next firings and pauses).
"""
