"""Datasets: loading CSV, Parquet and NPZ splits, roles of columns, encodings and fingerprints.

A ``Dataset`` keeps the raw table (``frame``) for data checks and gives the model's input
(``x``): tabular features as float32 with categorical features coded by the *train* categories
(unknown → -1), or an NPZ array as stored. Labels are coded by one class list shared by all splits.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.errors import InputError
from auditkit.toolkit.hashing import file_sha256 as file_sha256  # its home: the toolkit (the bundle uses it)

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq", ".npz")


@dataclass(frozen=True)
class Roles:
    """Which columns play which role. Shared by every split of one audit."""

    label: str | None = None
    features: Sequence[str] | None = None  # None = auto
    categorical: Sequence[str] | None = None  # None = infer from dtype
    id: str | None = None
    group: str | None = None
    time: str | None = None
    sensitive: Sequence[str] = ()
    exclude: Sequence[str] = ()
    drop_missing_labels: bool = False

    def meta_columns(self) -> list[str]:
        cols = [self.label, self.id, self.group, self.time]
        return [c for c in cols if c] + list(self.exclude)

    def not_auto_features(self) -> list[str]:
        """Columns ``features: auto`` never takes: every role, and the sensitive attributes (a user who
        wants one as a feature lists it under data.features)."""
        return self.meta_columns() + [c for c in self.sensitive if c not in self.meta_columns()]


@dataclass
class Dataset:
    """One split. ``frame`` holds every loaded column; role accessors return aligned arrays."""

    name: str
    frame: pd.DataFrame
    roles: Roles
    features: list[str]
    categorical: list[str]
    classes: list[Any] | None = None
    path: Path | None = None
    file_sha256: str | None = None
    # NPZ inputs keep their array shape (images); None for tabular data.
    array: np.ndarray | None = None
    categories: dict[str, list[Any]] = field(default_factory=dict)
    # Rows left out because their label was missing (data.drop_missing_labels: true).
    dropped_missing_labels: int = 0
    # "classification" (labels coded by ``classes``) or "regression" (``y`` is the numeric target).
    task: str = "classification"
    task_inferred: bool = True

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def kind(self) -> str:
        return "image" if self.array is not None and self.array.ndim > 2 else "tabular"

    @property
    def numeric(self) -> list[str]:
        return [f for f in self.features if f not in self.categorical]

    @property
    def label(self) -> str | None:
        return self.roles.label

    @cached_property
    def y(self) -> np.ndarray | None:
        """Labels coded 0..k-1 by the shared class list; -1 for a label unseen in any class list.

        For a regression task: the numeric target as float64, in label units (NaN where missing)."""
        if self.label is None or self.label not in self.frame:
            return None
        raw = self.frame[self.label]
        if self.task == "regression":
            return np.asarray(pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
        classes = (
            self.classes if self.classes is not None else sorted(raw.dropna().unique().tolist(), key=_key)
        )
        index = {c: i for i, c in enumerate(classes)}
        return np.fromiter((index.get(v, -1) for v in raw.tolist()), dtype=np.int64, count=len(raw))

    @cached_property
    def x(self) -> np.ndarray:
        """The model's input: float32, categorical features coded by train categories (unknown → -1)."""
        if self.array is not None:
            return self.array.astype(np.float32, copy=False)
        cols = []
        for f in self.features:
            s = self.frame[f]
            if f in self.categorical:
                cats = self.categories.get(f) or sorted(s.dropna().unique().tolist(), key=_key)
                codes = pd.Categorical(s, categories=cats).codes.astype(np.float32)
                cols.append(codes)
            else:
                cols.append(pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan))
        if not cols:
            return np.zeros((len(self.frame), 0), dtype=np.float32)
        return np.ascontiguousarray(np.column_stack(cols), dtype=np.float32)

    @property
    def x2d(self) -> np.ndarray:
        """``x`` flattened to (rows, features)."""
        return self.x.reshape(len(self), -1)

    def column(self, name: str | None) -> pd.Series | None:
        return self.frame[name] if name and name in self.frame else None

    @property
    def ids(self) -> pd.Series | None:
        return self.column(self.roles.id)

    @property
    def groups(self) -> pd.Series | None:
        return self.column(self.roles.group)

    @property
    def times(self) -> pd.Series | None:
        """The time column parsed as datetimes (numbers are kept as numbers)."""
        s = self.column(self.roles.time)
        if s is None or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            return s
        return pd.to_datetime(s, errors="coerce", utc=True)

    @property
    def sensitive(self) -> pd.DataFrame:
        cols = [c for c in self.roles.sensitive if c in self.frame]
        return self.frame[cols]

    def class_counts(self) -> dict[str, int]:
        if self.y is None or self.task == "regression":
            return {}
        classes = self.classes or []
        counts = np.bincount(self.y[self.y >= 0], minlength=len(classes))
        return {str(c): int(n) for c, n in zip(classes, counts, strict=False)}

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "sha256": self.file_sha256 or self.content_sha256(),
            "rows": len(self),
            "columns": len(self.frame.columns),
            "features": len(self.features),
            "class_counts": self.class_counts(),
            "dropped_missing_labels": self.dropped_missing_labels,
            **({"target": self.target_summary()} if self.task == "regression" else {}),
        }

    def target_summary(self) -> dict[str, Any]:
        """A regression target's count, mean, sd, min, median and max (None without labels)."""
        y = self.y
        if y is None:
            return {"n": 0}
        v = y[np.isfinite(y)]
        if not len(v):
            return {"n": 0}
        return {
            "n": int(len(v)), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "median": float(np.median(v)), "max": float(v.max()),
        }  # fmt: skip

    def content_sha256(self) -> str:
        """A hash of the content (for in-memory data without a file)."""
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.frame, index=False).to_numpy().tobytes())
        h.update(",".join(map(str, self.frame.columns)).encode())
        if self.array is not None:
            h.update(np.ascontiguousarray(self.array).tobytes())
        return h.hexdigest()


