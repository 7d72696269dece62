"""Errors a user can cause and fix: the entry point prints them as one line, without a traceback."""

from __future__ import annotations

import sys
from typing import Callable


class BenchError(Exception):
    """Base class of every error the harness reports to the user as a one-line message."""


class DataError(BenchError):
    """Bad or missing input data: the message names the file and, where relevant, the column."""


class ConfigError(BenchError):
    """An invalid configuration value: the message names the key and the valid choices."""


def one_line_errors(command: Callable[[], None]) -> int:
    """Run a command-line tool's work: exit status 0, or 2 with the BenchError printed as one line on stderr."""
    try:
        command()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
