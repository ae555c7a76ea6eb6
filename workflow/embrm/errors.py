"""Errors a user can fix. Their messages name the config key or file at fault."""


class EmbrmError(Exception):
    """Base class: caught by the CLI, printed without a traceback, exit status 2."""


class ConfigError(EmbrmError):
    """The configuration is invalid; the message starts with the offending key."""


class DataError(EmbrmError):
    """An input array or table is malformed; the message names the file."""
