"""Display formatting of numbers and text for every report: the one place that rounds.

results.json keeps full precision; these decide what a reader sees. ``fmt_num`` (table cells,
metrics), ``fmt_ci`` (intervals), ``fmt_value`` (any cell), ``fmt_tick`` (plot axes), ``cut``
(long text). A root module like ``safetext``, so that every room that writes a number for a person
uses it: render/ (every report) and results/ (the gate's and the diff's messages). It imports
nothing from auditkit.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_NAME = 160  # titles, keys, column names, cell values


def cut(value: Any, limit: int = MAX_NAME) -> str:
    """Display text: ``str(value)`` shortened to ``limit`` characters with a note of what was cut."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if len(s) <= limit:
        return s
    return f"{s[:limit]}… [{len(s) - limit:,} more characters in results.json]"


NOISE = 1e-12  # |x| below this is floating-point residue (a std of identical runs: 1.4e-16), shown as 0
_SMALL_IS_REAL = re.compile(r"(^|[^a-z])(p|q)([_ -]?(value|adj|adjusted)|$|[^a-z])|pval|fdr", re.I)


def small_is_real(name: Any) -> bool:
    """Whether tiny values of the metric or column ``name`` mean something (p-values, FDR)."""
    return bool(_SMALL_IS_REAL.search(str(name or "")))


def fmt_num(v: Any, *, keep_tiny: bool = False) -> str:
    """Round for display: 4 significant digits, integers exact, None as an em dash.

    Numerical noise (``|v| < NOISE``) is shown as 0 unless ``keep_tiny`` (a p-value of 1e-30 is
    real); results.json keeps full precision."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v == 0 or (abs(v) < NOISE and not keep_tiny):
            return "0"
        if abs(v) >= 1e6 or abs(v) < 1e-4:
            return f"{v:.3e}"
        if abs(v) >= 1000:
            return f"{v:,.1f}"
        return f"{v:.4g}"
    return cut(v)


def fmt_ci(ci: Any, *, keep_tiny: bool = False) -> str:
    if not ci or not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return ""
    return f"[{fmt_num(ci[0], keep_tiny=keep_tiny)}, {fmt_num(ci[1], keep_tiny=keep_tiny)}]"


def fmt_value(v: Any, limit: int = MAX_NAME, *, keep_tiny: bool = False) -> str:
    if isinstance(v, (int, float, bool)) or v is None:
        return fmt_num(v, keep_tiny=keep_tiny)
    if isinstance(v, (dict, list)):
        return cut(json.dumps(v, sort_keys=True, ensure_ascii=False, default=str), limit)
    return cut(v, limit)


def fmt_tick(v: float) -> str:
    """An axis tick label: shorter than ``fmt_num`` (2 significant digits in exponent form), as
    ticks are round numbers drawn in a narrow margin."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"
