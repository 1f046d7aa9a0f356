"""The Configuration API and the embedded configuration store."""

from sidecar.configuration.service import ConfigurationAPI
from sidecar.configuration.store import CONFIGURATION_TYPE, Item, SqliteConfigurationStore, UpdateEvent

__all__ = ["CONFIGURATION_TYPE", "ConfigurationAPI", "Item", "SqliteConfigurationStore", "UpdateEvent"]
