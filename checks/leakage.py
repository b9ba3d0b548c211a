"""Built-in checks: leakage between splits (AK-LEAK-001..005).

All of them look at data only (no model), so a team can gate on data before training.

Row identity (AK-LEAK-001, AK-DQ-003) is a 64-bit hash of the *canonicalised feature values* of a
row, never the label, id, group or time: numbers are parsed as float64, rounded to ``decimals``
places, ``-0.0`` becomes ``0.0`` and every NaN is the same NaN; categorical values are compared by
their text (``str(v)``: ``1`` and ``"1"`` are the same category) and missing ones are one value.
With 64-bit hashes the chance of any collision among 10 million rows is below 3e-6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from auditkit.checks._leakage_near import find_near
from auditkit.checks._leakage_target import feature_codes, oof_feature_auc, oof_feature_r2
from pydantic import Field

from auditkit import Finding, InputError, Metric, NotApplicable, Outcome, check
from auditkit.toolkit import lazy
from auditkit.toolkit.hashing import cached_row_hashes, label_codes, pair_hash

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext
    from auditkit.toolkit import Dataset
else:
    pd = lazy("pandas")  # imported when a check first needs it: `auditkit checks` stays fast

MAX_ROWS = 50  # evidence tables are capped; the cap and the total are stated


def _label_column(ds: Dataset) -> pd.Series | None:
    return ds.frame[ds.label] if ds.label and ds.label in ds.frame else None


def _lookup(h_tr: np.ndarray, h_q: np.ndarray) -> np.ndarray:
    """Which query hashes occur in train (a hash-table membership test, O(n))."""
    return pd.Series(h_q).isin(h_tr).to_numpy()


def _first_rows(h_tr: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The first train row carrying each of the (few) wanted hashes."""
    cand = np.flatnonzero(pd.Series(h_tr).isin(np.unique(wanted)).to_numpy())
    first = pd.Series(cand, index=h_tr[cand])
    first = first[~first.index.duplicated()]
    return first.reindex(wanted).to_numpy()


def _show(v: Any) -> Any:
    if isinstance(v, (float, np.floating)) and np.isnan(v):
        return None
    return v.item() if hasattr(v, "item") else v


def _ratio_metric(name: str, k: int, n: int, threshold: float | None, description: str) -> Metric:
    from auditkit.toolkit.stats import wilson

    return Metric(
        name, k / n if n else None, ci=wilson(k, n), n=n, threshold=threshold,
        direction="lower", description=description, details={"count": int(k)},
    )  # fmt: skip


def _need_rows(ds: Dataset) -> None:
    if len(ds) == 0:
        raise NotApplicable(f"the {ds.name} split has no rows")


