"""auditkit: pre-deployment audits of PyTorch models and their data.

The public API for writing checks is importable from here at no cost (no torch, ART, Great
Expectations or WeasyPrint is imported until a check or renderer needs it)::

    from auditkit import check, Outcome, Metric, Finding, NotApplicable, RunContext

``run_audit`` runs an audit from Python and returns ``AuditResults``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"


# Installed, checks/ and report_templates/ are the packages auditkit.checks and
# auditkit.report_templates (pyproject package-dir). Imported straight from a source checkout
# (`python -m ...` in the repo root puts the checkout first on sys.path), map exactly those two
# folders, nothing else of the checkout.
def _map_checkout_packages() -> None:
    import importlib.util
    import sys
    from pathlib import Path

    here = Path(__file__).absolute().parent  # not resolve(): an editable install links this file
    for name in ("checks", "report_templates"):
        folder = here.parent / name
        if (here / name).is_dir() or not (folder / "__init__.py").is_file():
            continue
        spec = importlib.util.spec_from_file_location(
            f"auditkit.{name}", folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        globals()[name] = module


_map_checkout_packages()

from auditkit.engine.check import (  # noqa: E402
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
from auditkit.errors import AuditkitError, ExitCode, InputError, SpecError  # noqa: E402

if TYPE_CHECKING:
    from auditkit.engine.audit import Overrides, run_audit
    from auditkit.engine.context import RunContext
    from auditkit.results.document import AuditResults
    from auditkit.spec.expr import slice_mask

__all__ = [
    "DEFAULT_MIN_ROWS",
    "SEVERITIES",
    "AuditResults",
    "AuditkitError",
    "CheckInfo",
    "ExitCode",
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
    "run_audit": "auditkit.engine.audit",
    "Overrides": "auditkit.engine.audit",
    "RunContext": "auditkit.engine.context",
    "AuditResults": "auditkit.results.document",
    "slice_mask": "auditkit.spec.expr",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auditkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
