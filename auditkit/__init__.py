"""auditkit: pre-deployment audits of PyTorch models and their data.

The public API for writing checks is importable from here at no cost (no torch, ART, Great
Expectations or WeasyPrint is imported until a check or renderer needs it)::

    from auditkit import check, Outcome, Metric, Finding, NotApplicable, RunContext

``run_audit`` runs an audit from Python and returns ``AuditResults``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Installed, checks/ and report_templates/ are mapped to auditkit.checks and
# auditkit.report_templates (pyproject package-dir). When this package is imported straight from a
# source checkout (python run in the repo root puts it first on sys.path), resolve them there too.
_here = __import__("pathlib").Path(__file__).resolve().parent
if not (_here / "checks").is_dir() and (_here.parent / "checks" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821  (module __path__)
del _here

from auditkit.check import (  # noqa: E402
    DEFAULT_MIN_ROWS,
    SEVERITIES,
    CheckInfo,
    Finding,
    Metric,
    NotApplicable,
    Outcome,
    Skipped,
    check,
    check_info,
    require_rows,
)
from auditkit.errors import AuditkitError, InputError, SpecError  # noqa: E402

if TYPE_CHECKING:
    from auditkit.audit import Overrides, run_audit
    from auditkit.context import RunContext
    from auditkit.expr import slice_mask
    from auditkit.results import AuditResults

__all__ = [
    "DEFAULT_MIN_ROWS",
    "SEVERITIES",
    "AuditResults",
    "AuditkitError",
    "CheckInfo",
    "Finding",
    "InputError",
    "Metric",
    "NotApplicable",
    "Outcome",
    "Overrides",
    "RunContext",
    "SpecError",
    "Skipped",
    "__version__",
    "check",
    "check_info",
    "require_rows",
    "run_audit",
    "slice_mask",
]

_LAZY = {
    "run_audit": "auditkit.audit",
    "Overrides": "auditkit.audit",
    "RunContext": "auditkit.context",
    "AuditResults": "auditkit.results",
    "slice_mask": "auditkit.expr",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auditkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
