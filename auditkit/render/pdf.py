"""PDF/A-3b evidence report (WeasyPrint) and its verification hook for ``auditkit verify``.

Reproducible bytes: the document date is the audit's ``finished_at`` (HTML ``dcterms`` metadata,
attachment dates and SOURCE_DATE_EPOCH for the font subsets), and the PDF identifier is derived
from the attached results. results.json and manifest.json are embedded as PDF/A-3 associated files
so that the PDF alone can be checked against its bundle.

Security: WeasyPrint fetches only through ``SafeFetcher``, which serves ``data:`` URLs and files
inside the ``auditkit.report_templates`` package (fonts); everything else is refused and recorded.

Patches of dependencies, all kept and all confined: ``render_bytes`` applies each inside
``patched_dependencies()``, a context manager that restores the original state on exit, also on
an exception; nothing is changed at import time or left changed after a render.
- ``pydyf.zlib``: streams compressed at level 6 (1 over 1 MB), not 9 (``_fast_compression``);
- ``weasyprint.svg.text`` and its ``TAGS`` entries: plain SVG labels laid out as one string,
  only on WeasyPrint 70.x (``_fast_svg_text``);
- the gc generation-2 threshold: no full collection during the render (``_no_full_gc``);
- the ``SOURCE_DATE_EPOCH`` environment variable (reproducible font subsets).
``PATCH_TARGETS`` names what they replace; tests/reports/test_pdf_patches.py checks that each still
exists in the installed WeasyPrint/pydyf (an upgrade that renames one fails that test, loudly) and
that every one is restored after a render and after an exception.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from auditkit.render.resources import templates_dir

FILENAME = "report.pdf"
ATTACHMENTS = ("results.json", "manifest.json")


def make_fetcher(log: list[tuple[str, str]] | None = None) -> Any:
    """A WeasyPrint URL fetcher that allows only data: URLs and the package's own files.

    ``log`` (optional) receives ``(url, "allowed"|"blocked")`` for every request, for tests.
    """
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = templates_dir()

    class SafeFetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                if log is not None:
                    log.append((url[:64], "allowed"))
                return super().fetch(url, headers)
            if scheme == "file":
                parts = urlsplit(url)
                path = Path(os.path.normpath(unquote(parts.path)))  # "..", "%2e%2e" are folded here
                if not parts.netloc and path.is_absolute() and path.is_relative_to(root) and path.is_file():
                    if log is not None:
                        log.append((url, "allowed"))
                    return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": _mime(path)})
            if log is not None:
                log.append((url[:300], "blocked"))
            raise ValueError(
                f"auditkit report: refused to fetch {url[:120]!r} (only data: and bundled files)"
            )

    return SafeFetcher(allowed_protocols=("data", "file"), allow_redirects=False)


def _mime(path: Path) -> str:
    return {".ttf": "font/ttf", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}.get(
        path.suffix.lower(), "application/octet-stream"
    )


@contextmanager
def _source_date_epoch(epoch: int) -> Iterator[None]:
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


class _FastZlib:
    """pydyf compresses every PDF stream with zlib level 9. Level 6 (zlib's default) takes half the
    time (0.1 s of the demo's render) for 0.5% larger streams; for the multi-megabyte results.json
    attachment even that costs seconds, so streams over 1 MB use level 1. Deterministic either way
    (same input, same level → same bytes)."""

    def __getattr__(self, name: str) -> Any:
        import zlib

        return getattr(zlib, name)

    def compressobj(self, level: int = -1, *args: Any, **kwargs: Any) -> Any:
        import zlib

        del level  # pydyf asks for 9; see the class docstring

        class _Lazy:
            obj: Any = None

            def compress(self, data: bytes) -> bytes:
                if self.obj is None:
                    self.obj = zlib.compressobj(6 if len(data) < 1_000_000 else 1, *args, **kwargs)
                out: bytes = self.obj.compress(data)
                return out

            def flush(self, *a: Any) -> bytes:
                if self.obj is None:
                    self.obj = zlib.compressobj(6, *args, **kwargs)
                out: bytes = self.obj.flush(*a)
                return out

        return _Lazy()


@contextmanager
def _fast_compression() -> Iterator[None]:
    import pydyf

    old = pydyf.zlib
    pydyf.zlib = _FastZlib()
    try:
        yield
    finally:
        pydyf.zlib = old


@contextmanager
def _fast_svg_text() -> Iterator[None]:
    """WeasyPrint 70 lays out and draws every SVG ``<text>`` one character at a time (a Pango
    layout per letter, to support per-glyph x/y/dx/dy/rotate lists): ≈ 0.25 s of the demo's 5 s for
    2,400 letters of axis labels. A plain label (one x, one y; no dx, dy, rotate, textLength or
    letter-spacing), which is all ``auditkit.render.plots`` writes, is laid out and drawn here as one
    string, with the same style, position, bounding box (text-anchor) and paint as WeasyPrint's;
    anything else goes to WeasyPrint's own function. Applied only to the WeasyPrint version it was
    written against (a different one renders correctly, only slower)."""
    try:
        import weasyprint
        import weasyprint.svg as wsvg
    except ImportError:  # pragma: no cover - weasyprint is a dependency
        yield
        return
    original: Any = getattr(wsvg, "text", None)
    if (
        not weasyprint.__version__.startswith(SVG_TEXT_VERSION)
        or getattr(original, "__module__", "") != "weasyprint.svg.text"
    ):
        yield
        return
    from math import inf

    from weasyprint.css.properties import INITIAL_VALUES
    from weasyprint.draw.text import draw_emojis, draw_first_line
    from weasyprint.matrix import Matrix
    from weasyprint.svg.bounding_box import extend_bounding_box
    from weasyprint.svg.text import Style, TextBox
    from weasyprint.svg.utils import normalize, size
    from weasyprint.text.line_break import split_first_line

    def text(svg: Any, node: Any, font_size: float) -> Any:
        x_attr, y_attr, label = node.get("x"), node.get("y"), node.text
        if (
            not label
            or x_attr is None
            or y_attr is None
            or len(normalize(x_attr).split()) != 1
            or len(normalize(y_attr).split()) != 1
            or any(node.get(a) is not None for a in ("dx", "dy", "rotate", "textLength", "letter-spacing"))
        ):
            return original(svg, node, font_size)
        # The style exactly as weasyprint.svg.text.text builds it.
        style = Style()
        style.update(INITIAL_VALUES)
        style.font_config = svg.font_config
        style["font_family"] = [f.strip("\"'") for f in node.get("font-family", "sans-serif").split(",")]
        style["font_style"] = node.get("font-style", "normal")
        weight = node.get("font-weight", 400)
        if node.get("direction") in ("ltr", "rtl"):
            style["direction"] = node.get("direction")
        try:
            style["font_weight"] = {"normal": 400, "bold": 700}.get(weight) or int(weight)
        except ValueError:
            style["font_weight"] = 400
        style["font_size"] = font_size
        layout, _, _, width, height, baseline = split_first_line(label, style, svg.context, inf, 0)
        x = size(normalize(x_attr).strip(), font_size, svg.inner_width)
        y = size(normalize(y_attr).strip(), font_size, svg.inner_height)
        ascent, descent = font_size * 0.8, font_size * 0.2
        y_align = 0.0
        anchor = node.get("display-anchor")
        baseline_kind = node.get("dominant-baseline", node.get("alignment-baseline"))
        if anchor == "middle":
            y_align = -height / 2
        elif anchor == "bottom":
            y_align = -height
        elif anchor == "top":
            pass
        elif baseline_kind in ("central", "middle"):
            y_align = (ascent + descent) / 2 - descent
        elif baseline_kind in ("text-before-edge", "before_edge", "top", "hanging", "text-top"):
            y_align = ascent
        elif baseline_kind in ("text-after-edge", "after_edge", "bottom", "text-bottom"):
            y_align = -descent
        svg.cursor_d_position = [0, 0]
        svg.cursor_position = (x + width, y)
        y_pos = y + y_align
        node.text_bounding_box = extend_bounding_box(
            node.text_bounding_box, ((x, y_pos - baseline), (x + width, y_pos - baseline + height))
        )
        svg.stream.push_state()
        fill, stroke = svg.set_graphical_state(node, font_size)
        svg.stream.begin_text()
        layout.reactivate(style)
        svg.fill_stroke(fill, stroke, text=True)
        box = TextBox(layout, style)
        box.baseline = baseline
        emojis = draw_first_line(svg.stream, box, "none", "none", Matrix(a=1, d=-1, e=x, f=y_pos))
        svg.stream.end_text()
        svg.stream.pop_state()
        draw_emojis(svg.stream, style, x, y, emojis)
        return None

    # draw_node() compares TAGS entries with the module's `text` to find text nodes: swap both.
    keys = [k for k, f in wsvg.TAGS.items() if f is original]
    wsvg.text = text
    for k in keys:
        wsvg.TAGS[k] = text
    try:
        yield
    finally:
        wsvg.text = original
        for k in keys:
            wsvg.TAGS[k] = original


@contextmanager
def _no_full_gc() -> Iterator[None]:
    """Python's cyclic GC runs a full (generation 2) collection whenever the long-lived objects grow
    by a quarter: WeasyPrint's boxes, styles and layouts grow the heap so fast that a render pays
    5-7 full collections over all of them (≈ 0.5 s of the demo's 4-5 s). Full collections wait until
    the render is done; the young generations are still collected, so short-lived garbage is freed
    as usual (peak RSS did not grow: demo 189 MB, large benchmark 424 MB). The next full collection
    after the render (at the restored threshold, or an explicit ``gc.collect()``) does the postponed
    work once (≈ 0.2 s for the demo; the benchmark calls ``gc.collect()`` and counts it).
    Process-wide while it lasts, like every GC setting, and restored on exit; two renders
    overlapping in threads could restore out of order, so render one PDF at a time per process."""
    import gc

    old = gc.get_threshold()
    if old[0] > 0:
        gc.set_threshold(old[0], old[1], max(old[2], 1_000_000))
    try:
        yield
    finally:
        gc.set_threshold(*old)


# What the patches replace (module, attribute), checked against the installed versions by a test.
PATCH_TARGETS = (
    ("pydyf", "zlib"),
    ("weasyprint.svg", "text"),
    ("weasyprint.svg", "TAGS"),
    ("weasyprint.css.properties", "INITIAL_VALUES"),
    ("weasyprint.draw.text", "draw_emojis"),
    ("weasyprint.draw.text", "draw_first_line"),
    ("weasyprint.matrix", "Matrix"),
    ("weasyprint.svg.bounding_box", "extend_bounding_box"),
    ("weasyprint.svg.text", "Style"),
    ("weasyprint.svg.text", "TextBox"),
    ("weasyprint.svg.utils", "normalize"),
    ("weasyprint.svg.utils", "size"),
    ("weasyprint.text.line_break", "split_first_line"),
)
SVG_TEXT_VERSION = "70."  # the WeasyPrint major version _fast_svg_text was written against


@contextmanager
def patched_dependencies(epoch: int) -> Iterator[None]:
    """Every process-wide patch of a render, each restored on exit (also on an exception)."""
    with _source_date_epoch(epoch), _fast_compression(), _fast_svg_text(), _no_full_gc():
        yield


def render_bytes(
    results: dict[str, Any],
    *,
    attachments: dict[str, bytes] | None = None,
    fetch_log: list[tuple[str, str]] | None = None,
) -> bytes:
    """The PDF as bytes. The same results and attachments always give the same bytes."""
    import logging

    from weasyprint import HTML, Attachment

    from auditkit.render.common import document_date, render_html
    from auditkit.results.document import dumps

    attachments = dict(attachments or {})
    if "results.json" not in attachments:
        attachments["results.json"] = dumps(results).encode("utf-8")
    html = render_html(results, attachments=attachments, pdf=True)
    date = document_date(results).replace(tzinfo=None)
    fetcher = make_fetcher(fetch_log)
    ident = hashlib.sha256(attachments["results.json"]).hexdigest()[:32].encode("ascii")
    # Attachment objects are single-use: build fresh ones for every render.
    atts = [
        Attachment(
            string=attachments[name], name=name, url_fetcher=fetcher, created=date, modified=date,
            description={"results.json": "auditkit results (schema_version 1): the single source of truth",
                         "manifest.json": "sha256 of the audit inputs and of the outputs written before this PDF"}[name],
            relationship="Source",
        )
        for name in ATTACHMENTS if name in attachments
    ]  # fmt: skip
    # WeasyPrint logs every refused fetch and unsupported CSS at WARNING; keep the CLI quiet.
    wlog = logging.getLogger("weasyprint")
    level = wlog.level
    wlog.setLevel(logging.ERROR)
    try:
        with patched_dependencies(int(document_date(results).timestamp())):
            doc = HTML(string=html, base_url=templates_dir().as_uri() + "/", url_fetcher=fetcher)
            pdf: bytes = doc.write_pdf(
                pdf_variant="pdf/a-3b", pdf_identifier=ident, attachments=atts, uncompressed_pdf=False,
                # The bundled fonts are already subset to the glyphs reports use: embedding them
                # whole skips fontTools' per-render subsetting (≈ 12% of the demo's render time).
                full_fonts=True,
            )  # fmt: skip
    finally:
        wlog.setLevel(level)
    return pdf


def render(
    results: dict[str, Any], out_dir: Path, *, attachments: dict[str, bytes] | None = None
) -> list[Path]:
    out = Path(out_dir) / FILENAME
    out.write_bytes(render_bytes(results, attachments=attachments))
    return [out]


def embedded_files(pdf: Path | bytes) -> dict[str, bytes]:
    """The files attached to a PDF (name → bytes)."""
    import io
    import logging

    from pypdf import PdfReader

    # A damaged PDF makes pypdf log repair warnings; the caller reports the problem in one line.
    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR + 10)
    try:
        reader = PdfReader(io.BytesIO(pdf) if isinstance(pdf, bytes) else str(pdf))
        out: dict[str, bytes] = {}
        for name, contents in reader.attachments.items():
            if contents:
                out[name] = contents[0]
    finally:
        log.setLevel(level)
    return out


def verify_bundle(bundle: Path, manifest: dict[str, Any]) -> list[str]:
    """Check each PDF report in the bundle against the bundle: its embedded results.json must hash
    to the manifest's entry for results.json, and its embedded manifest must list the same inputs
    and the same hashes for the outputs it knew of."""
    bundle = Path(bundle)
    outputs = {e.get("path"): e for e in manifest.get("outputs", []) if isinstance(e, dict)}
    problems: list[str] = []
    # The report auditkit wrote (a check may write other PDFs into the bundle; they carry no attachments).
    for rel in sorted(p for p in outputs if p == FILENAME):
        path = bundle / rel
        if not path.is_file():
            continue  # reported as a missing output by bundle.verify
        try:
            embedded = embedded_files(path)
        except Exception as exc:  # a corrupt PDF is a verification failure, not a crash
            problems.append(f"{rel}: unreadable PDF ({type(exc).__name__}: {exc})")
            continue
        res = embedded.get("results.json")
        if res is None:
            problems.append(f"{rel}: no embedded results.json")
        else:
            entry = outputs.get("results.json")
            if entry is None:
                problems.append(f"{rel}: the bundle's manifest lists no results.json")
            elif hashlib.sha256(res).hexdigest() != entry.get("sha256"):
                problems.append(f"{rel}: embedded results.json does not match the bundle's results.json")
        man = embedded.get("manifest.json")
        if man is None:
            problems.append(f"{rel}: no embedded manifest.json")
            continue
        try:
            emb = json.loads(man)
        except (ValueError, UnicodeDecodeError):
            problems.append(f"{rel}: embedded manifest.json is not JSON")
            continue
        if _inputs_key(emb.get("inputs")) != _inputs_key(manifest.get("inputs")):
            problems.append(f"{rel}: embedded manifest inputs differ from the bundle's manifest inputs")
        for e in emb.get("outputs") or []:
            cur = outputs.get(e.get("path")) if isinstance(e, dict) else None
            if cur is None or cur.get("sha256") != e.get("sha256"):
                problems.append(
                    f"{rel}: embedded manifest output {str(e.get('path'))[:200]} differs from the bundle"
                )
    return problems


def _inputs_key(inputs: Any) -> list[tuple[str, str, str]]:
    return sorted(
        (str(e.get("role")), str(e.get("path")), str(e.get("sha256")))
        for e in inputs or []
        if isinstance(e, dict)
    )
