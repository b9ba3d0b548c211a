"""Hostile text stays inert and readable (#12 §5): bidi controls, zero-width and other format
characters, terminal escape sequences, HTML and Markdown injections in spec or data strings are
shown as visible text in every human-facing output, while results.json keeps them as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from synth import HIDDEN, RLO, VISIBLE_ESCAPES, hidden_text_results

from auditkit.safetext import inert, markdown_text

BIDI = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]]


def _invisible(text: str, keep: str = "\t\n\r") -> list[str]:
    """Every character of ``text`` that a reader cannot see or that steers the display (an
    independent statement of the rule: Unicode categories, not auditkit's code)."""
    return sorted({
        f"U+{ord(ch):04X}" for ch in text
        if ch not in keep and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp")
    })  # fmt: skip


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return hidden_text_results()


def test_inert_escapes_every_format_and_control_character() -> None:
    for ch in BIDI + ["\u200b", "\u200d", "\ufeff", "\x1b", "\x7f", "\x9b", "\u2028", "\U000e0041", "\ud800"]:
        out = inert(f"a{ch}b", multiline=False)
        assert out != f"a{ch}b" and out.isascii() and out.isprintable(), repr(ch)
        assert out == f"a\\u{ord(ch):04x}b" if ord(ch) <= 0xFFFF else f"a\\U{ord(ch):08x}b"
    # every format character Unicode knows (category Cf), not only the listed ones
    cf = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert len(cf) > 150 and all(_invisible(inert(ch)) == [] for ch in cf)
    # visible text is left alone: accents, maths, CJK, emoji, typographic dashes
    for text in ("café ≥ 0.95 — 日本語 👍 «ok»", "tab\tand\nnewline"):
        assert inert(text) == text
    assert inert("a\tb\nc", multiline=False) == "a\\u0009b\\u000ac"
    assert markdown_text("[x](javascript:alert(1)) ![i](http://e/x.png) *b* `c` a|b") == (
        "\\[x\\](javascript:alert(1)) \\!\\[i\\](http://e/x.png) \\*b\\* \\`c\\` a\\|b"
    )


def _assert_inert(text: str, where: str) -> None:
    assert _invisible(text) == [], f"{where}: raw invisible characters {_invisible(text)}"
    assert "\\u202e" in text, f"{where}: the licence's U+202E is not shown escaped"


def test_html_shows_hidden_characters_escaped(doc: dict[str, Any], tmp_path: Path) -> None:
    from auditkit.render.html import render

    (out,) = render(doc, tmp_path)
    html = out.read_text(encoding="utf-8")
    _assert_inert(html, "report.html")
    shown = html.replace("<wbr>", "")
    for esc in VISIBLE_ESCAPES:
        assert esc in shown, esc
    assert "MIT\\u202eLPG-3.0\\u202c" in shown  # the licence, in logical order, readable
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # autoescape


def test_pdf_text_layer_shows_hidden_characters_escaped(doc: dict[str, Any], tmp_path: Path) -> None:
    import io

    from pypdf import PdfReader

    from auditkit.render.pdf import render

    (out,) = render(doc, tmp_path)
    reader = PdfReader(io.BytesIO(out.read_bytes()))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    assert _invisible(text) == [], _invisible(text)
    flat = re.sub(r"\s+", "", text)
    assert "MIT\\u202eLPG-3.0\\u202c" in flat
    assert "\\u001b[31mRED\\u001b[0m" in flat


def test_markdown_card_is_text_not_markup(doc: dict[str, Any], tmp_path: Path) -> None:
    from markdown_it import MarkdownIt

    from auditkit.render.model_card import render

    md, _ = render(doc, tmp_path)
    text = md.read_text(encoding="utf-8")
    _assert_inert(text, "model_card.md")
    html = MarkdownIt("commonmark").enable("table").render(text.split("---\n", 2)[2])
    # an independent Markdown parser finds no link, image or raw HTML from the card's text
    assert "javascript:" not in re.findall(r'href="([^"]*)"', html).__str__()
    assert "<img" not in html and "<script" not in html
    assert "[click](javascript:alert(1))" in html  # shown as the text that was written
    assert "&\\#" not in text and "ML &quot;core&quot; team #1" in html  # entities intact in table cells
    # the escapes are visible in the rendered card too
    assert "MIT\\u202eLPG-3.0\\u202c" in html
    # results.json keeps the text exactly as written (the renderers only change what is shown)
    assert doc["spec"]["card"]["license"] == HIDDEN["license"]


def test_junit_and_sarif_show_hidden_characters_escaped(doc: dict[str, Any], tmp_path: Path) -> None:
    from auditkit.render import junit, sarif

    (jpath,) = junit.render(doc, tmp_path)
    raw = jpath.read_text(encoding="utf-8")
    _assert_inert(raw, "junit.xml")
    texts = [t for el in ET.fromstring(raw).iter() for t in [el.text or "", *el.attrib.values()]]
    assert any("\\u001b[31mRED" in t for t in texts)
    (spath,) = sarif.render(doc, tmp_path)
    sraw = spath.read_text(encoding="utf-8")
    assert _invisible(sraw) == []

    def strings(v: Any) -> list[str]:
        if isinstance(v, str):
            return [v]
        if isinstance(v, dict):
            return [s for k, x in v.items() for s in [k, *strings(x)]]
        return [s for x in v for s in strings(x)] if isinstance(v, list) else []

    found = strings(json.loads(sraw))
    assert all(_invisible(s) == [] for s in found) and any("\\u202e" in s for s in found)


def test_terminal_summary_and_error_line_are_inert(doc: dict[str, Any], tmp_path: Path) -> None:
    # The CLI's summary table and gate line, printed as a real run prints them.
    code = (
        "import json, sys; from pathlib import Path; from auditkit.cli import _print_summary; "
        "_print_summary(json.loads(Path(sys.argv[1]).read_text()), Path('out'))"
    )
    doc = {**doc, "subject": {**doc["subject"], "name": "[bold red]x[/] " + RLO}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    env = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                         timeout=120, check=True)  # fmt: skip
    assert "\x1b" not in run.stdout and _invisible(run.stdout) == []
    assert "\\u001b[31mRED" in run.stdout  # the summary's escape sequence, shown
    assert "[bold red]x[/]" in run.stdout  # rich markup from data is text
    # An error line names a path with a bidi control: one line, the control shown escaped.
    bad = tmp_path / f"audit{RLO}lmay.yaml"
    err = subprocess.run([sys.executable, "-c", "from auditkit.cli import main; main()", "run", str(bad)],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert err.returncode == 2, err.stderr
    line = err.stderr.strip()
    assert line.startswith("auditkit: error:") and "\n" not in line and "\\u202e" in line, line
    assert _invisible(line) == []


def test_diff_views_are_inert() -> None:
    from auditkit.results.diff import diff_results, render_diff

    base = hidden_text_results()
    new = hidden_text_results()
    rec = next(r for r in new["checks"] if r["id"] == "AK-LEAK-001")
    rec["metrics"][-1]["value"] = 0.7
    rec["findings"].append({"message": HIDDEN["limitations"], "severity": "high", "key": "esc"})
    d = diff_results(base, new)
    table = render_diff(d)
    assert "\x1b" not in table and _invisible(table) == [] and "\\u202e" in table
    md = render_diff(d, markdown=True)
    assert _invisible(md) == [] and "\\u001b" in md