def _key(v: Any) -> tuple[int, Any]:
    """Sort key that orders numbers before strings without comparing across types."""
    return (0, v) if isinstance(v, (int, float, np.integer, np.floating)) else (1, str(v))


def read_table(path: Path, *, where: str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Read one split file: (frame, array or None). Errors name ``where`` and the file."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"{where}: unsupported file type {suffix!r} (use .csv, .parquet or .npz)")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, low_memory=False), None
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path), None
        return _read_npz(path, where=where)
    except InputError:
        raise
    except pd.errors.EmptyDataError as err:
        raise InputError(f"{where}: {path.name} is empty ({err})") from None
    except Exception as err:  # pandas/pyarrow raise many types for unparseable files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{where}: cannot read {path.name}: {first}") from None


def _read_npz(path: Path, *, where: str) -> tuple[pd.DataFrame, np.ndarray]:
    # allow_pickle=False: an .npz with object arrays is refused rather than unpickled.
    with np.load(path, allow_pickle=False) as npz:
        if "x" not in npz.files:
            raise InputError(f"{where}: {path.name} has no array 'x' (found: {', '.join(npz.files)})")
        x = npz["x"]
        extra = {k: npz[k] for k in npz.files if k != "x"}
    if x.ndim < 2:
        raise InputError(f"{where}: array 'x' in {path.name} must have a row axis and features")
    if x.ndim == 3:
        # (n, H, W) is a stack of single-channel images: give it the channel axis that image models,
        # attacks and corruptions expect, (n, 1, H, W). model.input.shape reshapes for other models.
        x = x[:, None]
    n = len(x)
    flat = x.reshape(n, -1)
    frame = pd.DataFrame(flat, columns=[f"x{i}" for i in range(flat.shape[1])])
    for k, v in extra.items():
        if v.ndim != 1 or len(v) != n:
            raise InputError(f"{where}: array {k!r} in {path.name} must be 1-D with {n} rows")
        frame[k] = v
    return frame, x


def infer_categorical(frame: pd.DataFrame, features: Sequence[str]) -> list[str]:
    """Object, string, category and boolean columns are categorical; numbers are not."""
    out = []
    for f in features:
        s = frame[f]
        if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s):  # noqa: SIM114
            out.append(f)
        elif not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_datetime64_any_dtype(s):
            out.append(f)
    return out


