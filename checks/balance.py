"""Built-in checks: class balance, label shift and representation of sensitive groups (AK-BAL-001..003)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from auditkit import DEFAULT_MIN_ROWS, Finding, Metric, NotApplicable, Outcome, check, require_rows
from auditkit.toolkit.imports import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext
    from auditkit.toolkit import Dataset
else:
    pd = lazy("pandas")  # imported when a check first needs it: `auditkit checks` stays fast

MAX_ROWS = 50


def _class_counts(ds: Dataset, k: int) -> np.ndarray:
    y = ds.y
    if y is None:
        raise NotApplicable(f"no label in the {ds.name} split")
    y = np.asarray(y)
    return np.bincount(y[y >= 0], minlength=k)[:k]


def _classes(ds: Dataset, max_classes: int) -> list[Any]:
    if ds.label is None or ds.classes is None:
        raise NotApplicable("no label column")
    if len(ds.classes) > max_classes:
        raise NotApplicable(f"{len(ds.classes)} distinct labels: looks like regression, not classification")
    return list(ds.classes)


@check(
    id="AK-BAL-001",
    area="data",
    title="Class imbalance in the training set",
    requires=("train", "label"),
    severity="medium",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.11"),
    tags=("data", "balance"),
    regression_title="Heavy-tailed regression target in the training set",
    regression_description="Measures how heavy the tails of the training target are: the tail ratio max(q99 − median, median − q01) / IQR with a bootstrap interval (a normal gives 1.72), skewness, excess kurtosis and the share beyond Tukey's far fences.",
)
def class_imbalance(
    ctx: RunContext,
    /,
    *,
    min_minority_share: float | None = None,
    min_class_count: int = 30,
    max_classes: int = 100,
    max_tail_ratio: float = 5.0,
    n_boot: int = 1000,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Outcome:
    """Measures how rare the rarest class of the training set is.

    Two metrics, both of direction "higher": the minority share (rows of the rarest class over
    all labelled rows, with a Wilson interval) and the smallest per-class count. A class known from
    another split but absent from train counts as 0 rows. More imbalance lowers both, so it fails;
    less imbalance passes.

    Parameters
    ----------
    min_minority_share: smallest acceptable share of the rarest class; default (None) is a fifth of
        the balanced share, 0.2 / number of classes (0.1 for two classes).
    min_class_count: smallest acceptable number of training rows in any class.
    max_classes: with more distinct labels than this the label is taken as continuous (not applicable).
    max_tail_ratio: regression: largest acceptable tail ratio of the train target,
        max(q99 − median, median − q01) / IQR (a normal target gives about 1.72).
    n_boot: regression: bootstrap resamples for the tail ratio's interval.
    min_rows: regression: fewest labelled train rows to judge the target's distribution on.

    Regression: the train target's heavy tail (tail ratio with a bootstrap interval, skewness,
    excess kurtosis, far-outlier share) instead of class shares.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_data import target_tail

        return target_tail(ctx, max_tail_ratio=max_tail_ratio, n_boot=n_boot, min_rows=min_rows)
    from auditkit.toolkit.stats import wilson

    train = ctx.dataset("train")
    classes = _classes(train, max_classes)
    k = len(classes)
    counts = _class_counts(train, k)
    n = int(counts.sum())
    if n == 0:
        raise NotApplicable("no labelled rows in train")
    threshold = min_minority_share if min_minority_share is not None else 0.2 / max(k, 2)
    rare = int(np.argmin(counts))
    share = counts[rare] / n
    metrics = [
        Metric("minority_share", share, ci=wilson(int(counts[rare]), n), n=n, threshold=threshold,
               direction="higher", description=f"share of the rarest class ({classes[rare]!s})",
               details={"class": classes[rare], "classes": k}),
        Metric("min_class_count", int(counts[rare]), n=n, threshold=min_class_count, direction="higher",
               description="training rows of the rarest class"),
    ]  # fmt: skip
    findings = []
    if k < 2:
        findings.append(
            Finding("the label has a single class: nothing to learn to separate", key="single_class")
        )
    for c, cnt in zip(classes, counts.tolist(), strict=True):
        if cnt < min_class_count:
            findings.append(Finding(
                f"class {c!s} has {cnt} training rows (minimum {min_class_count})",
                key=f"class:{c}", metric="min_class_count", evidence={"class": c, "count": cnt},
            ))  # fmt: skip
    table = [[c, int(cnt), cnt / n] for c, cnt in zip(classes, counts.tolist(), strict=True)]
    evidence = {
        "Class counts (train)": {"columns": ["class", "rows", "share"], "rows": table[:MAX_ROWS], "total_rows": k},
        "plots": [{"type": "bar", "title": "Training rows per class", "x_label": "class", "y_label": "rows",
                   "categories": [str(c) for c in classes[:MAX_ROWS]],
                   "series": [{"name": "train", "values": counts[:MAX_ROWS].tolist()}]}],
    }  # fmt: skip
    summary = f"rarest class {classes[rare]!s}: {int(counts[rare])} of {n} rows ({share:.2%}); {k} classes"
    return Outcome.from_metrics(metrics, summary=summary, findings=findings, evidence=evidence)


