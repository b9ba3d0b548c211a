"""Built-in check: feature drift from train to the evaluation and production splits (AK-DRIFT-001)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from auditkit import Finding, Metric, NotApplicable, Outcome, check
from auditkit.toolkit.hashing import text_codes
from auditkit.toolkit.imports import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext, Severity
else:
    pd = lazy("pandas")  # imported when a check first needs it: `auditkit checks` stays fast

MAX_ROWS = 50
_EPS = 1e-4  # PSI smoothing of empty bins


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index of two histograms (counts), empty bins smoothed by _EPS."""
    p = np.maximum(p / max(p.sum(), 1), _EPS)
    q = np.maximum(q / max(q.sum(), 1), _EPS)
    return float(((q - p) * np.log(q / p)).sum())


def numeric_drift(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Exact 1-Wasserstein and Kolmogorov–Smirnov statistics from the merged empirical CDFs.

    W1 is normalised by the train standard deviation (the pooled one if train is constant), so
    0.1 means the distributions are a tenth of a standard deviation of mass transport apart.
    """
    from scipy.special import kolmogorov

    sa, sb = np.sort(a), np.sort(b)
    both = np.sort(np.concatenate([sa, sb]))
    fa = np.searchsorted(sa, both, side="right") / len(sa)
    fb = np.searchsorted(sb, both, side="right") / len(sb)
    gap = np.abs(fa - fb)
    w1 = float((gap[:-1] * np.diff(both)).sum())
    ks = float(gap.max())
    en = len(sa) * len(sb) / (len(sa) + len(sb))
    p = float(kolmogorov(ks * np.sqrt(en))) if ks > 0 else 1.0
    scale = float(np.std(sa))
    if not scale > 0:
        scale = float(np.std(both))
    return {"w1_norm": w1 / scale if scale > 0 else 0.0, "ks": ks, "p": p}


@check(
    id="AK-DRIFT-001",
    area="data",
    title="Feature drift from train to test and production, by effect size",
    requires=("train", "test|validation|production"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.4", "MEASURE 2.5", "MANAGE 4.1"),
    tags=("data", "drift"),
)
def feature_drift(
    ctx: RunContext,
    /,
    *,
    max_wasserstein: float = 0.1,
    max_js: float = 0.1,
    max_drift_share: float = 0.0,
    alpha: float = 0.01,
    min_rows: int = 50,
    max_levels: int = 50,
    splits: list[str] = ["validation", "test", "production"],  # noqa: B006 - JSON-native, never mutated
) -> Outcome:
    """Measures, per feature, how far its distribution moved from train to each other split.

    Effect sizes decide: numeric features by the 1-Wasserstein distance in units of the train
    standard deviation, categorical ones by the Jensen–Shannon distance (base 2, 0..1) of their
    level shares (the ``max_levels`` most frequent train levels, the rest pooled, missing values a
    level). The population stability index (PSI, train deciles or levels, missing values a bin)
    is reported beside them. A feature counts as drifted only when its effect size exceeds the
    threshold *and* a test (Kolmogorov–Smirnov or chi-square) rejects equality after
    Benjamini–Hochberg control of the false discovery rate at ``alpha`` over all features and
    splits: at scale every p-value is tiny, so the effect size is the verdict; on small samples
    the test keeps noise from passing as drift. Features with fewer than ``min_rows`` non-missing
    values in either split are not assessed (and listed). The dataset-level metric is the share
    of assessed features that drifted.

    Parameters
    ----------
    max_wasserstein: largest acceptable normalised Wasserstein distance of a numeric feature.
    max_js: largest acceptable Jensen–Shannon distance of a categorical feature.
    max_drift_share: largest acceptable share of drifted features per split.
    alpha: false discovery rate for the Benjamini–Hochberg-controlled tests.
    min_rows: fewest non-missing values per split for a feature to be assessed.
    max_levels: categorical levels kept apart (by train frequency); the rest are pooled.
    splits: splits compared with train (those absent are skipped; ood is left out on purpose).
    """
    from scipy.stats import false_discovery_control

    train = ctx.dataset("train")
    others = [s for s in splits if s in ctx.splits() and s != "train"]
    if not others:
        raise NotApplicable(f"none of the splits {splits} is present")
    if len(train) == 0:
        raise NotApplicable("the train split has no rows")
    # compute: one row per (split, feature) with its effect size, PSI and test p-value
    rows: list[dict[str, Any]] = []
    skipped: list[list[Any]] = []
    for split in others:
        other = ctx.dataset(split)
        for f in train.features:
            if f not in other.frame:
                continue
            if f in train.categorical:
                row, n = _categorical_row(train.frame[f], other.frame[f], max_levels, min_rows)
                threshold = max_js
            else:
                row, n = _numeric_row(train.frame[f], other.frame[f], min_rows)
                threshold = max_wasserstein
            if row is None:
                skipped.append([split, f, n])
            else:
                rows.append({"split": split, "feature": f, **row, "threshold": threshold, "n": n})
    if not rows:
        raise NotApplicable(f"no feature has {min_rows} non-missing values in train and another split")
    # judge: effect size over its threshold and a Benjamini–Hochberg-controlled test
    q = false_discovery_control(np.clip([r["p"] for r in rows], 0.0, 1.0), method="bh")
    for r, qv in zip(rows, q, strict=True):
        r["q"] = float(qv)
        r["drifted"] = bool(r["effect"] > r["threshold"] and qv < alpha)
    metrics, findings, parts, plots = [], [], [], []
    for split in others:
        mine = [r for r in rows if r["split"] == split]
        if mine:
            metric, found, part, plot = _split_verdict(split, mine, max_drift_share)
            metrics.append(metric)
            findings += found
            parts.append(part)
            plots.append(plot)
    # evidence
    generated = [
        Finding(m.describe_failure(), key=m.name, metric=m.name) for m in metrics if m.passed is False
    ]
    return Outcome(
        metrics=metrics, findings=generated + findings, summary="; ".join(parts),
        evidence=_drift_evidence(rows, skipped, plots),
    )  # fmt: skip


def _categorical_row(
    s_tr: pd.Series, s_ot: pd.Series, max_levels: int, min_rows: int
) -> tuple[dict[str, Any] | None, int]:
    """Jensen–Shannon distance of the level shares (the ``max_levels`` most frequent train levels,
    the rest pooled, missing a level), PSI and a chi-square p-value; None when a side has fewer
    than ``min_rows`` values. The second value is the other split's count (the smaller when skipped)."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    codes, texts = text_codes(pd.concat([s_tr, s_ot], ignore_index=True))
    c_tr, c_ot = codes[: len(s_tr)], codes[len(s_tr) :]
    freq = np.bincount(c_tr[c_tr >= 0], minlength=len(texts))
    keep = np.argsort(-freq, kind="stable")[:max_levels]
    keep = keep[freq[keep] > 0]
    lut = np.full(len(texts) + 1, len(keep), dtype=np.int64)  # pooled "other"
    lut[keep] = np.arange(len(keep))
    lut[-1] = len(keep) + 1  # missing (code -1 picks the last entry)
    h_tr = np.bincount(lut[c_tr], minlength=len(keep) + 2).astype(float)
    h_ot = np.bincount(lut[c_ot], minlength=len(keep) + 2).astype(float)
    n_a, n_b = int(h_tr.sum()), int(h_ot.sum())
    if min(n_a, n_b) < min_rows:
        return None, min(n_a, n_b)
    effect = float(jensenshannon(h_tr / n_a, h_ot / n_b, base=2))
    table = np.vstack([h_tr, h_ot])
    table = table[:, table.sum(axis=0) > 0]
    p = float(chi2_contingency(table)[1]) if table.shape[1] > 1 else 1.0
    return {"kind": "categorical", "effect": effect, "measure": "Jensen–Shannon", "psi": _psi(h_tr, h_ot),
            "p": p}, n_b  # fmt: skip


def _numeric_row(s_tr: pd.Series, s_ot: pd.Series, min_rows: int) -> tuple[dict[str, Any] | None, int]:
    """1-Wasserstein distance in train sd with a KS p-value, and PSI over train deciles (missing a
    bin); None when a side has fewer than ``min_rows`` finite values."""
    a = pd.to_numeric(s_tr, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    b = pd.to_numeric(s_ot, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    fa, fb = np.isfinite(a), np.isfinite(b)
    if min(fa.sum(), fb.sum()) < min_rows:
        return None, int(min(fa.sum(), fb.sum()))
    stats = numeric_drift(a[fa], b[fb])
    edges = np.unique(np.quantile(a[fa], np.linspace(0.1, 0.9, 9)))
    h_tr = np.append(np.bincount(np.searchsorted(edges, a[fa], side="right"), minlength=len(edges) + 1),
                     (~fa).sum()).astype(float)  # fmt: skip
    h_ot = np.append(np.bincount(np.searchsorted(edges, b[fb], side="right"), minlength=len(edges) + 1),
                     (~fb).sum()).astype(float)  # fmt: skip
    return {"kind": "numeric", "effect": stats["w1_norm"], "measure": "Wasserstein / train sd",
            "psi": _psi(h_tr, h_ot), "p": stats["p"]}, int(fb.sum())  # fmt: skip


def _split_verdict(
    split: str, mine: list[dict[str, Any]], max_drift_share: float
) -> tuple[Metric, list[Finding], str, dict[str, Any]]:
    """The drifted share of one split's assessed features, a finding per drifted feature (info only
    while the share stays within ``max_drift_share``), its summary part and its bar plot."""
    from auditkit.toolkit.stats import wilson

    k, m = sum(r["drifted"] for r in mine), len(mine)
    metric = Metric(
        f"drift_share_{split}", k / m, ci=wilson(k, m), n=m, threshold=max_drift_share, direction="lower",
        description=f"share of assessed features whose distribution drifted from train to {split}",
        details={"drifted": k, "assessed": m},
    )  # fmt: skip
    sev: Severity | None = (
        None if metric.passed is False else "info"
    )  # below the share threshold: a note only
    findings = [
        Finding(
            f"{split}: {r['feature']!r} drifted ({r['measure']} {r['effect']:.3f} > {r['threshold']}, "
            f"PSI {r['psi']:.3f}, FDR-adjusted p {r['q']:.2g})",
            severity=sev, key=f"{split}:{r['feature']}", metric=metric.name,
            evidence={k2: r[k2] for k2 in ("effect", "psi", "q", "kind")},
        )
        for r in sorted(mine, key=lambda r: -r["effect"]) if r["drifted"]
    ]  # fmt: skip
    top = sorted(mine, key=lambda r: -r["effect"])[:MAX_ROWS]
    plot = {"type": "bar", "title": f"Drift effect size, train → {split}", "x_label": "feature",
            "y_label": "effect size", "categories": [r["feature"] for r in top],
            "series": [{"name": split, "values": [r["effect"] for r in top]}]}  # fmt: skip
    return metric, findings, f"{split}: {k} of {m} features drifted", plot


def _drift_evidence(
    rows: list[dict[str, Any]], skipped: list[list[Any]], plots: list[dict[str, Any]]
) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: -r["effect"])
    evidence: dict[str, Any] = {
        "Feature drift": {
            "columns": ["split", "feature", "kind", "measure", "effect", "threshold", "PSI", "FDR q", "drifted"],
            "rows": [[r["split"], r["feature"], r["kind"], r["measure"], r["effect"], r["threshold"], r["psi"],
                      r["q"], r["drifted"]] for r in rows[:MAX_ROWS]],
            "total_rows": len(rows),
        },
        "plots": plots,
    }  # fmt: skip
    if skipped:
        evidence["Not assessed (too few values)"] = {"columns": ["split", "feature", "values"],
                                                     "rows": skipped[:MAX_ROWS], "total_rows": len(skipped)}  # fmt: skip
    return evidence
