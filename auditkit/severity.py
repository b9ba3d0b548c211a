"""The severity scale of findings and of the gate: one vocabulary for every room.

A root module like ``errors`` and ``numbers``: the spec validates ``gate.fail_on`` and
``checks.severity`` with it, the engine records findings with it, the gate ranks them and the
reports order them by it. It imports nothing from auditkit.
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")


def severity_rank(sev: str) -> int:
    """0 for info up to 4 for critical."""
    return SEVERITIES.index(sev)  # type: ignore[arg-type]
