"""Errors that the CLI turns into one line on stderr and exit code 2 (never a traceback)."""


class ScalesimError(Exception):
    """Bad input or an unmet precondition the user can fix; str(e) is the one-line message."""

    exit_code = 2


class UsageError(ScalesimError):
    """Bad command-line arguments or parameters."""


class DataError(ScalesimError):
    """Missing or malformed data (dataset, run directory, trace, model file)."""
