"""Small, dependency-free SVG charts for the reports (line, bar, scatter).

Every text that comes from results.json is escaped here: the SVG is inserted into the HTML as
markup. Dense scatter plots are rasterised to a PNG data URI (drawn with Pillow, which WeasyPrint
already depends on) because thousands of vector circles make WeasyPrint slow (KNOWLEDGE.md).
Long line series are decimated to at most ``MAX_LINE_POINTS`` points per series.
"""

from __future__ import annotations

import base64
import io
import math
import re
from functools import lru_cache
from html import escape, unescape
from typing import Any

from auditkit.numbers import fmt_tick
from auditkit.safetext import inert

W, H = 420, 260
ML, MR, MT, MB = 52, 10, 38, 46
ROTATED_EXTRA = 26  # extra height under the plot when category labels are slanted (> 8 ticks)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#7f7f7f", "#000000")
MAX_LINE_POINTS = 150  # per series; an 8.7 cm wide plot cannot show more (and SVG paths cost WeasyPrint time)
MAX_SCATTER_POINTS = 50_000
MAX_SERIES = 8
MAX_CATEGORIES = 40
RASTER_ABOVE = 600  # scatter points: more than this and the points become a PNG


def _t(text: Any, limit: int = 60) -> str:
    s = inert(text, multiline=False)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return escape(s, quote=True)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    span = hi - lo
    raw = span / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    v = start
    while v <= hi + step * 1e-9 and len(ticks) < 12:
        ticks.append(round(v, 12))
        v += step
    return ticks


class _Frame:
    def __init__(self, xlo: float, xhi: float, ylo: float, yhi: float, log_y: bool = False) -> None:
        if xhi <= xlo:
            xlo, xhi = xlo - 0.5, xhi + 0.5
        if yhi <= ylo:
            ylo, yhi = ylo - 0.5, yhi + 0.5
        self.xlo, self.xhi, self.ylo, self.yhi, self.log_y = xlo, xhi, ylo, yhi, log_y

    def x(self, v: float) -> float:
        return ML + (v - self.xlo) / (self.xhi - self.xlo) * (W - ML - MR)

    def y(self, v: float) -> float:
        return H - MB - (v - self.ylo) / (self.yhi - self.ylo) * (H - MT - MB)


def _slanted(xticks: list[tuple[float, str]] | None) -> bool:
    """Category labels are slanted when there are more than 8, or when one of them is wider than
    its share of the axis (side by side they would run into each other)."""
    if xticks is None or not xticks:
        return False
    if len(xticks) > 8:
        return True
    slot = (W - ML - MR) / max(len(xticks), 1)
    return any(text_width(inert(label, multiline=False)[:14], 10) > slot - 4 for _, label in xticks)


def _extra_for(xticks: list[tuple[float, str]] | None) -> int:
    """Slanted tick labels reach below the default margin: the axis title moves under them."""
    return ROTATED_EXTRA if _slanted(xticks) else 0


PAD = 3  # no text comes closer than this to the edge of the chart


def _fit(
    text: Any, size: float, max_w: float, *, bold: bool = False, min_size: float = 7.0, limit: int = 60
) -> tuple[str, float]:
    """``text`` (escaped) and a font size at which it is at most ``max_w`` wide: the size shrinks
    down to ``min_size``, then the text is shortened with an ellipsis. Widths are those of the
    bundled DejaVu Sans, wider than the usual browser fallbacks, so the HTML fits too."""
    s = inert(text, multiline=False)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    while size > min_size and text_width(s, size, bold) > max_w:
        size = max(min_size, size - 0.5)
    while len(s) > 1 and text_width(s, size, bold) > max_w:
        s = s[:-2] + "…"
    return escape(s, quote=True), size


def _wrap2(text: str, size: float, max_w: float) -> list[str] | None:
    """``text`` as two lines that each fit ``max_w`` at ``size`` (bold), broken at a space (or
    after ``_``), or None when no break makes both lines fit."""
    cuts = [i + 1 for i, ch in enumerate(text) if ch in " _"]
    best = None
    for i in cuts:
        a, b = text[:i].rstrip(), text[i:].lstrip()
        fits = bool(a and b) and max(text_width(a, size, True), text_width(b, size, True)) <= max_w
        if fits and (best is None or abs(len(a) - len(b)) < abs(len(best[0]) - len(best[1]))):
            best = (a, b)
    return list(best) if best else None


