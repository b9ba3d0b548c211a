"""The HTML report in a real browser (headless Chromium, the system's): nothing overflows its
container at desktop (1280 px) and phone (390 px) width, for the engine's bundle and for the
synthetic results with hostile and 10,000-character strings."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from browser import find_chromium, overflows

WIDTHS = (1280, 390)


@pytest.fixture(scope="module")
def synth() -> dict[str, Any]:
    from synth import synthetic_results

    return synthetic_results()


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        reason = (
            "NO CHROMIUM: the HTML layout tests did not run. Install it (`apt-get install -y chromium`, "
            "as .ci/run does) or point AUDITKIT_CHROMIUM at a Chromium/Chrome binary."
        )
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    return found


def test_the_probe_finds_an_overflow(chromium: str, tmp_path: Path) -> None:
    # A fixed 760 px column (the old report) overflows a phone; a fluid one does not.
    page = tmp_path / "page.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width"></head><body>'
        '<div style="width:760px">fixed</div><div style="width:60px;white-space:nowrap">rows_above_reference</div>'
        "</body></html>",
        encoding="utf-8",
    )
    found = overflows(chromium, page, 390)
    assert any(f.startswith("page:") for f in found), found
    assert any("fixed" in f and "leaves" in f for f in found), found
    assert any("rows_above" in f and "content" in f for f in found), found
    assert all("rows_above" in f for f in overflows(chromium, page, 1280))  # 760 px fits a desktop


@pytest.mark.parametrize("width", WIDTHS)
def test_synthetic_report_fits_the_window(
    chromium: str, synth: dict[str, Any], tmp_path: Path, width: int
) -> None:
    from auditkit.render.html import render

    (html,) = render(synth, tmp_path)
    assert overflows(chromium, html, width) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_engine_report_fits_the_window(chromium: str, engine_bundle: Path, width: int) -> None:
    assert overflows(chromium, engine_bundle / "report.html", width) == []
