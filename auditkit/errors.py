"""auditkit's exceptions. Each carries the process exit code the CLI uses (DESIGN.md §6)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The process exit codes of ``auditkit`` (results.json's ``gate.exit_code`` holds the plain int)."""

    PASSED = 0  # the gate passed (verify: every file matches; diff: no change)
    FAILED = 1  # an unwaived finding at or above fail_on, or a regression (verify: a mismatch)
    USAGE = 2  # bad spec, input, command line or plugin: fix what the message names
    ERROR = 3  # a check crashed or a report failed to render: the evidence is incomplete
    NOTHING_RAN = 4  # every check was not applicable, skipped or deselected


class NotApplicable(Exception):
    """Raise inside a check when its inputs are absent or it does not apply to this subject: the
    check's status ``not_applicable``, not an error of the run (the input rooms raise it too)."""


class AuditkitError(Exception):
    """Base class. ``exit_code`` is what ``auditkit`` exits with when this escapes a command."""

    exit_code: ExitCode = ExitCode.USAGE


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