# --------------------------------------------------------------------------------------------
# AK-LEAK-001
# --------------------------------------------------------------------------------------------
@check(
    id="AK-LEAK-001",
    area="data",
    title="Test rows that also occur in the training set",
    requires=("train", "test"),
    severity="high",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.5"),
    tags=("data", "leakage"),
)
def train_test_overlap(
    ctx: RunContext, /, *, max_overlap_ratio: float = 0.0, max_conflict_ratio: float = 0.0, decimals: int = 9
) -> Outcome:
    """Finds test rows whose feature values occur exactly in the training set.

    Rows are compared by a 64-bit hash of their canonicalised features only (numbers rounded to
    ``decimals`` places, one NaN, categories by text; the label, id, group and time columns are
    not features), so a leaked row is found even when its label was changed. Those matched rows
    whose label differs from every matching training row are reported apart as label conflicts.
    Runs in O(n) with hash tables. Every matched pair is written to ``overlap_rows.csv``.

    Parameters
    ----------
    max_overlap_ratio: largest acceptable share of test rows whose features occur in train.
    max_conflict_ratio: largest acceptable share of test rows that match a train row on features
        but carry a label that none of the matching train rows has.
    decimals: numbers are rounded to this many decimal places before hashing.
    """
    train, test = ctx.dataset("train"), ctx.dataset("test")
    _need_rows(train)
    _need_rows(test)
    h_tr, h_te = cached_row_hashes(ctx, "train", decimals), cached_row_hashes(ctx, "test", decimals)
    hit = _lookup(h_tr, h_te)
    k, n = int(hit.sum()), len(h_te)
    metrics = [_ratio_metric("overlap_ratio", k, n, max_overlap_ratio,
                             "share of test rows whose features occur exactly in train")]  # fmt: skip
    lab_tr, lab_te = _label_column(train), _label_column(test)
    conflict = np.zeros(n, dtype=bool)
    if lab_tr is not None and lab_te is not None:
        y_tr, y_te = label_codes(lab_tr, lab_te)
        known = y_te >= 0
        pair_hit = _lookup(pair_hash(h_tr[y_tr >= 0], y_tr[y_tr >= 0]), pair_hash(h_te, y_te))
        conflict = hit & known & ~pair_hit
        metrics.append(_ratio_metric(
            "label_conflict_ratio", int(conflict.sum()), n, max_conflict_ratio,
            "share of test rows matching train features but with a label no matching train row has",
        ))  # fmt: skip
    evidence: dict[str, Any] = {}
    if k:
        rows_te = np.flatnonzero(hit)
        # conflicts first: they are the most telling examples
        order = np.concatenate([rows_te[conflict[rows_te]], rows_te[~conflict[rows_te]]])[:MAX_ROWS]
        first_train = np.full(n, -1, dtype=np.int64)
        first_train[rows_te] = _first_rows(h_tr, h_te[rows_te])
        tr_rows = first_train[order]
        # every pair, not only the examples: a file in the bundle a team can act on
        pairs_all = pd.DataFrame({"test_row": rows_te, "train_row": first_train[rows_te],
                                  "label_conflict": conflict[rows_te]})  # fmt: skip
        ctx.write("overlap_rows.csv", pairs_all.to_csv(index=False))
        ids_te, ids_tr = test.ids, train.ids
        rows = []
        for te_i, tr_i in zip(order.tolist(), tr_rows.tolist(), strict=True):
            rows.append([
                te_i, tr_i,
                _show(ids_te.iloc[te_i]) if ids_te is not None else None,
                _show(ids_tr.iloc[tr_i]) if ids_tr is not None else None,
                _show(lab_te.iloc[te_i]) if lab_te is not None else None,
                _show(lab_tr.iloc[tr_i]) if lab_tr is not None else None,
                bool(conflict[te_i]),
            ])  # fmt: skip
        evidence["Test rows found in train"] = {
            "columns": ["test row", "train row", "test id", "train id", "test label", "train label",
                        "label conflict"],
            "rows": rows, "total_rows": k,
        }  # fmt: skip
    evidence["method"] = {"hash": "64-bit, canonicalised features", "decimals": decimals,
                          "features": len(train.features)}  # fmt: skip
    summary = f"{k} of {n} test rows ({k / n:.2%}) occur in train"
    if conflict.any():
        summary += f"; {int(conflict.sum())} of them with a different label"
    return Outcome.from_metrics(metrics, summary=summary, evidence=evidence)


# --------------------------------------------------------------------------------------------
# AK-LEAK-002
# --------------------------------------------------------------------------------------------


