"""Renderers: pure functions of results.json. One module per format, imported lazily.

A renderer is ``render(results: dict, out_dir: Path, *, attachments: dict[str, bytes]) -> list[Path]``:
it reads only the results document (and the attachments it may embed: results.json and the
inputs manifest) and writes its files into ``out_dir``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

Renderer = Callable[..., list[Path]]

# format -> "module:function". "json" is written by the engine itself (results.json).
RENDERERS: dict[str, str] = {
    "html": "auditkit.render.html:render",
    "pdf": "auditkit.render.pdf:render",
    "model_card": "auditkit.render.model_card:render",
    "junit": "auditkit.render.junit:render",
    "sarif": "auditkit.render.sarif:render",
}

# Extra verification steps for `auditkit verify` (e.g. a PDF's embedded attachments).
VERIFY_HOOKS: tuple[str, ...] = ("auditkit.render.pdf:verify_bundle",)


def get_renderer(fmt: str) -> Renderer:
    from auditkit.errors import UsageError

    target = RENDERERS.get(fmt)
    if target is None:
        raise UsageError(f"unknown report format {fmt!r}; known: json, {', '.join(RENDERERS)}")
    module, _, func = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            raise UsageError(f"report format {fmt!r} is not available in this build") from None
        raise
    fn: Renderer = getattr(mod, func)
    return fn


def verify_hooks() -> list[Callable[[Path, dict[str, Any]], list[str]]]:
    hooks = []
    for target in VERIFY_HOOKS:
        module, _, func = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        fn = getattr(mod, func, None)
        if fn is not None:
            hooks.append(fn)
    return hooks
