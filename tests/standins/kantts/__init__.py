"""STAND-IN for KAN-TTS (tests only, see tests/standins/README.md): importable, nothing more."""