@check(
    id="AK-LEAK-002",
    area="data",
    title="Near-duplicate rows shared by train and test",
    requires=("train", "test"),
    severity="high",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.5"),
    tags=("data", "leakage"),
    cost="moderate",
)
def near_duplicates(
    ctx: RunContext,
    /,
    *,
    max_distance: Annotated[float, Field(ge=0.0)] = 0.01,
    adaptive: bool = True,
    radius_quantile: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01,
    radius_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.25,
    max_near_duplicate_ratio: float = 0.0,
    exact_below: float = 5e8,
    neighbours: int = 8,
    miss_probability: float = 1e-4,
    max_bucket: int = 256,
    decimals: int = 9,
) -> Outcome:
    """Finds test rows that are near, but not exact, copies of a training row.

    Each numeric feature is standardised with the *train* mean and standard deviation (NaN → the
    train mean); the distance between two rows is the root-mean-square difference over the numeric
    features in those units, and categorical features must be equal. A test row is a near-duplicate
    when a train row lies within the *radius*. With ``adaptive`` (the default) the radius fits the
    data: ``radius_factor`` × the ``radius_quantile`` of the train split's own nearest-neighbour
    distances (sampled train rows to their nearest other train row; train only, never test), so a
    near copy is far closer to a train row than train rows are to each other; the absolute
    ``max_distance`` is the floor (0.01: the rows differ by 1% of a standard deviation per feature
    on average). Without ``adaptive`` the radius is ``max_distance`` alone (with very few numeric
    features and many rows, chance pairs that close become common: lower it). Both radii and the
    train distances they came from are in the evidence. Test rows that are exact copies
    are AK-LEAK-001's and are not counted here; repeated train rows are searched once. Only test is
    searched against train. Small inputs (train × test rows ≤ ``exact_below``) use an exact
    nearest-neighbour search (faiss); larger ones a grid locality-sensitive hash whose chance of
    missing a pair within the threshold is at most ``miss_probability`` (random projections, work
    about linear in the rows). Every candidate is checked exactly in float64. Every pair found is
    written to ``near_duplicate_rows.csv``.

    Parameters
    ----------
    max_distance: RMS difference per numeric feature, in train standard deviations, below which a
        pair of rows always counts as near-duplicate (the floor of the adaptive radius).
    adaptive: widen the radius to ``radius_factor`` × the ``radius_quantile`` of train's
        nearest-neighbour distances when that is larger than ``max_distance``.
    radius_quantile: quantile of train's nearest-neighbour RMS distances (in (0, 1)).
    radius_factor: multiple of that quantile taken as the adaptive radius (in (0, 1]: "far below").
    max_near_duplicate_ratio: largest acceptable share of test rows with a near-duplicate in train.
    exact_below: use the exact search when train rows × test rows is at most this.
    neighbours: nearest train rows examined per test row by the exact search.
    miss_probability: bound on the chance that the hashed search misses a pair within the threshold.
    max_bucket: most train rows compared per test row and hash table (a guard for very dense data;
        truncations are counted in the evidence).
    decimals: rounding used to recognise exact duplicates (as in AK-LEAK-001).
    """
    train, test = ctx.dataset("train"), ctx.dataset("test")
    _need_rows(train)
    _need_rows(test)
    if not train.numeric and train.array is None:
        raise NotApplicable("no numeric features: near-duplicates are exact duplicates (AK-LEAK-001)")
    h_tr, h_te = cached_row_hashes(ctx, "train", decimals), cached_row_hashes(ctx, "test", decimals)
    exact = _lookup(h_tr, h_te)
    near = find_near(train, test, h_tr, exact, max_distance=max_distance, adaptive=adaptive,
                     radius_quantile=radius_quantile, radius_factor=radius_factor, exact_below=exact_below,
                     neighbours=neighbours, miss_probability=miss_probability, max_bucket=max_bucket,
                     rng=ctx.rng(), seed=ctx.seed)  # fmt: skip
    found, best, partner, radius, fitted, info = (
        near.found,
        near.best,
        near.partner,
        near.radius,
        near.fitted,
        near.info,
    )
    n = len(test)
    k = int(found.sum())
    metric = _ratio_metric("near_duplicate_ratio", k, n, max_near_duplicate_ratio,
                           f"share of test rows within RMS distance {radius:.4g} of a train row "
                           "(exact copies excluded)")  # fmt: skip
    evidence: dict[str, Any] = {
        "radius": fitted,
        "method": {**info, "max_distance": max_distance, "radius": radius, "numeric_dims": near.d_num,
                   "categorical_features": len(train.categorical), "exact_duplicates_excluded": int(exact.sum()),
                   "queried_rows": near.queried},
    }  # fmt: skip
    if k:
        rows_te = np.flatnonzero(found)
        ctx.write("near_duplicate_rows.csv", pd.DataFrame({
            "test_row": rows_te, "train_row": partner[rows_te], "rms_distance": best[rows_te],
        }).to_csv(index=False))  # fmt: skip
        rows_te = rows_te[np.argsort(best[rows_te], kind="stable")][:MAX_ROWS]
        evidence["Near-duplicate pairs"] = {
            "columns": ["test row", "train row", "RMS distance (train sd)"],
            "rows": [[int(i), int(partner[i]), float(best[i])] for i in rows_te],
            "total_rows": k,
        }
    finite = best[np.isfinite(best)]
    if len(finite):
        qs = np.quantile(finite, [0.0, 0.01, 0.05, 0.5])
        evidence["near_duplicate_distance_quantiles"] = {
            "min": qs[0],
            "p1": qs[1],
            "p5": qs[2],
            "median": qs[3],
        }
    how = "adaptive" if fitted["from"] == "adaptive" else "absolute"
    summary = (f"{k} of {n} test rows ({k / n:.2%}) have a near-duplicate in train "
               f"(RMS ≤ {radius:.3g} sd, {how} radius; floor {max_distance})")  # fmt: skip
    notes = []
    if info.get("buckets_truncated") or info.get("miss_probability_bound", 0.0) > miss_probability:
        notes.append(Finding(
            f"the data are so dense that the hashed search was capped ({info.get('buckets_truncated', 0)} "
            f"truncated buckets, miss bound {info.get('miss_probability_bound', 0.0):.2g}): near-duplicates "
            "may be under-counted; raise max_bucket or exact_below", severity="info", key="search_capped",
        ))  # fmt: skip
    return Outcome.from_metrics([metric], summary=summary, findings=notes, evidence=evidence)


