"""Row hashing for exact-copy checks: features only, numbers canonicalised, one NaN, categories by text.

``row_hashes`` gives one uint64 per row of a dataset's canonicalised feature columns: each column
gives 64 bits (a number's IEEE bits after rounding to ``decimals``, -0.0 folded to 0.0 and one
canonical NaN; a category's hash of its text, so ``1`` and ``"1"`` are the same value), folded in
column order with splitmix64. Equal rows hash equal; a check that reports a copy confirms it on the
values (a 64-bit collision is possible at scale). ``file_sha256`` is the one file digest (inputs,
outputs, the bundle's manifest).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auditkit.toolkit.imports import lazy

if TYPE_CHECKING:
    import pandas as pd

    from auditkit.engine.context import RunContext
    from auditkit.inputs.data import Dataset
else:
    pd = lazy("pandas")

_NA_TEXT = "\x00<NA>"


def text_codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a column's values by their text (``1`` and ``"1"`` share a code); -1 = missing.

    Factorizes the raw values first, so ``str`` runs once per distinct value, not once per row.
    Returns (codes, texts of the codes).
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if isinstance(s.dtype, pd.StringDtype):  # already distinct texts: no per-value str()
        return codes.astype(np.int64), np.asarray(uniques, dtype=object)
    texts = np.array([str(u) for u in uniques], dtype=object)
    tcodes, tuniq = pd.factorize(texts)
    out = np.where(codes < 0, -1, tcodes[np.maximum(codes, 0)] if len(tcodes) else -1)
    return out.astype(np.int64), np.asarray(tuniq, dtype=object)


def _hash_text(s: pd.Series) -> np.ndarray:
    """Hash a categorical column by the text of its values (missing values share one hash)."""
    codes, texts = text_codes(s)
    hashed = pd.util.hash_array(np.append(texts, _NA_TEXT).astype(object), categorize=False)
    return hashed[codes]  # code -1 (missing) picks the last entry, the NA sentinel


def canonical_numeric(s: pd.Series, decimals: int) -> np.ndarray:
    """Float64 values rounded to ``decimals``, -0.0 → 0.0, one canonical NaN."""
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    v = np.round(v, decimals) + 0.0
    v[np.isnan(v)] = np.nan
    return v


_BLOCK = 1 << 16
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place on a uint64 array (a good 64-bit mixer, vectorised)."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def row_hashes(ds: Dataset, decimals: int = 9) -> np.ndarray:
    """uint64 hash per row of the canonicalised feature columns (see the module docstring).

    Each column gives 64 bits (a number's IEEE bits after canonicalisation, a category's text
    hash); they are folded in column order with ``h = mix(h ^ column)`` (splitmix64; each step
    is a bijection, so rows that differ in one column always hash apart).
    """
    n = len(ds)
    h = np.full(n, 0x84222325CBF29CE4, dtype=np.uint64)
    for f in ds.features:
        s = ds.frame[f]
        col = _hash_text(s) if f in ds.categorical else canonical_numeric(s, decimals).view(np.uint64)
        # a full mix per column: float bits of round numbers differ only in their top bits, which a
        # bare multiply would never carry down (collisions on images of small integers)
        for a in range(0, n, _BLOCK):  # cache-sized blocks: the mixer's 8 passes stay in L2
            blk = h[a : a + _BLOCK]
            blk ^= col[a : a + _BLOCK]
            _mix(blk)
    return h


def label_codes(*series: pd.Series) -> list[np.ndarray]:
    """Label codes shared by several columns (by text, as categories are); -1 where missing.

    Vectorised (factorize), unlike a per-row lookup: it matters at a million rows.
    """
    codes, _ = text_codes(pd.concat(list(series), ignore_index=True))
    out, start = [], 0
    for s in series:
        out.append(codes[start : start + len(s)])
        start += len(s)
    return out


def cached_row_hashes(ctx: RunContext, split: str, decimals: int = 9) -> np.ndarray:
    return ctx.cached(
        f"auditkit.inputs.data.row_hashes:{split}:{decimals}",
        lambda: row_hashes(ctx.dataset(split), decimals),
    )


def pair_hash(h: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A hash of (feature hash, label code)."""
    mixed = _mix(y.astype(np.int64).view(np.uint64) + np.uint64(0x632BE59BD9B4E019))
    return _mix(h ^ mixed)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes (hex), read in chunks: inputs, outputs and the manifest."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
