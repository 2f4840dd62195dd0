"""Errors that mean "the input is wrong": the CLI maps them to exit code 2, the app to a clear message."""


class UserInputError(ValueError):
    """Bad input from a user (a file, a flag, a setting). The message names the problem and what to do."""


class DataError(UserInputError):
    """A data source that cannot be read or does not have the expected form."""


class CheckpointError(UserInputError):
    """A checkpoint file that is refused: not ours, corrupt, unsafe, or of another format version."""


class ConfigError(UserInputError):
    """A model or training setting out of range or inconsistent with the data."""


class QuotaError(UserInputError):
    """A student's share of the server is used up (models kept, disk, jobs at once): the message says which and
    what to do."""
