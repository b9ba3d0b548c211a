"""PDF/A-3b evidence report (WeasyPrint) and its verification hook for ``auditkit verify``.

Reproducible bytes: the document date is the audit's ``finished_at`` (HTML ``dcterms`` metadata,
attachment dates and SOURCE_DATE_EPOCH for the font subsets), and the PDF identifier is derived
from the attached results. results.json and manifest.json are embedded as PDF/A-3 associated files
so that the PDF alone can be checked against its bundle.

Security: WeasyPrint fetches only through ``SafeFetcher``, which serves ``data:`` URLs and files
inside the ``auditkit.report_templates`` package (fonts); everything else is refused and recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

FILENAME = "report.pdf"
ATTACHMENTS = ("results.json", "manifest.json")


def templates_dir() -> Path:
    # normpath, not resolve(): an editable install maps the package to a folder of symlinks.
    return Path(os.path.normpath(os.path.abspath(str(files("auditkit.report_templates")))))


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
    """pydyf compresses every PDF stream with zlib level 9; for the multi-megabyte results.json
    attachment that costs seconds for a few per cent smaller output. Streams over 1 MB use level 1.
    Deterministic either way (same input, same level → same bytes)."""

    def __getattr__(self, name: str) -> Any:
        import zlib

        return getattr(zlib, name)

    def compressobj(self, level: int = -1, *args: Any, **kwargs: Any) -> Any:
        import zlib

        class _Lazy:
            obj: Any = None

            def compress(self, data: bytes) -> bytes:
                if self.obj is None:
                    self.obj = zlib.compressobj(level if len(data) < 1_000_000 else 1, *args, **kwargs)
                out: bytes = self.obj.compress(data)
                return out

            def flush(self, *a: Any) -> bytes:
                if self.obj is None:
                    self.obj = zlib.compressobj(level, *args, **kwargs)
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
    from auditkit.results import dumps

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
        with _source_date_epoch(int(document_date(results).timestamp())), _fast_compression():
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

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf) if isinstance(pdf, bytes) else str(pdf))
    out: dict[str, bytes] = {}
    for name, contents in reader.attachments.items():
        if contents:
            out[name] = contents[0]
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
