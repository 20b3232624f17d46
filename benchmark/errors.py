"""Errors that stand for a user's mistake: the CLI prints them as one line and exits 2."""


class UsageError(Exception):
    """A user mistake (bad flag, bad data root, impossible budget, ...).

    The message must name the problem and the fix in one line; the CLI prints it without a
    traceback and exits with status 2.
    """


class RunFailed(Exception):
    """A run stopped on an error after the checks passed; its completed cycles are saved. The
    message says what failed, what was kept and how to continue; the CLI prints it as one line
    and exits with status 1."""