# --------------------------------------------------------------------------------------------
# AK-LEAK-003
# --------------------------------------------------------------------------------------------
def _comparable_keys(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Compare numbers as numbers; otherwise compare by text so 1 and "1" meet."""
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        return a, b
    return a.map(_key_text, na_action="ignore"), b.map(_key_text, na_action="ignore")


def _key_text(v: Any) -> str:
    # An integer id read as float (a CSV column with a missing value) is 5.0; its text is "5".
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


@check(
    id="AK-LEAK-003",
    area="data",
    title="The same entity or group in train and test",
    requires=("train", "test", "id|group"),
    severity="high",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.5"),
    tags=("data", "leakage"),
)
def entity_leakage(ctx: RunContext, /, *, max_overlap_ratio: float = 0.0) -> Outcome:
    """Finds test rows whose entity (``data.id``) or group (``data.group``) also occurs in train.

    Rows of one person, patient, device or household share information beyond their features; a
    model evaluated on entities it was trained on looks better than it will be on new ones. For
    each declared role the share of test rows whose value occurs in train is measured (missing
    values never match).

    Parameters
    ----------
    max_overlap_ratio: largest acceptable share of test rows whose id (or group) occurs in train.
    """
    train, test = ctx.dataset("train"), ctx.dataset("test")
    _need_rows(train)
    _need_rows(test)
    metrics, evidence, parts = [], {}, []
    for role, col in (("entity", train.roles.id), ("group", train.roles.group)):
        if not col or col not in train.frame or col not in test.frame:
            continue
        a, b = _comparable_keys(train.frame[col], test.frame[col])
        shared_mask = b.isin(a.dropna().unique()).to_numpy() & b.notna().to_numpy()
        k, n = int(shared_mask.sum()), len(b)
        shared_values = b[shared_mask]
        n_shared = int(shared_values.nunique())
        metrics.append(_ratio_metric(f"{role}_overlap_ratio", k, n, max_overlap_ratio,
                                     f"share of test rows whose {col!r} value occurs in train"))  # fmt: skip
        metrics[-1].details.update({"column": col, "shared_values": n_shared,
                                    "test_values": int(b.nunique())})  # fmt: skip
        parts.append(f"{k} of {n} test rows share their {col!r} with train ({n_shared} distinct values)")
        if k:
            top = shared_values.value_counts().head(MAX_ROWS)
            tr_counts = a.value_counts()
            evidence[f"Shared {col} values"] = {
                "columns": [col, "test rows", "train rows"],
                "rows": [[_show(v), int(c), int(tr_counts.get(v, 0))] for v, c in top.items()],
                "total_rows": n_shared,
            }
    if not metrics:
        raise NotApplicable("the id/group column is not in both splits")
    return Outcome.from_metrics(metrics, summary="; ".join(parts), evidence=evidence)


# --------------------------------------------------------------------------------------------
# AK-LEAK-004
# --------------------------------------------------------------------------------------------
def _time_values(ds: Dataset) -> tuple[np.ndarray, bool]:
    """Times as float64 (datetimes as UTC nanoseconds, NaN when missing) and whether they are dates."""
    t = ds.times
    if t is None:
        raise NotApplicable(f"no time column in the {ds.name} split")
    if pd.api.types.is_datetime64_any_dtype(t):
        if getattr(t.dt, "tz", None) is not None:
            t = t.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = t.to_numpy(dtype="datetime64[ns]")
        out = ns.astype(np.int64).astype(np.float64)
        out[np.isnat(ns)] = np.nan
        return out, True
    return pd.to_numeric(t, errors="coerce").to_numpy(np.float64, na_value=np.nan), False


def _show_time(v: float, is_date: bool) -> Any:
    if not np.isfinite(v):
        return None
    return pd.Timestamp(int(v), unit="ns").isoformat() if is_date else _show(v)


@check(
    id="AK-LEAK-004",
    area="data",
    title="Temporal leakage: test rows not after the training period",
    requires=("train", "test", "time"),
    severity="high",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.5", "MEASURE 2.6"),
    tags=("data", "leakage", "time"),
)
def temporal_leakage(
    ctx: RunContext, /, *, max_earlier_ratio: float = 0.0, max_entity_earlier_ratio: float = 0.0
) -> Outcome:
    """Finds test rows that lie before the end of the training period.

    A model meant to predict the future must be tested on rows later than everything it learned
    from. Measured: the share of test rows strictly earlier than the latest train row and, when
    ``data.id`` is declared, the share of test rows strictly earlier than the latest train row of
    the same entity (the leak of a random split of panel data). Rows without a time are left out
    and counted.

    Parameters
    ----------
    max_earlier_ratio: largest acceptable share of test rows earlier than the latest train row.
    max_entity_earlier_ratio: largest acceptable share of test rows earlier than the latest train
        row of their own entity (only when an id column is declared).
    """
    train, test = ctx.dataset("train"), ctx.dataset("test")
    _need_rows(train)
    _need_rows(test)
    (t_tr, date_tr), (t_te, date_te) = _time_values(train), _time_values(test)
    if date_tr != date_te:
        raise InputError("the time column is a date in one split and a number in the other")
    ok_te = np.isfinite(t_te)
    n = int(ok_te.sum())
    if n == 0 or not np.isfinite(t_tr).any():
        raise NotApplicable("no parsable time values in train or test")
    latest = float(np.nanmax(t_tr))
    earlier = ok_te & (t_te < latest)
    k = int(earlier.sum())
    metrics = [_ratio_metric("earlier_than_train_ratio", k, n, max_earlier_ratio,
                             "share of test rows earlier than the latest train row")]  # fmt: skip
    evidence: dict[str, Any] = {
        "periods": {"train_first": _show_time(float(np.nanmin(t_tr)), date_tr),
                    "train_last": _show_time(latest, date_tr),
                    "test_first": _show_time(float(np.nanmin(t_te)), date_te),
                    "test_last": _show_time(float(np.nanmax(t_te)), date_te),
                    "test_rows_without_time": int((~ok_te).sum())},
    }  # fmt: skip
    summary = f"{k} of {n} test rows ({k / n:.2%}) are earlier than the latest train row"
    id_col = train.roles.id
    if id_col and id_col in train.frame and id_col in test.frame:
        a, b = _comparable_keys(train.frame[id_col], test.frame[id_col])
        last_by_entity = pd.Series(t_tr, index=a.to_numpy()).groupby(level=0).max()
        ent_last = pd.Series(b.to_numpy()).map(last_by_entity).to_numpy(np.float64, na_value=np.nan)
        ent_earlier = ok_te & (t_te < ent_last)
        ke = int(ent_earlier.sum())
        metrics.append(_ratio_metric(
            "entity_earlier_than_train_ratio", ke, n, max_entity_earlier_ratio,
            "share of test rows earlier than the latest train row of the same entity",
        ))  # fmt: skip
        summary += f"; {ke} ({ke / n:.2%}) are earlier than their own entity's latest train row"
        if ke:
            rows = np.flatnonzero(ent_earlier)[:MAX_ROWS]
            evidence["Test rows before their entity's last train row"] = {
                "columns": ["test row", id_col, "test time", "entity's last train time"],
                "rows": [[int(i), _show(b.iloc[i]), _show_time(t_te[i], date_te), _show_time(ent_last[i], date_tr)]
                         for i in rows],
                "total_rows": ke,
            }  # fmt: skip
    return Outcome.from_metrics(metrics, summary=summary, evidence=evidence)


# --------------------------------------------------------------------------------------------
# AK-LEAK-005
# --------------------------------------------------------------------------------------------


@check(
    id="AK-LEAK-005",
    area="data",
    title="Target leakage: a single feature that predicts the label almost perfectly",
    requires=("train", "label"),
    severity="high",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.5", "MEASURE 2.9"),
    tags=("data", "leakage"),
)
def target_leakage(
    ctx: RunContext,
    /,
    *,
    max_auc: float = 0.98,
    max_r2: float = 0.95,
    folds: int = 5,
    bins: int = 32,
    max_levels: int = 256,
    max_classes: int = 50,
) -> Outcome:
    """Finds features that alone predict the label almost perfectly (a sign of target leakage).

    For each feature, the training rows are split into ``folds`` folds (seeded); each row is
    scored by a target encoding learnt on the other folds: categories by level, numbers with at
    most ``max_levels`` distinct values (and about 20 rows per value) by value, other numbers by up
    to ``bins`` quantile bins of at least about 20 rows, missing values as a level of their own. The out-of-fold AUC (one-vs-rest macro for several classes)
    or, for a numeric label with more than ``max_classes`` values, R² is reported per feature
    (the higher of R² on the label and on its ranks, so that a monotone copy of a long-tailed label,
    such as its log, is seen). A feature is flagged only when the lower end of its 95% interval
    (Hanley–McNeil for AUC, delta method for R²) exceeds ``max_auc`` / ``max_r2``, so a small sample
    does not flag by chance. Every training row is used (no
    sampling); the cost is O(rows) per feature.

    Parameters
    ----------
    max_auc: out-of-fold AUC above which a single feature is considered leaking.
    max_r2: out-of-fold R² above which a single feature is considered leaking (numeric labels).
    folds: number of folds for the out-of-fold encoding.
    bins: quantile bins for numeric features with many distinct values.
    max_levels: numeric features with at most this many distinct values are encoded by value.
    max_classes: a label with more distinct values than this (and numeric) is treated as regression.
    """
    train = ctx.dataset("train")
    _need_rows(train)
    if train.label is None or train.label not in train.frame:
        raise NotApplicable("no label column in train")
    if not train.features:
        raise NotApplicable("no features")
    raw = train.frame[train.label]
    keep = raw.notna().to_numpy()
    n = int(keep.sum())
    if n < 2 * folds:
        raise NotApplicable(f"too few labelled train rows ({n}) for {folds}-fold scoring")
    regression = pd.api.types.is_numeric_dtype(raw) and raw.nunique() > max_classes
    rng = ctx.rng()
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n) % folds
    if regression:
        y = pd.to_numeric(raw[keep]).to_numpy(np.float64)
    else:
        y_codes = label_codes(raw)[0][keep]
        _, y = np.unique(y_codes, return_inverse=True)
        if y.max(initial=0) < 1:
            raise NotApplicable("the train split has a single class: no feature can separate it")
    rows, findings, top_value = [], [], -np.inf
    score_name = "R²" if regression else "AUC"
    for f in train.features:
        codes = feature_codes(train.frame[f][keep], f in train.categorical, bins, max_levels)
        scale = "label"
        if regression:
            value, (lo, hi), scale = oof_feature_r2(codes, y, fold, folds)
            flagged = bool(np.isfinite(lo) and lo > max_r2)
        else:
            value, (lo, hi) = oof_feature_auc(codes, y, fold, folds)
            flagged = bool(np.isfinite(lo) and lo > max_auc)
        rows.append([f, value, lo, hi, int(codes.max()) + 1, flagged] + ([scale] if regression else []))
        if np.isfinite(value):
            top_value = max(top_value, value)
        if flagged:
            findings.append(Finding(
                f"feature {f!r} alone predicts the label{' ranks' if scale == 'rank' else ''} with out-of-fold "
                f"{score_name} {value:.4f} "
                f"(95% CI {lo:.4f}–{hi:.4f}), above {max_r2 if regression else max_auc}: check whether "
                "it is derived from the label or only known after the outcome",
                key=f, metric="leaking_features", evidence={"feature": f, score_name: value},
            ))  # fmt: skip
    rows.sort(key=lambda r: -(float(r[1]) if np.isfinite(float(r[1])) else -1.0))  # type: ignore[arg-type]
    threshold = max_r2 if regression else max_auc
    metrics = [
        Metric("leaking_features", len(findings), n=len(train.features), threshold=0, direction="lower",
               description=f"features whose out-of-fold {score_name} is significantly above {threshold}"),
        Metric(f"max_feature_{'r2' if regression else 'auc'}", top_value if np.isfinite(top_value) else None,
               n=n, direction="lower", description=f"highest single-feature out-of-fold {score_name}",
               details={"feature": rows[0][0] if rows else None}),
    ]  # fmt: skip
    evidence = {
        f"Single-feature out-of-fold {score_name}": {
            "columns": ["feature", score_name, "95% low", "95% high", "levels/bins", "flagged"]
            + (["target scale"] if regression else []),
            "rows": rows[:MAX_ROWS], "total_rows": len(rows),
        },
        "plots": [{"type": "bar", "title": f"Single-feature out-of-fold {score_name} (highest 20)",
                   "x_label": "feature", "y_label": score_name, "categories": [r[0] for r in rows[:20]],
                   "series": [{"name": "train", "values": [r[1] for r in rows[:20]]}]}],
        "method": {"rows_used": n, "rows_total": len(train), "sampled": False, "folds": folds,
                   "task": "regression" if regression else "classification"},
    }  # fmt: skip
    summary = (f"{len(findings)} of {len(train.features)} features predict the label alone "
               f"(highest out-of-fold {score_name} {top_value:.3f}); all {n} labelled rows used")  # fmt: skip
    return Outcome(metrics=metrics, findings=findings, summary=summary, evidence=evidence)
