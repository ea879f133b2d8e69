"""Sinks: where a speaker's audio goes (a sound device, WAV files, MQTT), behind ``base.Sink``.

Owns: the sink and stream contract, the settings every speaker shares (``SpeakerBase``) and
the registry of speaker types (``base``); one module per type, each declaring its config
model. Pacing, fades, chimes and loudness are the player's and the speaker chain's
(``announcer.playback``), not a sink's.
May import: ``core``, ``audio``.
"""
