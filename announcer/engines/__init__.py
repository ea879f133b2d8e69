"""Engines: text to audio, one clause at a time, behind one small contract (``base.Engine``).

Owns: the contract and the registry of engine types (``base``); one module per type
(``embedded_zh``, ``espeak``, ``wyoming``, ``sambert``, ``kokoro`` with its files in
``kokoro_assets``), each declaring its own config
model and importing its heavy libraries only when it loads; the supervised-engine base and
the process supervisor (``supervised``), the Wyoming client wire (``wyoming_protocol``), the
fallback wrapper (``fallback``) and the emotion presets as prosody controls (``prosody``).
May import: ``core``, ``audio``, ``text``.
"""