def build_datasets(
    frames: Mapping[str, tuple[pd.DataFrame, np.ndarray | None, Path | None]],
    roles: Roles,
    *,
    where: Mapping[str, str] | None = None,
    task: str | None = None,
    max_classes: int = 50,
) -> dict[str, Dataset]:
    """Validate roles against every split and build Datasets sharing features, categories, classes.

    ``frames`` maps split name to (frame, array or None, path or None); train (or the first split)
    defines features, categorical columns, category lists and the class list (extended by labels
    that only appear in other splits, which the data checks then report).

    ``task`` is the declared ``model.task``; None infers it: a numeric label with more than
    ``max_classes`` distinct values (over the labelled splits) is a regression target. A regression
    target has no class list and must be numeric in every labelled split.
    """
    where = dict(where or {})
    if not frames:
        return {}
    ref_name = "train" if "train" in frames else next(iter(frames))
    ref, ref_array, _ = frames[ref_name]
    for name, (frame, _arr, _p) in frames.items():
        loc = where.get(name, f"data.splits.{name}")
        if len(frame) == 0:
            raise InputError(f"{loc}: the split has no rows")
        if frame.columns.duplicated().any():
            dup = frame.columns[frame.columns.duplicated()][0]
            raise InputError(f"{loc}: duplicate column {dup!r}")
        for role in ("label", "id", "group", "time"):
            col = getattr(roles, role)
            if col and col not in frame.columns and not (role != "label" and name in ("ood",)):
                if role == "label" and name in ("ood", "production"):
                    continue  # OOD and production (drift) data are often unlabelled
                raise InputError(f"{loc}: {role} column {col!r} not found (columns: {_cols(frame)})")
        for col in roles.sensitive:
            if col not in frame.columns and name != "ood":
                raise InputError(f"{loc}: sensitive column {col!r} not found (columns: {_cols(frame)})")
    frames, dropped = _missing_labels(frames, roles, where)
    ref, ref_array, _ = frames[ref_name]
    meta = set(roles.meta_columns())
    if roles.features is None:
        never = set(roles.not_auto_features())
        features = [c for c in ref.columns if c not in never and not is_datetime_column(ref[c])]
        if ref_array is not None:
            features = [c for c in ref.columns if str(c).startswith("x") and str(c)[1:].isdigit()]
    else:
        features = list(roles.features)
        overlap = meta.intersection(features)
        if overlap:
            raise InputError(f"data.features: {sorted(overlap)} also have another role (label/id/group/time)")
    if not features:
        raise InputError(
            "data.features: no feature columns remain after removing label/id/group/time, "
            "sensitive, excluded and datetime columns; list the features under data.features"
        )
    for name, (frame, _arr, _p) in frames.items():
        missing = [f for f in features if f not in frame.columns]
        if missing:
            loc = where.get(name, f"data.splits.{name}")
            raise InputError(
                f"{loc}: feature {missing[0]!r} is missing"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
    categorical = (
        list(roles.categorical) if roles.categorical is not None else infer_categorical(ref, features)
    )
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise InputError(f"data.categorical: {unknown[0]!r} is not a feature")
    numeric = [f for f in features if f not in categorical]
    for name, (frame, _arr, _p) in frames.items():
        for f in numeric:
            s = frame[f]
            if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                continue
            converted = pd.to_numeric(s, errors="coerce")
            bad = s[converted.isna() & s.notna()]
            if len(bad):
                loc = where.get(name, f"data.splits.{name}")
                raise InputError(
                    f"{loc}: numeric feature {f!r} has non-numeric values (e.g. {str(bad.iloc[0])[:40]!r} "
                    f"in {len(bad)} rows); list it under data.categorical or clean it"
                )
    if roles.time:
        _check_times(frames, roles.time, where)
    categories = {c: sorted(ref[c].dropna().unique().tolist(), key=_key) for c in categorical}
    classes = None
    inferred = task is None
    if roles.label:
        task = _task(frames, roles.label, ref_name, task, max_classes, where)
    task = task or "classification"
    if roles.label and task == "classification":
        labels: list[Any] = []
        seen: set[Any] = set()
        for name in [ref_name] + [n for n in frames if n != ref_name]:
            frame = frames[name][0]
            if roles.label not in frame or (name == "ood" and ref_name != "ood"):
                continue  # OOD rows' labels (if any) are outside the task's label space
            for v in sorted(frame[roles.label].dropna().unique().tolist(), key=_key):
                if v not in seen:
                    seen.add(v)
                    labels.append(v)
        classes = sorted(labels, key=_key)
    out = {}
    for name, (frame, arr, path) in frames.items():
        out[name] = Dataset(
            name=name,
            frame=frame,
            roles=roles,
            features=features,
            categorical=categorical,
            classes=classes,
            path=path,
            file_sha256=file_sha256(path) if path else None,
            array=arr,
            categories=categories,
            dropped_missing_labels=dropped.get(name, 0),
            task=task,
            task_inferred=inferred,
        )
    return out


def _task(
    frames: Mapping[str, FrameTriple],
    label: str,
    ref_name: str,
    declared: str | None,
    max_classes: int,
    where: Mapping[str, str],
) -> str:
    """The declared task, or the inferred one; a regression target must be numeric everywhere."""
    labelled = {
        n: f[label] for n, (f, _a, _p) in frames.items() if label in f and (n != "ood" or n == ref_name)
    }
    if declared is None:
        values = [s for s in labelled.values() if s.notna().any()]  # an unlabelled split says nothing
        numeric = all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in values)
        distinct = pd.concat([s.dropna() for s in values]).nunique() if values else 0
        declared = "regression" if values and numeric and distinct > max_classes else "classification"
        if values and not numeric and distinct > max_classes:
            _refuse_text_label(values, label, distinct, max_classes)
    if declared == "regression":
        for name, s in labelled.items():
            converted = pd.to_numeric(s, errors="coerce")
            bad = s[converted.isna() & s.notna()]
            if len(bad) or not (
                pd.api.types.is_numeric_dtype(converted) and not pd.api.types.is_bool_dtype(s)
            ):
                loc = where.get(name, f"data.splits.{name}")
                example = f" (e.g. {str(bad.iloc[0])[:40]!r} in {len(bad)} rows)" if len(bad) else ""
                raise InputError(
                    f"{loc}: the regression target {label!r} has non-numeric values{example}; "
                    "model.task: regression needs a numeric label"
                )
            if not np.isfinite(converted.dropna().to_numpy(dtype=np.float64)).all():
                loc = where.get(name, f"data.splits.{name}")
                raise InputError(f"{loc}: the regression target {label!r} has infinite values")
    return declared