def _title_lines(title: str) -> tuple[list[str], float]:
    """The title in one line (13 px, shrinking to 11), else two lines (11 px down to 9), else two
    lines with the second shortened: never wider than the chart."""
    s = inert(title, multiline=False)
    if len(s) > 160:
        s = s[:159] + "…"
    room = W - 2 * PAD
    for size in (13.0, 12.0, 11.0):
        if text_width(s, size, True) <= room:
            return [escape(s, quote=True)], size
    for size in (11.0, 10.0, 9.0):
        lines = _wrap2(s, size, room)
        if lines:
            return [escape(x, quote=True) for x in lines], size
    head = _wrap2(s[: len(s) // 2 + 1] + " x", 9.0, room)  # a first line that fits, the rest cut
    first = head[0] if head else s[: len(s) // 2]
    a, _ = _fit(first, 9.0, room, bold=True, min_size=9.0, limit=160)
    b, _ = _fit(s[len(first) :].lstrip(), 9.0, room, bold=True, min_size=9.0, limit=160)
    return [a, b], 9.0


def _legend_rows(names: list[str]) -> list[list[tuple[int, str, float]]]:
    """Legend entries (index, escaped name, width) flowed into rows as wide as the plot area."""
    if len(names) < 2:
        return []
    room = W - ML - MR
    rows: list[list[tuple[int, str, float]]] = [[]]
    used = 0.0
    for i, name in enumerate(names):
        label, _ = _fit(name, 9.5, min(room, 170) - 14, min_size=9.5)
        width = 12 + text_width(unescape(label), 9.5) + 10
        if rows[-1] and used + width > room:
            rows.append([])
            used = 0.0
        rows[-1].append((i, label, width))
        used += width
    return rows


def _open(title: str, label: str, extra: int = 0, legend: list[str] | None = None) -> list[str]:
    """The chart's opening: title (wrapped or shrunk to fit), legend rows (above the plot area, so
    they never hide data) and a group that moves the plot down when they need more than the
    default top margin. Close with ``_close()``."""
    lines, size = _title_lines(title)
    rows = _legend_rows(legend or [])
    out_title = []
    y = 2.0
    for line in lines:
        y += size * 1.2
        out_title.append(
            f'<text x="{W / 2}" y="{y - size * 0.25:.1f}" text-anchor="middle" font-size="{size:g}" '
            f'font-weight="bold">{line}</text>'
        )
    y += 2
    out_legend = []
    for row in rows:
        x = float(ML)
        y += 11
        for i, name, width in row:
            c = PALETTE[i % len(PALETTE)]
            out_legend.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="9" height="7" fill="{c}"/>')
            out_legend.append(f'<text x="{x + 12:.1f}" y="{y - 2:.1f}" font-size="9.5">{name}</text>')
            x += width
    top = max(0, math.ceil(y + 3 - MT))
    h = H + extra + top
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" '
        f'class="chart" role="img" aria-label="{_t(label, 200)}" font-family="AK Sans, DejaVu Sans, sans-serif">',
        f'<rect x="0" y="0" width="{W}" height="{h}" fill="#ffffff"/>',
        *out_title,
        *out_legend,
        f'<g transform="translate(0 {top})">',
    ]


def _close() -> str:
    return "</g></svg>"


def _no_data() -> str:
    return f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" font-size="11">no data</text>' + _close()


_COS35, _SIN35 = math.cos(math.radians(35)), math.sin(math.radians(35))


def _axes(
    fr: _Frame, x_label: str, y_label: str, xticks: list[tuple[float, str]] | None = None, extra: int = 0
) -> list[str]:
    out = [
        f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" fill="none" stroke="#444" stroke-width="0.8"/>'
    ]
    for v in _nice_ticks(fr.ylo, fr.yhi):
        if fr.ylo - 1e-12 <= v <= fr.yhi + 1e-12:
            y = fr.y(v)
            label, size = _fit(fmt_tick(10**v) if fr.log_y else fmt_tick(v), 10, ML - 4 - PAD - 14)
            out.append(
                f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#e3e3e3" stroke-width="0.6"/>'
            )
            out.append(
                f'<text x="{ML - 4}" y="{y + 3:.1f}" text-anchor="end" font-size="{size:g}">{label}</text>'
            )
    categorical = xticks is not None
    if xticks is None:
        xticks = [
            (v, fmt_tick(v)) for v in _nice_ticks(fr.xlo, fr.xhi) if fr.xlo - 1e-12 <= v <= fr.xhi + 1e-12
        ]
    rotate = _slanted(xticks) if categorical else False
    xs_ = sorted(fr.x(v) for v, _ in xticks)
    spacing = min((b - a for a, b in zip(xs_, xs_[1:], strict=False)), default=float(W))
    for v, raw in xticks:
        x = fr.x(v)
        out.append(
            f'<line x1="{x:.1f}" y1="{H - MB}" x2="{x:.1f}" y2="{H - MB + 3}" stroke="#444" stroke-width="0.6"/>'
        )
        if rotate:
            # slanted 35°, ending at the tick: as long as the room to the left and below allows
            room = min((x - PAD) / _COS35, (MB + ROTATED_EXTRA - 24) / _SIN35)
            label, size = _fit(raw, 9, room, min_size=9, limit=14)
            out.append(
                f'<text x="{x:.1f}" y="{H - MB + 10}" text-anchor="end" font-size="{size:g}" '
                f'transform="rotate(-35 {x:.1f} {H - MB + 10})">{label}</text>'
            )
        else:
            edge = 2 * (W - PAD - x) if x > W / 2 else 2 * (x - PAD)
            label, size = _fit(
                raw, 10, min(edge, spacing - 4), min_size=7, limit=14
            )  # never into a neighbour
            out.append(
                f'<text x="{x:.1f}" y="{H - MB + 13}" text-anchor="middle" font-size="{size:g}">{label}</text>'
            )
    xl, xs = _fit(x_label, 11, 2 * (W - PAD - (ML + W - MR) / 2))
    out.append(
        f'<text x="{(ML + W - MR) / 2}" y="{H + extra - 6}" text-anchor="middle" font-size="{xs:g}">{xl}</text>'
    )
    yl, ys = _fit(y_label, 11, H - MB - MT + 30)
    out.append(
        f'<text x="12" y="{(MT + H - MB) / 2}" text-anchor="middle" font-size="{ys:g}" '
        f'transform="rotate(-90 12 {(MT + H - MB) / 2})">{yl}</text>'
    )
    return out


def _decimate(pts: list[tuple[float, float]], limit: int = MAX_LINE_POINTS) -> list[tuple[float, float]]:
    if len(pts) <= limit:
        return pts
    step = len(pts) / limit
    out = [pts[int(i * step)] for i in range(limit)]
    if out[-1] != pts[-1]:
        out.append(pts[-1])
    return out


def _xy(series: dict[str, Any], key_x: str = "x", key_y: str = "y") -> tuple[list[Any], list[Any]]:
    xs = list(series.get(key_x) or [])
    ys = list(series.get(key_y) or [])
    n = min(len(xs), len(ys)) if xs else len(ys)
    if not xs:
        xs = list(range(n))
    return xs[:n], ys[:n]


def _stride(n: int, limit: int) -> list[int]:
    """Evenly spaced indices into a series of ``n`` points, at most ``limit`` + 1, first and last kept."""
    if n <= limit:
        return list(range(n))
    step = n / limit
    idx = [int(i * step) for i in range(limit)]
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return idx


def _thin(series: dict[str, Any]) -> dict[str, Any]:
    """Decimate a long line series before any per-point work (x, y and the band together)."""
    xs, ys = _xy(series)
    if len(ys) <= MAX_LINE_POINTS:
        return series
    idx = _stride(len(ys), MAX_LINE_POINTS)
    out = {**series, "x": [xs[i] for i in idx], "y": [ys[i] for i in idx]}
    for key in ("lo", "hi"):
        vals = list(series.get(key) or [])
        out[key] = [vals[i] for i in idx if i < len(vals)] if len(vals) >= len(ys) else []
    return out


def line_chart(plot: dict[str, Any]) -> str:
    series = [_thin(s) for s in (plot.get("series") or []) if isinstance(s, dict)][:MAX_SERIES]
    log_y = bool(plot.get("log_y"))

    def ty(v: Any) -> float | None:
        f = _num(v)
        if f is None:
            return None
        if log_y:
            return math.log10(f) if f > 0 else None
        return f

    # Categorical x values (strings) are placed at their index.
    cats: list[str] | None = None
    first_x = _xy(series[0])[0] if series else []
    if first_x and any(_num(v) is None for v in first_x):
        cats = [str(v) for v in first_x]
    parsed = []
    for s in series:
        xs, ys = _xy(s)
        lo, hi = list(s.get("lo") or []), list(s.get("hi") or [])
        pts: list[tuple[float, float] | None] = []
        band: list[tuple[float, float, float]] = []
        for i, (xv, yv) in enumerate(zip(xs, ys, strict=False)):
            xf = float(i) if cats is not None else _num(xv)
            yf = ty(yv)
            if xf is None or yf is None:
                pts.append(None)
                continue
            pts.append((xf, yf))
            if i < len(lo) and i < len(hi):
                lf, hf = ty(lo[i]), ty(hi[i])
                if lf is not None and hf is not None:
                    band.append((xf, lf, hf))
        parsed.append((str(s.get("name", "")), pts, band))
    allx = [p[0] for _, pts, _ in parsed for p in pts if p]
    ally = [p[1] for _, pts, _ in parsed for p in pts if p] + [
        v for _, _, b in parsed for t in b for v in t[1:]
    ]
    title = str(plot.get("title") or "")
    xticks = None
    if cats is not None:
        stride = max(1, math.ceil(len(cats) / 12))
        xticks = [(float(i), c) for i, c in enumerate(cats) if i % stride == 0]
    extra = _extra_for(xticks)
    parts = _open(title, title, extra, [n for n, _, _ in parsed])
    if not allx:
        parts.append(_no_data())
        return "".join(parts)
    xlo, xhi, ylo, yhi = min(allx), max(allx), min(ally), max(ally)
    if plot.get("diagonal"):
        lo_, hi_ = min(xlo, ylo), max(xhi, yhi)
        xlo, xhi, ylo, yhi = lo_, hi_, lo_, hi_
    pad = (yhi - ylo) * 0.05 or 0.05
    fr = _Frame(
        xlo,
        xhi,
        ylo - pad if not plot.get("diagonal") else ylo,
        yhi + pad if not plot.get("diagonal") else yhi,
        log_y,
    )
    parts += _axes(fr, str(plot.get("x_label") or ""), str(plot.get("y_label") or ""), xticks, extra)
    if plot.get("diagonal"):
        parts.append(
            f'<line x1="{fr.x(xlo):.1f}" y1="{fr.y(xlo):.1f}" x2="{fr.x(xhi):.1f}" y2="{fr.y(xhi):.1f}" '
            'stroke="#999" stroke-dasharray="4 3" stroke-width="0.8"/>'
        )
    for i, (_, pts, band) in enumerate(parsed):
        c = PALETTE[i % len(PALETTE)]
        if len(band) >= 2:
            b = _decimate([(x, lo) for x, lo, _ in band])
            t = _decimate([(x, hi) for x, _, hi in band])
            poly = " ".join(f"{fr.x(x):.1f},{fr.y(y):.1f}" for x, y in b + t[::-1])
            parts.append(f'<polygon points="{poly}" fill="{c}" fill-opacity="0.15" stroke="none"/>')
        runs: list[list[tuple[float, float]]] = [[]]
        for p in pts:
            if p is None:
                runs.append([])
            else:
                runs[-1].append(p)
        for run in runs:
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle cx="{fr.x(x):.1f}" cy="{fr.y(y):.1f}" r="2.2" fill="{c}"/>')
            elif run:
                d = " ".join(f"{fr.x(x):.1f},{fr.y(y):.1f}" for x, y in _decimate(run))
                parts.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="1.5"/>')
                if len(run) <= 25:
                    parts += [
                        f'<circle cx="{fr.x(x):.1f}" cy="{fr.y(y):.1f}" r="1.8" fill="{c}"/>' for x, y in run
                    ]
    parts.append(_close())
    return "".join(parts)


def bar_chart(plot: dict[str, Any]) -> str:
    cats = [str(c) for c in (plot.get("categories") or [])][:MAX_CATEGORIES]
    series = [s for s in (plot.get("series") or []) if isinstance(s, dict)][:MAX_SERIES]
    title = str(plot.get("title") or "")
    stride = max(1, math.ceil(len(cats) / 20))
    ticks = [(float(i), c) for i, c in enumerate(cats) if i % stride == 0]
    extra = _extra_for(ticks)
    parts = _open(title, title, extra, [str(s.get("name", "")) for s in series])
    vals = [[_num(v) for v in list(s.get("values") or [])[: len(cats)]] for s in series]
    flat = [v for vs in vals for v in vs if v is not None]
    if not cats or not flat:
        parts.append(_no_data())
        return "".join(parts)
    ylo, yhi = min(0.0, min(flat)), max(0.0, max(flat))
    fr = _Frame(-0.5, len(cats) - 0.5, ylo, yhi + (yhi - ylo) * 0.05)
    parts += _axes(fr, str(plot.get("x_label") or ""), str(plot.get("y_label") or ""), ticks, extra)
    slot = (W - ML - MR) / len(cats)
    bw = slot * 0.8 / max(len(series), 1)
    for si, vs in enumerate(vals):
        c = PALETTE[si % len(PALETTE)]
        for ci, v in enumerate(vs):
            if v is None:
                continue
            x0 = fr.x(ci - 0.4) + si * bw
            y0, y1 = fr.y(max(v, 0.0)), fr.y(min(v, 0.0))
            parts.append(
                f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{bw:.1f}" height="{max(y1 - y0, 0.3):.1f}" fill="{c}"/>'
            )
    parts.append(_close())
    return "".join(parts)


def _png_points(fr: _Frame, series: list[tuple[str, list[tuple[float, float]]]]) -> str:
    """The points as a transparent PNG the size of the plot area (2x), drawn with numpy."""
    import numpy as np
    from PIL import Image

    scale = 2
    pw, ph = (W - ML - MR) * scale, (H - MT - MB) * scale
    img = np.zeros((ph, pw, 4), dtype=np.uint8)
    for i, (_, pts) in enumerate(series):
        if not pts:
            continue
        c = PALETTE[i % len(PALETTE)]
        rgba = np.array([int(c[k : k + 2], 16) for k in (1, 3, 5)] + [190], dtype=np.uint8)
        arr = np.asarray(pts, dtype=float)
        px = np.rint((ML + (arr[:, 0] - fr.xlo) / (fr.xhi - fr.xlo) * (W - ML - MR) - ML) * scale).astype(int)
        py = np.rint((H - MB - (arr[:, 1] - fr.ylo) / (fr.yhi - fr.ylo) * (H - MT - MB) - MT) * scale).astype(
            int
        )
        for dx in (-2, -1, 0, 1, 2):  # a 5x5 dot without its corners
            for dy in (-2, -1, 0, 1, 2):
                if abs(dx) + abs(dy) > 3:
                    continue
                x, y = px + dx, py + dy
                ok = (x >= 0) & (x < pw) & (y >= 0) & (y < ph)
                img[y[ok], x[ok]] = rgba
    buf = io.BytesIO()
    Image.fromarray(img, "RGBA").save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _finite_pairs(xs: list[Any], ys: list[Any]) -> list[tuple[float, float]]:
    """(x, y) pairs of finite numbers; numpy for long all-numeric series, per value otherwise."""
    import numpy as np

    if len(xs) > 1000:
        try:
            ax = np.asarray(xs, dtype=float)
            ay = np.asarray(ys, dtype=float)
        except (TypeError, ValueError):
            pass
        else:
            if ax.dtype.kind == "f" and not any(isinstance(v, bool) for v in xs[:1] + ys[:1]):
                ok = np.isfinite(ax) & np.isfinite(ay)
                return list(zip(ax[ok].tolist(), ay[ok].tolist(), strict=True))
    return [
        (fx, fy)
        for fx, fy in ((_num(a), _num(b)) for a, b in zip(xs, ys, strict=False))
        if fx is not None and fy is not None
    ]


def scatter_chart(plot: dict[str, Any]) -> str:
    series = [s for s in (plot.get("series") or []) if isinstance(s, dict)][:MAX_SERIES]
    parsed = []
    for s in series:
        xs, ys = _xy(s)
        xs, ys = xs[:MAX_SCATTER_POINTS], ys[:MAX_SCATTER_POINTS]
        pts = _finite_pairs(xs, ys)
        parsed.append((str(s.get("name", "")), pts))
    title = str(plot.get("title") or "")
    parts = _open(title, title, 0, [n for n, _ in parsed])
    allp = [p for _, pts in parsed for p in pts]
    if not allp:
        parts.append(_no_data())
        return "".join(parts)
    xs = [p[0] for p in allp]
    ys = [p[1] for p in allp]
    px, py = (max(xs) - min(xs)) * 0.03 or 0.5, (max(ys) - min(ys)) * 0.03 or 0.5
    fr = _Frame(min(xs) - px, max(xs) + px, min(ys) - py, max(ys) + py)
    parts += _axes(fr, str(plot.get("x_label") or ""), str(plot.get("y_label") or ""))
    if len(allp) > RASTER_ABOVE:
        uri = _png_points(fr, parsed)
        parts.append(
            f'<image x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" href="{uri}" '
            'preserveAspectRatio="none"/>'
        )
    else:
        r = min(
            max(_num(plot.get("point_radius")) or 2.0, 1.0), 8.0
        )  # a few labelled points may be drawn larger
        for i, (_, pts) in enumerate(parsed):
            c = PALETTE[i % len(PALETTE)]
            parts += [
                f'<circle cx="{fr.x(x):.1f}" cy="{fr.y(y):.1f}" r="{r:g}" fill="{c}" fill-opacity="0.7"/>'
                for x, y in pts
            ]
    parts.append(_close())
    return "".join(parts)


def render_plot(plot: Any) -> str | None:
    """SVG text for one plot spec from check evidence, or None when the spec is not a plot."""
    if not isinstance(plot, dict):
        return None
    kind = plot.get("type")
    try:
        if kind == "line":
            return line_chart(plot)
        if kind == "bar":
            return bar_chart(plot)
        if kind == "scatter":
            return scatter_chart(plot)
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError):
        return None  # a malformed plot is shown as "could not be drawn", never breaks the report
    return None


_ANCHORED = re.compile(
    r'<text x="(?P<x>-?[\d.]+)"(?P<y> y="-?[\d.]+") text-anchor="(?P<anchor>middle|end)" '
    r'font-size="(?P<size>[\d.]+)"(?P<rest>[^>]*)>(?P<label>[^<]*)</text>'
)


@lru_cache(maxsize=1)
def _advances() -> tuple[dict[int, int], dict[int, int], int]:
    """Advance widths (font units) of the bundled DejaVu Sans regular and bold, by code point."""
    from fontTools.ttLib import TTFont  # a WeasyPrint dependency; loaded only for the PDF

    from auditkit.render.resources import font_path

    tables = []
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        font = TTFont(font_path(name), lazy=True)
        metrics = font["hmtx"].metrics
        tables.append({cp: metrics[glyph][0] for cp, glyph in font.getBestCmap().items()})
        upm = int(font["head"].unitsPerEm)
    return tables[0], tables[1], upm


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of ``text`` set in the PDF's plot font (bundled DejaVu Sans), kerning ignored."""
    regular, heavy, upm = _advances()
    table = heavy if bold else regular
    fallback = table.get(ord("0"), upm // 2)
    return sum(table.get(ord(ch), fallback) for ch in text) * size / upm


def start_anchored(svg: str) -> str:
    """The same chart with every middle/end-anchored label moved to an explicit start position.

    For the PDF only, whose plot font is known (the bundled DejaVu Sans): WeasyPrint draws each
    anchored SVG text into its own PDF form XObject, measured and shifted afterwards (≈ 0.15 s
    for the demo's 300 labels); a start-anchored label is drawn in place. Browsers (the HTML
    report) may pick another font, so the HTML keeps ``text-anchor``."""

    def place(m: re.Match[str]) -> str:
        width = text_width(unescape(m["label"]), float(m["size"]), 'font-weight="bold"' in m["rest"])
        x = float(m["x"]) - (width / 2 if m["anchor"] == "middle" else width)
        return f'<text x="{x:.1f}"{m["y"]} font-size="{m["size"]}"{m["rest"]}>{m["label"]}</text>'

    return _ANCHORED.sub(place, svg)
