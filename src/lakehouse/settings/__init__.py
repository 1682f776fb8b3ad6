"""The platform's settings: ``lakehouse.yaml``, its profiles and ``LAKEHOUSE_*``
variables, read into one validated ``Settings`` object that every command and the server
use."""

from lakehouse.settings.load import (
    CONFIG_ENV,
    PROFILE_ENV,
    LoadedSettings,
    Problem,
    SettingsError,
    find_config,
    load_settings,
)
from lakehouse.settings.model import MaintenancePolicy, Settings, parse_duration

__all__ = [
    "CONFIG_ENV",
    "PROFILE_ENV",
    "LoadedSettings",
    "MaintenancePolicy",
    "Problem",
    "Settings",
    "SettingsError",
    "find_config",
    "load_settings",
    "parse_duration",
]