def _refuse_text_label(values: list[pd.Series], label: str, distinct: int, max_classes: int) -> None:
    """A text label with more distinct values than ``max_classes`` and no declared task is neither
    a classification auditkit would infer nor a regression target: refuse it with what to do. Often
    it is a number stored as text ('$5.23', '1,250'), which would otherwise be audited as a
    classifier with hundreds of one-row classes."""
    text = pd.concat([s.dropna().astype(str) for s in values])
    cleaned = pd.to_numeric(text.str.replace(r"[\s,$€£%]", "", regex=True), errors="coerce")
    example = str(text.iloc[0])[:40]
    if cleaned.notna().mean() >= 0.95:
        raise InputError(
            f"data.label: {label!r} holds numbers stored as text (e.g. {example!r}), {distinct} distinct values: "
            "write them as plain numbers to audit a regression (model.task: regression), or declare "
            "model.task: classification to treat each value as a class"
        )
    raise InputError(
        f"data.label: {label!r} is text with {distinct} distinct values (more than data.max_classes "
        f"{max_classes}), e.g. {example!r}: declare model.task: classification (or raise data.max_classes) "
        "to audit it as classes; a regression target must be numeric"
    )


# Splits whose labels are optional: OOD rows are outside the label space, and production data is
# often unlabelled (a label column that is empty throughout means "no labels", not missing ones).
_UNLABELLED_OK = ("ood", "production")

FrameTriple = tuple[pd.DataFrame, np.ndarray | None, Path | None]


