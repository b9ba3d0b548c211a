"""Helpers shared by the built-in evaluation checks (private: plugins use ``auditkit.toolkit``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auditkit import Finding, NotApplicable, Outcome, SpecError, slice_mask
from auditkit.toolkit import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext
else:
    pd = lazy("pandas")


def finite(v: float | None) -> float | None:
    """A metric as it goes into evidence: full precision (renderers round), None for NaN/inf (JSON has no NaN)."""
    return None if v is None or not np.isfinite(v) else float(v)


def output_problems(ctx: RunContext, *splits: str) -> tuple[Outcome | None, list[Finding]]:
    """Findings for NaN/inf model outputs: an Outcome to return at once when every row is broken."""
    findings = []
    for split in splits:
        p = ctx.predictions(split)
        bad = ~np.isfinite(p.proba).all(axis=1)
        if len(bad) and bad.all():
            msg = f"the model outputs NaN/inf probabilities for all {len(bad)} {split} rows: nothing can be measured"
            return Outcome(findings=[Finding(msg, key="non-finite outputs")], summary=msg), []
        if bad.any():
            findings.append(
                Finding(
                    f"the model outputs NaN/inf probabilities for {int(bad.sum())} of {len(bad)} "
                    f"{split} rows; they are left out of the metrics",
                    key=f"non-finite outputs ({split})",
                )
            )
    return None, findings


def labelled(ctx: RunContext, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(y, proba, row mask, rows dropped) for the rows of `split` whose label the model knows
    (rows with non-finite outputs are left out too; `output_problems` reports them)."""
    p = ctx.predictions(split)
    if p.y is None:
        raise NotApplicable(f"the {split} split has no labels")
    mask = (p.y >= 0) & (p.y < p.proba.shape[1]) & np.isfinite(p.proba).all(axis=1)
    if not mask.any():
        raise NotApplicable(f"the {split} split has no rows with a known label")
    return p.y[mask], p.proba[mask], mask, int((~mask).sum())


def slice_masks(
    ctx: RunContext, split: str, *, numeric_bins: int = 4, max_levels: int = 50
) -> dict[str, tuple[str, np.ndarray]]:
    """{slice name: (attribute, boolean mask)} over sensitive columns, categorical features and
    `data.slices` expressions. Numeric sensitive columns are cut into quantile bins of train."""
    ds = ctx.dataset(split)
    frame = ds.frame
    out: dict[str, tuple[str, np.ndarray]] = {}
    cols = list(dict.fromkeys(list(ds.roles.sensitive) + list(ds.categorical)))
    for col in cols:
        if col not in frame:
            continue
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and s.nunique() > max(numeric_bins, 10):
            ref = ctx.dataset("train").frame[col] if "train" in ctx.splits() else s
            edges = np.unique(
                np.nanquantile(pd.to_numeric(ref, errors="coerce"), np.linspace(0, 1, numeric_bins + 1))
            )
            cut = pd.cut(s, bins=np.r_[-np.inf, edges[1:-1], np.inf])
            s = cut.astype(str)
        values = s.astype(str).where(s.notna(), "<missing>")
        levels = values.value_counts()
        for level in levels.index[:max_levels]:
            out[f"{col}={level}"] = (col, (values == level).to_numpy())
    spec = ctx.spec
    queries = dict(spec.data.slices) if spec is not None else {}
    for name, expr in queries.items():
        try:
            mask = slice_mask(expr, frame)  # auditkit's whitelisted expressions, never pandas.query
        except Exception as err:
            raise SpecError(f"data.slices.{name}: cannot evaluate {expr!r}: {err}") from None
        out[f"slice:{name}"] = ("user slice", mask)
    return out