def _tvd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(p - q).sum(axis=-1)


@check(
    id="AK-BAL-002",
    area="data",
    title="Label distribution shift between train and the other splits",
    requires=("train", "label", "test|validation|production"),
    severity="medium",
    nist_ai_rmf=("MEASURE 2.5", "MEASURE 2.11", "MAP 2.3"),
    tags=("data", "balance", "shift"),
    regression_title="Target distribution shift between train and the other splits (1-Wasserstein)",
    regression_description="Measures the 1-Wasserstein distance, in train sd, between the target of train and that of each labelled split (basic bootstrap interval), with the mean shift and a KS test.",
)
def label_shift(
    ctx: RunContext, /, *, max_distance: float = 0.1, n_boot: int = 1000, max_classes: int = 100,
    min_rows: int = DEFAULT_MIN_ROWS, max_wasserstein: float = 0.1,
    bound: Literal["value", "lower"] = "lower",
) -> Outcome:  # fmt: skip
    """Measures the distance between the label distribution of train and that of each labelled split.

    The distance is the total variation distance (half the L1 distance of the class shares: the
    largest share of rows that would have to change class). Its 95% interval comes from a
    parametric bootstrap that redraws both splits' class counts (multinomial, seeded). Classes
    that occur in a split but not in train are reported too.

    Parameters
    ----------
    max_distance: largest acceptable total variation distance between label distributions.
    n_boot: bootstrap resamples for the interval.
    max_classes: with more distinct labels than this the label is taken as continuous (not applicable).
    min_rows: fewest labelled rows a split needs to be compared (smaller ones are listed as too small to judge).
    max_wasserstein: regression: largest acceptable 1-Wasserstein distance between the train target
        and another split's, in train standard deviations.
    bound: regression: `lower` (gate on the interval's lower end: W1 is biased upwards on small
        samples, so a shift fails only when it is surely above the maximum) or `value`.

    Regression: the 1-Wasserstein distance of each labelled split's target from train's (in train
    sd) with a bootstrap interval, the mean shift and a KS test.
    """
    if ctx.task == "regression":
        from auditkit.checks._regression_data import target_shift

        return target_shift(
            ctx, max_wasserstein=max_wasserstein, bound=bound, n_boot=min(n_boot, 500), min_rows=min_rows
        )
    train = ctx.dataset("train")
    classes = _classes(train, max_classes)
    k = len(classes)
    c_tr = _class_counts(train, k)
    if c_tr.sum() == 0:
        raise NotApplicable("no labelled rows in train")
    require_rows(int(c_tr.sum()), min_rows, what="a label distribution", split="labelled train")
    small: list[str] = []
    p_tr = c_tr / c_tr.sum()
    rng = ctx.rng()
    metrics, findings, parts = [], [], []
    cats, series = (
        [str(c) for c in classes[:MAX_ROWS]],
        [{"name": "train", "values": p_tr[:MAX_ROWS].tolist()}],
    )
    for name in ("validation", "test", "production"):
        if name not in ctx.splits():
            continue
        ds = ctx.dataset(name)
        if ds.y is None or ds.label not in ds.frame:
            continue
        c = _class_counts(ds, k)
        n = int(c.sum())
        if n == 0:
            continue
        if n < min_rows:
            small.append(f"{name} ({n} rows)")
            continue
        p = c / n
        d = float(_tvd(p_tr, p))
        b_tr = rng.multinomial(int(c_tr.sum()), p_tr, size=n_boot) / c_tr.sum()
        b_te = rng.multinomial(n, p, size=n_boot) / n
        boots = _tvd(b_tr, b_te)
        ci = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))
        metrics.append(Metric(
            f"label_shift_{name}", d, ci=ci, n=n, threshold=max_distance, direction="lower",
            description=f"total variation distance between train and {name} label distributions",
            details={"split": name, "train_rows": int(c_tr.sum())},
        ))  # fmt: skip
        unseen = [str(classes[i]) for i in range(k) if c_tr[i] == 0 and c[i] > 0]
        if unseen:
            findings.append(Finding(
                f"{name} has classes never seen in train: {', '.join(unseen[:10])}",
                key=f"{name}:unseen_classes", evidence={"classes": unseen[:MAX_ROWS]},
            ))  # fmt: skip
        parts.append(f"{name}: TVD {d:.3f}")
        series.append({"name": name, "values": p[:MAX_ROWS].tolist()})
    if not metrics:
        if small:
            raise NotApplicable(
                f"too few rows to judge a label shift: {', '.join(small)}, at least {min_rows} "
                "needed (parameter min_rows)"
            )
        raise NotApplicable("no labelled split besides train")
    if small:
        findings.append(
            Finding(
                f"too small to judge (under {min_rows} labelled rows): {', '.join(small)}",
                severity="info",
                key="small splits",
            )
        )
    evidence = {"plots": [{"type": "bar", "title": "Class shares per split", "x_label": "class",
                           "y_label": "share", "categories": cats, "series": series}]}  # fmt: skip
    return Outcome.from_metrics(metrics, summary="; ".join(parts), findings=findings, evidence=evidence)


