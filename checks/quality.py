"""Built-in checks: data quality (AK-DQ-001..004).

AK-DQ-001 and AK-DQ-002 run real Great Expectations 1.x validation: one ephemeral data context
with a pandas datasource is created per process (imported lazily: it costs about 3 s) and every
split is validated as a whole-dataframe batch. GE's progress bars and logging are silenced.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from auditkit.checks._data_preflight import expectations_preflight

from auditkit import Finding, InputError, Metric, NotApplicable, Outcome, check
from auditkit.toolkit import unsafe_row_condition
from auditkit.toolkit.hashing import cached_row_hashes, label_codes, pair_hash
from auditkit.toolkit.imports import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit import RunContext
    from auditkit.toolkit import Dataset
else:
    pd = lazy("pandas")  # imported when a check first needs it: `auditkit checks` stays fast

MAX_ROWS = 50
_GE_LOCK = threading.Lock()
_GE: dict[str, Any] = {}
SPLITS = ("train", "validation", "test", "production", "ood")
_NUMERIC_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64",
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64", "bool",
    "boolean",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Great Expectations plumbing
# --------------------------------------------------------------------------------------------
def _ge() -> dict[str, Any]:
    """The gx module and a whole-dataframe batch definition, created once per process."""
    with _GE_LOCK:
        if not _GE:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            for name in ("great_expectations", "gx", "posthog"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # GE's modules set their own logger levels on import: quieten every one of them.
            for name in list(logging.root.manager.loggerDict):
                if name.startswith(("great_expectations", "gx", "posthog")):
                    logging.getLogger(name).setLevel(logging.CRITICAL)

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            asset = context.data_sources.add_pandas("auditkit").add_dataframe_asset("split")
            _GE.update(gx=gx, context=context, batch=asset.add_batch_definition_whole_dataframe("whole"))
        return _GE


def _suite_from_json(doc: dict[str, Any], where: str) -> Any:
    """A gx.ExpectationSuite from GE 1.x JSON (``type``/``kwargs``); 0.x files are converted."""
    gx = _ge()["gx"]
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise InputError(f"{where}: not a Great Expectations suite (needs a list 'expectations')")
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    exps = []
    for i, e in enumerate(doc["expectations"]):
        kind = e.get("type") or e.get("expectation_type")  # 0.x used expectation_type
        if not kind:
            raise InputError(f"{where}: expectation {i} has no 'type'")
        why = unsafe_row_condition(e.get("kwargs"))
        if why:  # GX would hand it to DataFrame.query, which evaluates Python
            raise InputError(f"{where}: expectation {i}: {why}")
        # built one by one: GE's suite constructor would only log and drop an invalid one
        try:
            config = ExpectationConfiguration(type=kind, kwargs=dict(e.get("kwargs") or {}),
                                              meta=dict(e.get("meta") or {}))  # fmt: skip
            exps.append(config.to_domain_obj())
        except Exception as err:  # GE raises several types for unknown expectations or bad kwargs
            raise InputError(f"{where}: expectation {i} ({kind}) is invalid: {err}") from None
    name = doc.get("name") or doc.get("expectation_suite_name") or "suite"
    return gx.ExpectationSuite(name=name, expectations=exps, meta=dict(doc.get("meta") or {}))


def _validate(frame: pd.DataFrame, suite: Any) -> list[dict[str, Any]]:
    """Validate one frame; one plain dict per expectation result."""
    ge = _ge()
    with _GE_LOCK:
        result = ge["batch"].get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    out = []
    for r in result.results:
        cfg = r.expectation_config
        res = dict(r.result or {})
        exc = dict(r.exception_info or {})
        out.append({
            "type": cfg.type,
            "column": cfg.kwargs.get("column"),
            "kwargs": {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)},
            "success": bool(r.success),
            "unexpected_count": res.get("unexpected_count"),
            "element_count": res.get("element_count"),
            "unexpected_percent": res.get("unexpected_percent"),
            "observed_value": res.get("observed_value"),
            "examples": list(res.get("partial_unexpected_list") or [])[:5],
            "error": exc.get("exception_message") if exc.get("raised_exception") else None,
        })  # fmt: skip
    return out


def _describe(split: str, r: dict[str, Any]) -> str:
    col = f" on {r['column']!r}" if r["column"] is not None else ""
    if r["error"]:
        return f"{split}: {r['type']}{col} could not be evaluated: {r['error']}"
    msg = f"{split}: {r['type']}{col} failed"
    if r["unexpected_count"] is not None and r["element_count"]:
        msg += f": {r['unexpected_count']} of {r['element_count']} rows unexpected ({r['unexpected_percent']:.2f}%)"
        if r["examples"]:
            msg += f", e.g. {', '.join(repr(v) for v in r['examples'][:3])}"
    elif r["observed_value"] is not None:
        msg += f" (observed {r['observed_value']!r})"
    return msg


def _report(
    per_split: dict[str, list[dict[str, Any]]], *, max_failed: int, info_splits: tuple[str, ...] = ()
) -> tuple[list[Metric], list[Finding], dict[str, Any], list[str]]:
    metrics, findings, rows, parts = [], [], [], []
    for split, results in per_split.items():
        failed = [r for r in results if not r["success"]]
        metrics.append(Metric(
            f"failed_expectations_{split}", len(failed), n=len(results), threshold=max_failed, direction="lower",
            description=f"expectations that {split} does not meet", details={"evaluated": len(results)},
        ))  # fmt: skip
        for r in failed:
            findings.append(Finding(
                _describe(split, r), severity="info" if split in info_splits else None,
                key=f"{split}:{r['type']}:{r['column']}", metric=f"failed_expectations_{split}",
                evidence={k: r[k] for k in ("type", "column", "kwargs", "unexpected_count", "element_count",
                                            "unexpected_percent", "observed_value", "examples", "error")},
            ))  # fmt: skip
        for r in sorted(results, key=lambda r: r["success"]):
            rows.append(
                [split, r["type"], r["column"], r["success"], r["unexpected_count"], r["unexpected_percent"]]
            )
        parts.append(f"{split}: {len(failed)} of {len(results)} expectations failed")
    passing = {m.name for m in metrics if m.passed}
    for f in findings:  # failures within the allowance (max_failed) are notes, not failures
        if f.metric in passing:
            f.severity = "info"
    evidence = {"Expectation results": {
        "columns": ["split", "expectation", "column", "success", "unexpected", "unexpected %"],
        "rows": rows[:MAX_ROWS], "total_rows": len(rows),
    }}  # fmt: skip
    return metrics, findings, evidence, parts


# --------------------------------------------------------------------------------------------
# AK-DQ-001
# --------------------------------------------------------------------------------------------
@check(
    id="AK-DQ-001",
    preflight=expectations_preflight,
    area="data",
    title="A user's Great Expectations suite, validated on every split",
    requires=("expectations",),
    severity="high",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.1", "MEASURE 2.9"),
    tags=("data", "quality", "great_expectations"),
    cost="moderate",
)
def expectation_suite(ctx: RunContext, /, *, splits: list[str] | None = None, max_failed: int = 0) -> Outcome:
    """Validates each split against the Great Expectations suite named by ``data.expectations``.

    The suite is GE 1.x JSON (``{"name": ..., "expectations": [{"type": ..., "kwargs": ...}]}``;
    0.x files with ``expectation_type`` are accepted) resolved against the spec's folder. Every
    split is validated with real GE validation on its raw columns; each failed expectation becomes
    a finding naming the split, the expectation, the column and the unexpected count, with examples.

    Parameters
    ----------
    splits: splits to validate; default (None) every split the audit has.
    max_failed: largest acceptable number of failed expectations per split.
    """
    rel = ctx.spec.data.expectations if ctx.spec is not None else None
    if not rel:
        raise NotApplicable("no data.expectations suite")
    loaded = ctx.artifacts.loaded
    path = loaded.resolve(rel) if loaded is not None else Path(rel)
    if not path.is_absolute() and loaded is None:
        raise NotApplicable("data.expectations is relative and the spec has no folder")
    if not path.is_file():
        raise FileNotFoundError(f"data.expectations: {path} not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"data.expectations: {path.name} is not valid JSON ({err})") from None
    present = ctx.splits()
    chosen = [s for s in (splits or present) if s in present]
    if not chosen:
        raise NotApplicable("no split to validate")
    suite = _suite_from_json(doc, f"data.expectations ({path.name})")
    per_split = {s: _validate(ctx.dataset(s).frame, suite) for s in chosen}
    metrics, findings, evidence, parts = _report(per_split, max_failed=max_failed)
    evidence["suite"] = {"path": str(path), "name": suite.name, "expectations": len(suite.expectations)}
    return Outcome(metrics=metrics, findings=findings, summary="; ".join(parts), evidence=evidence)


# --------------------------------------------------------------------------------------------
# AK-DQ-002
# --------------------------------------------------------------------------------------------
def _native(v: Any) -> Any:
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return v
    return v if isinstance(v, (bool, int, float, str)) else str(v)


def profile_expectations(
    ds: Dataset,
    *,
    range_tolerance: float,
    null_tolerance: float,
    mostly: float,
    max_categories: int,
    max_label_classes: int = 50,
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """GE expectation configurations profiled from one split, and a human table of the profile."""
    exps: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    cols = list(ds.features) + ([ds.label] if ds.label and ds.label in ds.frame else [])
    for col in cols:
        s = ds.frame[col]
        n = len(s)
        null_share = float(s.isna().mean()) if n else 0.0
        exps.append({"type": "expect_column_to_exist", "kwargs": {"column": col}})
        if null_share < 1.0:
            allowed = min(1.0, null_share + null_tolerance)
            exps.append({"type": "expect_column_values_to_not_be_null",
                         "kwargs": {"column": col, "mostly": round(1.0 - allowed, 6)}})  # fmt: skip
        categorical = col in ds.categorical or (
            col == ds.label and (not pd.api.types.is_numeric_dtype(s) or s.nunique() <= max_label_classes)
        )
        if categorical:
            codes, uniques = pd.factorize(s, use_na_sentinel=True)
            if 0 < len(uniques) <= max_categories:
                values = sorted({_native(u) for u in uniques}, key=lambda v: (type(v).__name__, str(v)))
                exps.append({"type": "expect_column_values_to_be_in_set",
                             "kwargs": {"column": col, "value_set": values, "mostly": mostly}})  # fmt: skip
                table.append([col, "categorical", f"{len(values)} values", null_share])
            else:
                table.append([col, "categorical", f"{len(uniques)} values (set not enforced)", null_share])
        elif pd.api.types.is_datetime64_any_dtype(s) or not pd.api.types.is_numeric_dtype(s.dtype):
            table.append([col, str(s.dtype), "type and range not enforced", null_share])
        else:
            v = pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan)
            v = v[np.isfinite(v)]
            exps.append({"type": "expect_column_values_to_be_in_type_list",
                         "kwargs": {"column": col, "type_list": _NUMERIC_TYPES}})  # fmt: skip
            if len(v):
                lo, hi = float(v.min()), float(v.max())
                pad = range_tolerance * (hi - lo) if hi > lo else range_tolerance * max(abs(lo), 1.0)
                exps.append({"type": "expect_column_values_to_be_between",
                             "kwargs": {"column": col, "min_value": lo - pad, "max_value": hi + pad,
                                        "mostly": mostly}})  # fmt: skip
                table.append([col, "numeric", f"[{lo:.6g}, {hi:.6g}] ± {pad:.3g}", null_share])
            else:
                table.append([col, "numeric", "no values", null_share])
    return exps, table


def _small_sample_suite(
    doc: dict[str, Any], frame: pd.DataFrame, min_unexpected_rows: int, where: str
) -> Any:
    """The profiled suite with ``mostly`` lowered so that ``min_unexpected_rows`` rows may miss."""
    exps = []
    for e in doc["expectations"]:
        kw = dict(e["kwargs"])
        col = kw.get("column")
        if "mostly" in kw and e["type"] != "expect_column_values_to_not_be_null" and col in frame:
            nonnull = int(frame[col].notna().sum())
            if nonnull:
                kw["mostly"] = min(kw["mostly"], max(0.0, 1.0 - (min_unexpected_rows + 0.5) / nonnull))
        exps.append({**e, "kwargs": kw})
    return _suite_from_json({**doc, "expectations": exps}, f"profiled suite ({where})")


@check(
    id="AK-DQ-002",
    area="data",
    title="Schema profiled from train, validated on the other splits with Great Expectations",
    requires=("train", "test|validation|production|ood"),
    severity="medium",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.1", "MEASURE 2.9"),
    tags=("data", "quality", "great_expectations"),
    cost="moderate",
)
def profiled_schema(
    ctx: RunContext,
    /,
    *,
    range_tolerance: float = 0.25,
    null_tolerance: float = 0.02,
    mostly: float = 0.99,
    max_categories: int = 1000,
    max_failed: int = 0,
    min_unexpected_rows: int = 2,
    splits: list[str] = ["validation", "test", "production", "ood"],  # noqa: B006 - JSON-native, never mutated
) -> Outcome:
    """Profiles train into Great Expectations expectations and validates the other splits with them.

    For every feature and the label: the column exists; its null share is at most train's plus
    ``null_tolerance``; numbers are of a numeric type and within train's range widened by
    ``range_tolerance`` × range on each side; categories (with at most ``max_categories``
    levels) come from train's set. Range and set expectations hold for a ``mostly`` share of rows.
    The suite is written into the bundle as ``profiled_suite.json`` (GE 1.x JSON) so a team can
    commit it, edit it and pass it to AK-DQ-001. Findings on the ``ood`` split are notes
    (``info``): it is meant to differ.

    Parameters
    ----------
    range_tolerance: widening of train's numeric range on each side, as a share of that range.
    null_tolerance: extra null share allowed above train's.
    mostly: share of rows that must meet a range or category-set expectation.
    max_categories: categorical columns with more levels than this get no category-set expectation.
    max_failed: largest acceptable number of failed expectations per split.
    min_unexpected_rows: up to this many rows outside a range or set never fail an expectation, so a
        small split is not failed for the one or two extremes that any new sample has (the
        expectation's ``mostly`` is lowered for that split only; the written suite keeps ``mostly``).
    splits: splits validated against the profile (those absent are skipped).
    """
    train = ctx.dataset("train")
    if len(train) == 0:
        raise NotApplicable("the train split has no rows")
    chosen = [s for s in splits if s in ctx.splits() and s != "train"]
    if not chosen:
        raise NotApplicable(f"none of the splits {splits} is present")
    exps, profile = profile_expectations(
        train, range_tolerance=range_tolerance, null_tolerance=null_tolerance, mostly=mostly,
        max_categories=max_categories,
    )  # fmt: skip
    doc = {
        "name": "auditkit-profiled-train",
        "expectations": exps,
        "meta": {"profiled_by": "auditkit AK-DQ-002", "train_rows": len(train), "range_tolerance": range_tolerance,
                 "null_tolerance": null_tolerance, "mostly": mostly, "max_categories": max_categories},
    }  # fmt: skip
    suite = _suite_from_json(doc, "profiled suite")
    ctx.write("profiled_suite.json", suite.to_json_dict())
    per_split = {}
    for split in chosen:
        frame = ctx.dataset(split).frame
        per_split[split] = _validate(frame, _small_sample_suite(doc, frame, min_unexpected_rows, split))
    metrics, findings, evidence, parts = _report(per_split, max_failed=max_failed, info_splits=("ood",))
    evidence["Profile of train"] = {"columns": ["column", "kind", "range or values", "null share"],
                                    "rows": profile[:MAX_ROWS], "total_rows": len(profile)}  # fmt: skip
    evidence["suite"] = {"file": "profiled_suite.json", "expectations": len(exps)}
    return Outcome(metrics=metrics, findings=findings, summary="; ".join(parts), evidence=evidence)


# --------------------------------------------------------------------------------------------
# AK-DQ-003
# --------------------------------------------------------------------------------------------
@check(
    id="AK-DQ-003",
    area="data",
    title="Duplicate rows and conflicting labels inside a split",
    requires=(),
    severity="medium",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.9"),
    tags=("data", "quality"),
)
def duplicates(
    ctx: RunContext,
    /,
    *,
    max_duplicate_ratio: float = 0.01,
    max_conflict_ratio: float = 0.0,
    decimals: int = 9,
) -> Outcome:
    """Finds repeated feature rows inside each split, and repeats that carry different labels.

    Rows are compared by the canonicalised-feature hash of AK-LEAK-001 (labels, ids, groups and
    times are not features). The duplicate ratio counts the extra copies (rows minus distinct
    rows) over all rows; the conflict ratio counts the rows whose features recur with more than one
    label, which puts a floor under the achievable error and often reveals a labelling fault.

    Parameters
    ----------
    max_duplicate_ratio: largest acceptable share of extra copies of a feature row in a split.
    max_conflict_ratio: largest acceptable share of rows whose features occur with different labels.
    decimals: numbers are rounded to this many decimal places before hashing.
    """
    from auditkit.toolkit.stats import wilson

    present = ctx.splits()
    if not present:
        raise NotApplicable("no data splits")
    metrics, evidence, parts = [], {}, []
    for split in present:
        ds = ctx.dataset(split)
        n = len(ds)
        if n == 0:
            continue
        h = cached_row_hashes(ctx, split, decimals)
        dup_mask = pd.Series(h).duplicated().to_numpy()
        k = int(dup_mask.sum())
        metrics.append(Metric(
            f"duplicate_ratio_{split}", k / n, ci=wilson(k, n), n=n, threshold=max_duplicate_ratio,
            direction="lower", description=f"extra copies of feature rows in {split}", details={"count": k},
        ))  # fmt: skip
        line = f"{split}: {k} duplicate rows"
        if ds.label and ds.label in ds.frame:
            [y] = label_codes(ds.frame[ds.label])
            labelled = y >= 0
            pairs = pd.DataFrame(
                {"h": h[labelled], "p": pair_hash(h[labelled], y[labelled])}
            ).drop_duplicates("p")
            bad = pairs["h"][pairs["h"].duplicated()].unique()
            conflict = pd.Series(h).isin(bad).to_numpy() & labelled
            kc = int(conflict.sum())
            metrics.append(Metric(
                f"conflict_ratio_{split}", kc / n, ci=wilson(kc, n), n=n, threshold=max_conflict_ratio,
                direction="lower", description=f"rows of {split} whose features occur with different labels",
                details={"count": kc, "feature_rows": int(len(bad))},
            ))  # fmt: skip
            line += f", {kc} rows with conflicting labels"
            if kc:
                idx = np.flatnonzero(conflict)
                grp = pd.DataFrame({"row": idx, "h": h[idx], "label": ds.frame[ds.label].to_numpy()[idx]})
                grp = grp.sort_values(["h", "row"]).head(MAX_ROWS)
                codes = pd.factorize(grp["h"])[0]
                evidence[f"Conflicting labels in {split}"] = {
                    "columns": ["row", "feature group", "label"],
                    "rows": [[int(r), int(c), _native(lab)] for r, c, lab in
                             zip(grp["row"], codes, grp["label"], strict=True)],
                    "total_rows": kc,
                }  # fmt: skip
        if k:
            first = pd.Series(np.arange(n), index=h)
            first = first[~first.index.duplicated()]
            rows = np.flatnonzero(dup_mask)[:MAX_ROWS]
            evidence[f"Duplicate rows in {split}"] = {
                "columns": ["row", "copy of row"],
                "rows": [[int(r), int(o)] for r, o in zip(rows, first.loc[h[rows]].to_numpy(), strict=True)],
                "total_rows": k,
            }
        parts.append(line)
    if not metrics:
        raise NotApplicable("every split is empty")
    return Outcome.from_metrics(metrics, summary="; ".join(parts), evidence=evidence)


# --------------------------------------------------------------------------------------------
# AK-DQ-004
# --------------------------------------------------------------------------------------------
@check(
    id="AK-DQ-004",
    area="data",
    title="Missing values, constant and all-null columns",
    requires=(),
    severity="medium",
    nist_ai_rmf=("MAP 2.3", "MEASURE 2.9"),
    tags=("data", "quality"),
)
def missing_and_constant(
    ctx: RunContext, /, *, max_missing_share: float = 0.2, min_rows_for_constant: int = 1000
) -> Outcome:
    """Finds columns with many missing values, columns that are entirely missing, and constant ones.

    For every split, each feature and the label is measured: its missing share (NaN, None, NaT),
    whether it is all-null, whether its non-missing values are a single value (a constant column
    carries no information; in train it is reported as ``low``, in another split only when train
    varies and the split has at least ``min_rows_for_constant`` rows, where it suggests a broken
    pipeline), and whether an object column mixes numbers with text (``low``). Rows left out
    because their label was empty (``data.drop_missing_labels: true``) are counted per split and
    reported (``low``): the audit judged fewer rows than the files hold.

    Parameters
    ----------
    max_missing_share: largest acceptable share of missing values in a column.
    min_rows_for_constant: fewest rows for a column constant outside train to be reported.
    """
    present = ctx.splits()
    if not present:
        raise NotApplicable("no data splits")
    metrics, findings, table, parts = [], [], [], []
    train_constant: set[str] = set()
    for split in present:
        ds = ctx.dataset(split)
        n = len(ds)
        if n == 0:
            continue
        cols = [c for c in list(ds.features) + ([ds.label] if ds.label else []) if c in ds.frame]
        if ds.dropped_missing_labels:
            total = n + ds.dropped_missing_labels
            findings.append(Finding(
                f"{split}: {ds.dropped_missing_labels} of {total} rows had no label {ds.label!r} and were left out "
                "(data.drop_missing_labels)", severity="low", key=f"{split}:{ds.label}:missing_labels",
                metric=f"dropped_missing_labels_{split}", evidence={"dropped": ds.dropped_missing_labels, "rows": total},
            ))  # fmt: skip
            metrics.append(Metric(f"dropped_missing_labels_{split}", ds.dropped_missing_labels, n=total,
                                  description=f"rows of {split} left out for an empty label"))  # fmt: skip
        worst, worst_col, n_null, n_const = 0.0, None, 0, 0
        for col in cols:
            s = ds.frame[col]
            miss = int(s.isna().sum())
            share = miss / n
            nunique = int(s.nunique(dropna=True))
            if share > worst:
                worst, worst_col = share, col
            state = "ok"
            if miss == n:
                state, n_null = "all null", n_null + 1
                findings.append(Finding(f"{split}: column {col!r} is entirely missing ({n} rows)",
                                        key=f"{split}:{col}:all_null", metric=f"all_null_columns_{split}"))  # fmt: skip
            elif share > max_missing_share:
                state = "many missing"
                findings.append(Finding(
                    f"{split}: column {col!r} is {share:.1%} missing ({miss} of {n}; maximum {max_missing_share:.0%})",
                    key=f"{split}:{col}:missing", metric=f"max_missing_share_{split}",
                    evidence={"missing": miss, "rows": n},
                ))  # fmt: skip
            if nunique == 1:
                if split == "train":
                    train_constant.add(col)
                if split == "train" or (col not in train_constant and n >= min_rows_for_constant):
                    state, n_const = "constant", n_const + 1
                    value = _native(s.dropna().iloc[0])
                    findings.append(Finding(
                        f"{split}: column {col!r} is constant ({value!r} in every non-missing row)",
                        severity="low", key=f"{split}:{col}:constant", metric=f"constant_columns_{split}",
                    ))  # fmt: skip
            if s.dtype == object and nunique > 1:
                uniques = pd.unique(s.dropna())
                kinds = {"number" if isinstance(u, (int, float, np.number)) and not isinstance(u, bool) else
                         "text" if isinstance(u, str) else type(u).__name__ for u in uniques[:100_000]}  # fmt: skip
                if "number" in kinds and "text" in kinds:
                    state = "mixed types" if state == "ok" else state
                    findings.append(Finding(
                        f"{split}: column {col!r} mixes numbers and text", severity="low",
                        key=f"{split}:{col}:mixed_types", evidence={"kinds": sorted(kinds)},
                    ))  # fmt: skip
            if state != "ok" or share > 0:
                table.append([split, col, share, nunique, state])
        metrics += [
            Metric(f"max_missing_share_{split}", worst, n=n, threshold=max_missing_share, direction="lower",
                   description=f"largest missing share of a column in {split}", details={"column": worst_col}),
            Metric(f"all_null_columns_{split}", n_null, n=len(cols), threshold=0, direction="lower",
                   description=f"entirely missing columns in {split}"),
            Metric(f"constant_columns_{split}", n_const, n=len(cols), threshold=0, direction="lower",
                   description=f"constant columns reported in {split}"),
        ]  # fmt: skip
        parts.append(f"{split}: max missing {worst:.1%}, {n_null} all-null, {n_const} constant")
    if not metrics:
        raise NotApplicable("every split is empty")
    table.sort(key=lambda r: -float(r[2]))  # type: ignore[arg-type]
    evidence = {"Columns with missing values or problems": {
        "columns": ["split", "column", "missing share", "distinct values", "state"],
        "rows": table[:MAX_ROWS], "total_rows": len(table),
    }}  # fmt: skip
    return Outcome(metrics=metrics, findings=findings, summary="; ".join(parts), evidence=evidence)
