"""Preflight hooks of the data and evaluation checks: refuse a spec before the audit runs (exit 2).

``data.slices`` (AK-PERF-004, AK-DEPLOY-001) and ``data.expectations`` (AK-DQ-001/002) are inputs
that only these checks read; a typo in them used to error the check after the audit had run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from auditkit import InputError, slice_mask
from auditkit.toolkit import ColumnError, unsafe_row_condition

if TYPE_CHECKING:
    from auditkit.engine.check import Preflight


def slices_preflight(pf: Preflight) -> None:
    """Each ``data.slices`` expression names existing columns and evaluates on the test split (else
    the first split). The syntax was whitelisted with the spec; nothing here runs Python."""
    slices = dict(pf.spec.data.slices) if pf.spec is not None and pf.spec.data is not None else {}
    if not slices or not pf.splits:
        return
    split = "test" if "test" in pf.splits else pf.splits[0]
    frame = pf.frame(split)
    for name, source in slices.items():
        where = f"data.slices.{name}"
        try:
            slice_mask(source, frame)
        except ColumnError as err:
            raise InputError(
                f"{where}: unknown column {err.column!r} in {source[:80]!r} on the {split} split{err.hint}"
            ) from None
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(f"{where}: cannot evaluate {source!r} on the {split} split: {first}") from None


def expectations_preflight(pf: Preflight) -> None:
    """``data.expectations`` is a JSON Great Expectations suite (an object with a list
    ``expectations``) and no expectation has a ``row_condition`` that could run code."""
    rel = pf.spec.data.expectations if pf.spec is not None and pf.spec.data is not None else None
    if not rel:
        return
    path = Path(rel).expanduser()
    if not path.is_absolute():
        if pf.base is None:
            return  # an in-memory audit: the check says the path cannot be resolved
        path = Path(pf.base) / path
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"data.expectations: {path.name} is not valid JSON ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise InputError(
            f"data.expectations: {path.name} is not a Great Expectations suite "
            "(a JSON object with a list 'expectations')"
        )
    for i, e in enumerate(doc["expectations"]):
        why = unsafe_row_condition(e.get("kwargs") if isinstance(e, dict) else None)
        if why:  # GX would run it through DataFrame.query, which evaluates Python
            raise InputError(f"data.expectations: {path.name}: expectation {i}: {why}")
