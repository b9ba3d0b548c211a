"""Where the text of an auditkit SVG chart lands: the box of every <text>, after its transforms,
measured with the bundled font (the one the PDF draws it with)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from typing import Any

NS = "{http://www.w3.org/2000/svg}"
_TRANSFORM = re.compile(r"(translate|rotate)\(([^)]*)\)")


def _matrix(transform: str | None) -> list[tuple[str, list[float]]]:
    return [
        (k, [float(x) for x in re.split(r"[ ,]+", a.strip())]) for k, a in _TRANSFORM.findall(transform or "")
    ]


def _apply(ops: list[tuple[str, list[float]]], x: float, y: float) -> tuple[float, float]:
    for kind, a in reversed(ops):  # innermost transform first
        if kind == "translate":
            x, y = x + a[0], y + (a[1] if len(a) > 1 else 0.0)
        else:
            ang = math.radians(a[0])
            cx, cy = (a[1], a[2]) if len(a) == 3 else (0.0, 0.0)
            dx, dy = x - cx, y - cy
            x, y = cx + dx * math.cos(ang) - dy * math.sin(ang), cy + dx * math.sin(ang) + dy * math.cos(ang)
    return x, y


def text_boxes(svg: str) -> tuple[tuple[float, float], list[dict[str, Any]]]:
    """(viewBox width, height) and, per text element, its label and the corners of its box."""
    from auditkit.render.plots import text_width

    root = ET.fromstring(svg)
    _, _, vw, vh = (float(v) for v in root.get("viewBox", "0 0 0 0").split())
    out: list[dict[str, Any]] = []

    def walk(el: ET.Element, ops: list[tuple[str, list[float]]]) -> None:
        ops = ops + _matrix(el.get("transform"))
        if el.tag == NS + "text":
            label = "".join(el.itertext())
            size = float(el.get("font-size", "16"))
            width = text_width(label, size, el.get("font-weight") == "bold")
            x, y = float(el.get("x", "0")), float(el.get("y", "0"))
            anchor = el.get("text-anchor", "start")
            x0 = x - (width / 2 if anchor == "middle" else width if anchor == "end" else 0.0)
            corners = [
                _apply(ops, cx, cy) for cx in (x0, x0 + width) for cy in (y - 0.76 * size, y + 0.24 * size)
            ]
            out.append({"label": label, "size": size, "corners": corners})
        for child in el:
            walk(child, ops)

    walk(root, [])
    return (vw, vh), out


def outside(svg: str) -> list[str]:
    """The labels whose box is not inside the viewBox."""
    (vw, vh), boxes = text_boxes(svg)
    return [
        f"{b['label']!r} at {[(round(x), round(y)) for x, y in b['corners']]} (viewBox {vw:g}x{vh:g})"
        for b in boxes
        if any(x < -0.5 or y < -0.5 or x > vw + 0.5 or y > vh + 0.5 for x, y in b["corners"])
    ]


def overlapping(svg: str, slack: float = 0.5) -> list[str]:
    """Pairs of upright labels whose boxes overlap (slanted labels are skipped: their boxes are not
    axis-aligned)."""
    _, boxes = text_boxes(svg)
    upright = []
    for b in boxes:
        xs = [x for x, _ in b["corners"]]
        ys = [y for _, y in b["corners"]]
        if len({round(x, 3) for x in xs}) == 2 and len({round(y, 3) for y in ys}) == 2:
            upright.append((b["label"], min(xs), min(ys), max(xs), max(ys)))
    out = []
    for i, a in enumerate(upright):
        for b in upright[i + 1 :]:
            if a[1] < b[3] - slack and b[1] < a[3] - slack and a[2] < b[4] - slack and b[2] < a[4] - slack:
                out.append(f"{a[0]!r} overlaps {b[0]!r}")
    return out
