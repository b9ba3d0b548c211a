"""auditkit's exceptions. Each carries the process exit code the CLI uses (DESIGN.md §6)."""

from __future__ import annotations


class AuditkitError(Exception):
    """Base class. ``exit_code`` is what ``auditkit`` exits with when this escapes a command."""

    exit_code = 2


class SpecError(AuditkitError):
    """The audit spec is invalid (location: message). Exit code 2."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class InputError(AuditkitError):
    """A data file, model file or other input cannot be used. Exit code 2."""


class UsageError(AuditkitError):
    """The command line is wrong. Exit code 2."""


class PluginError(AuditkitError):
    """A check plugin cannot be loaded, or two checks share an id. Exit code 2."""


class VerifyError(AuditkitError):
    """A bundle does not match its manifest. Exit code 1."""

    exit_code = 1
