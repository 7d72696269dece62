"""Errors a user can cause and fix: the entry point prints them as one line, without a traceback."""

from __future__ import annotations


class BenchError(Exception):
    """Base class of every error the harness reports to the user as a one-line message."""


class DataError(BenchError):
    """Bad or missing input data: the message names the file and, where relevant, the column."""


class ConfigError(BenchError):
    """An invalid configuration value: the message names the key and the valid choices."""
