"""HTML report: the PDF's content as one self-contained file (inline CSS and SVG, no fetches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FILENAME = "report.html"


def render(
    results: dict[str, Any], out_dir: Path, *, attachments: dict[str, bytes] | None = None
) -> list[Path]:
    from auditkit.render.common import render_html

    text = render_html(results, attachments=attachments, pdf=False)
    out = Path(out_dir) / FILENAME
    out.write_text(text, encoding="utf-8")
    return [out]
