"""A real browser for the HTML report tests: headless Chromium (the system's, no download) loads
report.html with a probe script and reports every element that overflows its container."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

# Runs at the end of <body>, after layout: every box must lie inside its parent's box (with 1 px
# of rounding), no element's content may be wider than the element (unless it scrolls), and the
# page itself must not scroll sideways. Descendants of a scroll container (a wide table that
# scrolls inside its own box on a phone) are inside by construction and are skipped.
PROBE = r"""
<script>
(function () {
  const out = [];
  const root = document.documentElement;
  const vw = root.clientWidth;
  if (root.scrollWidth > vw + 1) out.push("page: " + root.scrollWidth + "px wide in a " + vw + "px window");
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (el.getAttribute("class") ? "." + el.getAttribute("class").trim().split(/\s+/).join(".") : "") +
      ' "' + (el.textContent || "").trim().slice(0, 40) + '"';
  const scrolls = (el) => ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(el).overflowX);
  const inScroller = (el) => { for (let p = el.parentElement; p; p = p.parentElement) if (scrolls(p)) return true; return false; };
  for (const el of document.body.querySelectorAll("*")) {
    if (el.id === "ak-overflow" || el.tagName === "SCRIPT") continue;
    const cs = getComputedStyle(el);
    if (cs.display === "none" || inScroller(el)) continue;
    const r = el.getBoundingClientRect();
    if (!r.width && !r.height) continue;
    const p = el.parentElement;
    if (p && p !== document.body.parentElement) {
      const pr = p.getBoundingClientRect();
      if (r.right > pr.right + 1 || r.left < pr.left - 1)
        out.push(name(el) + " [" + Math.round(r.left) + "," + Math.round(r.right) + "] leaves " + name(p) +
                 " [" + Math.round(pr.left) + "," + Math.round(pr.right) + "]");
    }
    if (!scrolls(el) && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && !(el instanceof SVGElement))
      out.push(name(el) + ": content " + el.scrollWidth + "px in " + el.clientWidth + "px");
  }
  const pre = document.createElement("pre");
  pre.id = "ak-overflow";
  pre.textContent = JSON.stringify(out);
  (window.parent !== window ? window.parent.document.body : document.body).appendChild(pre);
})();
</script>
"""


def find_chromium() -> str | None:
    """The system's Chromium (``AUDITKIT_CHROMIUM`` first), or None."""
    explicit = os.environ.get("AUDITKIT_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _run(chromium: str, url: str, width: int, *extra: str, timeout: int = 120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
               f"--window-size={width},1000", *extra, url]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return done.stdout


def framed(html: str, width: int, height: int = 1000) -> str:
    """``html`` in an iframe exactly ``width`` CSS pixels wide: headless Chromium will not make a
    window narrower than 500 px, an iframe is its own viewport (media queries included)."""
    from html import escape

    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
            f'<iframe style="border:0;width:{width}px;height:{height}px" srcdoc="{escape(html, quote=True)}">'
            "</iframe></body></html>")  # fmt: skip


def overflows(chromium: str, html: Path, width: int) -> list[str]:
    """Every overflow the probe finds in ``html`` laid out ``width`` CSS pixels wide."""
    text = html.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(framed(text.replace("</body>", PROBE + "</body>"), width), encoding="utf-8")
        dom = _run(chromium, probe.as_uri(), max(width, 500) + 20, "--dump-dom")
    m = re.search(r'<pre id="ak-overflow">(.*?)</pre>', dom, re.S)
    if m is None:
        raise RuntimeError(f"the probe did not run in {chromium} (dump: {dom[:300]!r})")
    import html as _html

    found: list[str] = json.loads(_html.unescape(m.group(1)))
    return found


def screenshot(chromium: str, html: Path, width: int, out: Path, height: int = 2400) -> None:
    """A PNG of the first ``height`` pixels of ``html`` at ``width`` (for looking, not for tests)."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "shot.html"
        page.write_text(framed(html.read_text(encoding="utf-8"), width, height), encoding="utf-8")
        _run(
            chromium,
            page.as_uri(),
            max(width, 500),
            f"--screenshot={out}",
            f"--window-size={max(width, 500)},{height}",
        )