def _quartile_edges(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Bin edges (train quartiles, open at both ends) of numeric columns with more than 10 values,
    as AK-FAIR-001 and AK-PERF-004 group them; the same edges are used for every split."""
    out = {}
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique() > 10:
            inner = np.unique(np.nanquantile(s.to_numpy(dtype=float), [0.25, 0.5, 0.75]))
            out[c] = np.concatenate([[-np.inf], inner, [np.inf]])
    return out


@check(
    id="AK-BAL-003",
    area="data",
    title="Under-represented sensitive groups and intersections",
    requires=("sensitive",),
    severity="medium",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.11", "MAP 5.1"),
    tags=("data", "balance", "fairness"),
)
def representation(
    ctx: RunContext,
    /,
    *,
    min_share: float = 0.05,
    min_count: int = 30,
    intersections: bool = True,
    min_intersection_share: float = 0.01,
    splits: list[str] = ["train", "test"],  # noqa: B006 - JSON-native default, never mutated
    max_cells: int = 1000,
) -> Outcome:
    """Finds sensitive groups, and intersections of groups, with too few rows.

    For each sensitive column and split, every group (missing values form a group of their own;
    a numeric column with more than 10 values is grouped by its train quartiles) is compared with a minimum share and a minimum count: too few rows make per-group evaluation
    and fairness estimates unreliable. With ``intersections``, every combination of the groups of
    all sensitive columns (and of each pair, when there are more than two) is checked too,
    including combinations that never occur (count 0), as long as there are at most ``max_cells``.

    Parameters
    ----------
    min_share: smallest acceptable share of a single group in a split.
    min_count: smallest acceptable number of rows of a group or intersection in a split.
    intersections: also check combinations of the sensitive columns.
    min_intersection_share: smallest acceptable share of an intersection in a split.
    splits: splits to check (those absent are skipped).
    max_cells: largest number of intersection cells enumerated per combination of columns.
    """
    roles = ctx.roles()
    cols = list(roles.sensitive)
    if not cols:
        raise NotApplicable("no sensitive columns declared")
    present = [s for s in splits if s in ctx.splits()]
    if not present:
        raise NotApplicable(f"none of the splits {splits} is present")
    metrics, findings, rows = [], [], []
    worst: dict[str, tuple[float, str]] = {}
    edges = _quartile_edges(ctx.dataset("train" if "train" in ctx.splits() else present[0]).sensitive)
    for split in present:
        ds = ctx.dataset(split)
        frame = ds.sensitive
        if list(frame.columns) != cols or len(ds) == 0:
            continue
        for c, e in edges.items():  # a continuous attribute (age, income): its quartiles are the groups
            frame = frame.assign(**{c: pd.cut(frame[c], e, include_lowest=True).astype(object)})
        n = len(frame)
        g = frame.astype(object).where(frame.notna(), "<missing>").astype(str)
        combos: list[tuple[str, ...]] = [(c,) for c in cols]
        if intersections and len(cols) > 1:
            combos += [tuple(p) for p in itertools.combinations(cols, 2)] if len(cols) > 2 else []
            combos.append(tuple(cols))
        for combo in combos:
            single = len(combo) == 1
            counts = g.groupby(list(combo), sort=True).size()
            if not single:
                levels = [sorted(g[c].unique()) for c in combo]
                if int(np.prod([len(lv) for lv in levels])) <= max_cells:
                    full = pd.MultiIndex.from_product(levels, names=list(combo))
                    counts = counts.reindex(full, fill_value=0)
            share_min = min_share if single else min_intersection_share
            label = " × ".join(combo)
            for key, cnt in counts.items():
                parts = key if isinstance(key, tuple) else (key,)
                group = ", ".join(f"{c}={v}" for c, v in zip(combo, parts, strict=True))
                share = cnt / n
                low = cnt < min_count or share < share_min
                rows.append([split, label, group, int(cnt), share, "low" if low else "ok"])
                if (split not in worst) or share < worst[split][0]:
                    worst[split] = (share, group)
                if low:
                    findings.append(Finding(
                        f"{split}: group {group} has {int(cnt)} rows ({share:.2%}); minimum {min_count} rows "
                        f"and {share_min:.0%}",
                        key=f"{split}:{group}", metric=f"under_represented_{split}",
                        evidence={"split": split, "group": group, "rows": int(cnt), "share": share},
                    ))  # fmt: skip
        n_low = sum(1 for f in findings if f.key and f.key.startswith(f"{split}:"))
        metrics.append(Metric(
            f"under_represented_{split}", n_low, n=n, threshold=0, direction="lower",
            description=f"sensitive groups and intersections in {split} below the minimum share or count",
        ))  # fmt: skip
        if split in worst:
            metrics.append(Metric(
                f"smallest_group_share_{split}", worst[split][0], n=n, direction="higher",
                description="share of the smallest group or intersection", details={"group": worst[split][1]},
            ))  # fmt: skip
    if not metrics:
        raise NotApplicable("the sensitive columns are not in the selected splits")
    total = len(findings)
    if total > MAX_ROWS:  # a 100k-level column: keep the report readable, say how many were cut
        findings = findings[:MAX_ROWS] + [Finding(f"... and {total - MAX_ROWS} more under-represented groups",
                                                  severity="info", key="truncated")]  # fmt: skip
    rows.sort(key=lambda r: (r[0], r[4]))
    evidence = {"Sensitive groups": {"columns": ["split", "columns", "group", "rows", "share", "status"],
                                     "rows": rows[:MAX_ROWS], "total_rows": len(rows)}}  # fmt: skip
    summary = f"{total} under-represented groups or intersections across {', '.join(present)}"
    return Outcome(metrics=metrics, findings=findings, summary=summary, evidence=evidence)
