"""Integrations: Home Assistant (MQTT discovery and its commands), Rhasspy Hermes, the Wyoming
TTS server (Home Assistant Assist), and an active/standby pair's member.

Owns: the hook every MQTT integration implements (``base.Integration``), ``homeassistant``
(``discovery``: the payloads as pure functions; ``bridge``: publishing them and taking
HA's commands), ``hermes`` (``hermes/tts/say`` in, ``sayFinished`` out) and ``wyoming``
(``voices``: the voice table; ``server``: the asyncio server on the live runtime), ``pair``
(``lease``: who leads; ``member``: the daemon's part; ``shadow``: what the other member played).
May import: ``core``, ``audio``, ``text``, ``engines``, ``config``, ``spool``, ``intake``,
``playback``, ``mqtt``.
"""
