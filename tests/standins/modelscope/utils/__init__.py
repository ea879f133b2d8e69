"""STAND-IN for ``modelscope.utils`` (tests only)."""
