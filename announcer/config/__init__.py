"""The config file: typed, frozen models and the loader with its one combined error report.

Owns: the YAML shape (``models``: the root, ``sections``: every other section,
``templates``: message templates and their variables, ``checks``: the checks across
sections), loading with ``${VAR}`` substitution (``loader``) and ``ConfigError``.
May import: ``core``, ``audio`` (chime names, clip files) and the config models that
``engines``, ``sinks`` and ``schedule`` declare in their modules. Nothing else in announcer
is imported here.
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
    HistoryConfig,
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
from .templates import TemplateConfig

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
    "HistoryConfig",
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
    "TemplateConfig",
    "WyomingConfig",
    "find_config_path",
    "is_loopback",
    "load_config",
    "parse_config",
]
