"""Exceptions that reach the user as one line, naming the input and what to do."""


class EmoheadError(Exception):
    """Base class: the CLI and stage runner print the message alone, no traceback."""


class ConfigError(EmoheadError):
    """params.yaml (or a -S override) has an unknown key or a value of the wrong type."""


class InputError(EmoheadError):
    """An input file is missing, unreadable or unusable."""


class TooManyFailuresError(EmoheadError):
    """More clips failed than the stage's tolerance allows."""


class TrainingDivergedError(EmoheadError):
    """The loss became NaN or infinite."""
