"""Hostile text stays inert and readable: the one function every renderer passes text through.

A spec or a dataset can carry characters that change how text *looks* without being visible:
Unicode bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) reverse a
licence or hide part of a message; zero-width and other format characters (category Cf, e.g.
U+200B, U+200D, U+FEFF, the U+E0000 tag block used to smuggle text), C0/C1 controls (ESC starts
a terminal escape sequence), line/paragraph separators, lone surrogates and unassigned code points.
``inert`` shows each of them as a visible escape (``\\u202e``) in the PDF, HTML, Markdown, JUnit,
SARIF and terminal output; results.json keeps the text exactly as written.

Markup escaping (HTML autoescape, rich markup, Markdown) is each renderer's job and comes after
this; ``inert`` only makes invisible characters visible.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})
_KEEP_MULTILINE = frozenset("\t\n\r")
_CANDIDATE = re.compile(r"[^\x20-\x7e]+")  # runs of non-printable-ASCII: the only text to inspect


@lru_cache(maxsize=4096)
def _shown(ch: str, multiline: bool) -> str:
    if multiline and ch in _KEEP_MULTILINE:
        return ch
    if unicodedata.category(ch) not in _ESCAPED_CATEGORIES:
        return ch
    cp = ord(ch)
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def inert(value: object, *, multiline: bool = True) -> str:
    """``value`` as text with every invisible or control character shown as ``\\uXXXX``.

    ``multiline``: tab, newline and carriage return are kept (paragraphs, tracebacks); set it to
    False for one-line contexts (a terminal table cell, an error line, an XML attribute)."""
    s = value if isinstance(value, str) else ("" if value is None else str(value))
    if s.isascii() and s.isprintable():
        return s  # the common case: nothing to escape, no regex pass
    return _CANDIDATE.sub(lambda m: "".join(_shown(ch, multiline) for ch in m.group()), s)


def has_hidden(value: str) -> bool:
    """Whether ``inert`` would change ``value`` in its one-line form."""
    return inert(value, multiline=False) != value


_MD_META = re.compile(r"([\\`*_\[\]!|~]|(?<!&)#)")  # not the "#" of an HTML entity (&#34;)


def markdown_text(value: object, *, multiline: bool = True) -> str:
    """``inert`` text with Markdown's punctuation backslash-escaped: it shows as written and never
    becomes a link, an image (which a viewer would fetch), emphasis, a heading or a table break.

    ``<``, ``>`` and ``&`` are left to HTML escaping (a backslash before an entity would show it)."""
    return _MD_META.sub(r"\\\1", inert(value, multiline=multiline))
