"""The files the reports are made of: templates, CSS and bundled fonts in ``auditkit.report_templates``.

The bottom of the render room: it imports nothing from auditkit, so every renderer (plots, common,
pdf, html, model_card) may use it without a cycle.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def templates_dir() -> Path:
    """The report templates' folder on disk (WeasyPrint's base URL; the fetcher's allowed root)."""
    # normpath, not resolve(): an editable install maps the package to a folder of symlinks.
    return Path(os.path.normpath(os.path.abspath(str(files("auditkit.report_templates")))))


def template_text(name: str) -> str:
    """The text of one file of the templates package (``report.css``, a schema, ...)."""
    return files("auditkit.report_templates").joinpath(name).read_text(encoding="utf-8")


def font_path(name: str) -> Path:
    """A bundled font (``DejaVuSans.ttf``, ``DejaVuSans-Bold.ttf``)."""
    return templates_dir() / "fonts" / name