def missing_label_mask(s: pd.Series) -> np.ndarray:
    """Rows whose label is missing: NaN/None/NaT, or text that is empty or only blanks."""
    miss = np.array(s.isna().to_numpy(), dtype=bool)  # a copy: pandas may hand out a read-only view
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        blank = s.astype(str).str.strip().to_numpy() == ""
        miss |= blank & ~miss
    return miss


def _missing_labels(
    frames: Mapping[str, FrameTriple], roles: Roles, where: Mapping[str, str]
) -> tuple[dict[str, FrameTriple], dict[str, int]]:
    """Refuse rows without a label (they used to vanish from every metric), or drop and count them
    when ``data.drop_missing_labels`` is true."""
    out: dict[str, FrameTriple] = dict(frames)
    dropped: dict[str, int] = {}
    if not roles.label:
        return out, dropped
    for name, (frame, arr, path) in frames.items():
        if roles.label not in frame.columns or name == "ood":
            continue
        miss = missing_label_mask(frame[roles.label])
        n_miss = int(miss.sum())
        if n_miss == 0 or (name in _UNLABELLED_OK and n_miss == len(frame)):
            continue
        loc = where.get(name, f"data.splits.{name}")
        if not roles.drop_missing_labels:
            raise InputError(
                f"{loc}: {n_miss} of {len(frame)} rows have no label in {roles.label!r} (empty or NaN); "
                "fill them, or set data.drop_missing_labels: true to leave them out (they are counted in results)"
            )
        if n_miss == len(frame):
            raise InputError(f"{loc}: every row has an empty label {roles.label!r}; nothing is left to audit")
        keep = ~miss
        out[name] = (frame.loc[keep].reset_index(drop=True), arr[keep] if arr is not None else None, path)
        dropped[name] = n_miss
    return out, dropped


def is_datetime_column(s: pd.Series) -> bool:
    """A datetime column (typed, or text that is entirely ISO 8601 dates): never an automatic feature."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return True
    if not (s.dtype == object or pd.api.types.is_string_dtype(s)):
        return False
    sample = s.dropna().astype(str).head(200)
    if sample.empty or not sample.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601", utc=True)
    return bool(parsed.notna().all())


def _check_times(
    frames: Mapping[str, tuple[pd.DataFrame, Any, Any]], col: str, where: Mapping[str, str]
) -> None:
    """The time column must parse in every split, and be dates everywhere or numbers everywhere.

    Unparsable text used to become missing silently (e.g. 13/05/2024 after an inferred
    month-first format), so temporal leakage was judged on the rows that happened to parse.
    """
    kinds: dict[str, str] = {}
    for name, (frame, _arr, _p) in frames.items():
        if col not in frame.columns:
            continue
        loc = where.get(name, f"data.splits.{name}")
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            kinds[name] = "dates"
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            kinds[name] = "numbers"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns when it falls back to dateutil
            parsed = pd.to_datetime(s, errors="coerce", utc=True)
        bad = s[parsed.isna() & s.notna()]
        if len(bad):
            raise InputError(
                f"{loc}: time column {col!r} has {len(bad)} values that are not dates (e.g. {str(bad.iloc[0])[:40]!r}; "
                "the format is inferred from the first value): write them as ISO 8601 (2024-05-13)"
            )
        kinds[name] = "dates"
    if len(set(kinds.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in kinds.items())
        raise InputError(
            f"data.time: time column {col!r} is dates in some splits and numbers in others ({detail})"
        )


def _cols(frame: pd.DataFrame, limit: int = 8) -> str:
    cols = [str(c) for c in frame.columns[:limit]]
    return ", ".join(cols) + (", ..." if len(frame.columns) > limit else "")


def from_arrays(
    x: np.ndarray, y: np.ndarray | None = None, **extra: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """An in-memory split from arrays, laid out as an NPZ file would be (for tests and the API)."""
    n = len(x)
    flat = np.asarray(x).reshape(n, -1)
    frame = pd.DataFrame(flat, columns=[f"x{i}" for i in range(flat.shape[1])])
    if y is not None:
        frame["y"] = np.asarray(y)
    for k, v in extra.items():
        frame[k] = np.asarray(v)
    return frame, np.asarray(x)
