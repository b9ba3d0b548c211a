"""The PDF renderer's patches of WeasyPrint, pydyf and gc: still aimed at something that exists in the
installed versions (an upgrade that renames a target fails here, not silently), and undone after a
render, also when the render raises."""

from __future__ import annotations

import gc
import importlib
import os
from typing import Any

import pytest
from synth import synthetic_results

from auditkit.render import pdf


def _state() -> dict[str, Any]:
    import pydyf
    import weasyprint.svg as wsvg

    return {
        "zlib": pydyf.zlib,
        "svg_text": wsvg.text,
        "tags": dict(wsvg.TAGS),
        "gc": gc.get_threshold(),
        "epoch": os.environ.get("SOURCE_DATE_EPOCH"),
    }


@pytest.mark.parametrize(("module", "name"), pdf.PATCH_TARGETS)
def test_patch_targets_exist_in_installed_versions(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), (
        f"{module}.{name} is gone: revisit auditkit.render.pdf"
    )


def test_svg_text_patch_applies_to_installed_weasyprint() -> None:
    """The fast path is skipped on another major version: fail loudly so it is re-checked, not lost."""
    import weasyprint
    import weasyprint.svg as wsvg

    assert weasyprint.__version__.startswith(pdf.SVG_TEXT_VERSION), weasyprint.__version__
    assert wsvg.text.__module__ == "weasyprint.svg.text"
    assert any(f is wsvg.text for f in wsvg.TAGS.values())
    original = wsvg.text
    with pdf._fast_svg_text():
        assert wsvg.text.__module__ == "auditkit.render.pdf"  # applied, not silently skipped
        assert not any(f is original for f in wsvg.TAGS.values())
    assert wsvg.text is original


def test_state_restored_after_a_render() -> None:
    before = _state()
    assert pdf.render_bytes(synthetic_results(n_scatter=200, table_rows=10)).startswith(b"%PDF")
    assert _state() == before


def test_state_restored_after_an_exception() -> None:
    import pydyf

    before = _state()
    with pytest.raises(RuntimeError, match="boom"), pdf.patched_dependencies(0):
        assert pydyf.zlib is not before["zlib"]
        assert gc.get_threshold() != before["gc"] or before["gc"][0] == 0
        assert os.environ["SOURCE_DATE_EPOCH"] == "0"
        raise RuntimeError("boom")
    assert _state() == before
