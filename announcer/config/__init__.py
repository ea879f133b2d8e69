"""The config file: typed, frozen models and the loader with its one combined error report.

Owns: the YAML shape (``models``: the root and the checks across sections, ``sections``:
every other section), loading with ``${VAR}`` substitution (``loader``) and ``ConfigError``.
May import: ``core``, ``audio`` (chime names) and the config models that ``engines`` and
``sinks`` declare in their modules. Nothing else in announcer is imported here.
"""

from ..core.paths import DEFAULT_CACHE_DIR, DEFAULT_STATE_DIR
from .errors import CROSS_MARK, ConfigError
from .loader import find_config_path, load_config, parse_config
from .models import Config, EngineConfig, SpeakerConfig
from .sections import (
    AudioConfig,
    CacheConfig,
    DefaultsConfig,
    FleetConfig,
    HermesConfig,
    HomeAssistantConfig,
    HttpConfig,
    LimitsConfig,
    LoggingConfig,
    MqttConfig,
    PairConfig,
    QuietHoursConfig,
    ShutdownConfig,
    SiteConfig,
    SpoolConfig,
    Strict,
    TLSConfig,
    WyomingConfig,
    is_loopback,
)

__all__ = [
    "CROSS_MARK",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_STATE_DIR",
    "AudioConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "DefaultsConfig",
    "FleetConfig",
    "EngineConfig",
    "HermesConfig",
    "HomeAssistantConfig",
    "HttpConfig",
    "LimitsConfig",
    "LoggingConfig",
    "MqttConfig",
    "PairConfig",
    "QuietHoursConfig",
    "ShutdownConfig",
    "SiteConfig",
    "SpeakerConfig",
    "SpoolConfig",
    "Strict",
    "TLSConfig",
    "WyomingConfig",
    "find_config_path",
    "is_loopback",
    "load_config",
    "parse_config",
]
