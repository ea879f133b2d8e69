"""announcer: a self-hosted voice-announcement daemon."""

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    """``__version__`` from the installed distribution, looked up on first use (importlib.metadata costs ~40 ms)."""
    if name != "__version__":
        raise AttributeError(f"module 'announcer' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("announcer")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
