"""Exceptions with messages meant for the user (the CLI prints them without a traceback)."""


class CifarError(Exception):
    """Base class for errors the user can fix; the message says what is wrong and how."""


class DataError(CifarError):
    """A data set could not be loaded or failed validation."""


class ConfigError(CifarError):
    """A configuration value is unknown, of the wrong type or out of range."""


class ModelError(CifarError):
    """A model could not be created or loaded."""


class RunFileError(CifarError):
    """A file of a run folder is missing, unreadable or not what it should hold."""
