"""STAND-IN for ModelScope, used only by announcer's tests (see tests/standins/README.md).

Not the real ``modelscope`` package: it implements the few names the Sambert worker
touches, with the same call shapes, and synthesizes tones instead of speech.
"""

__version__ = "0.0.0+standin"
