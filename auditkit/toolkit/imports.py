"""Lazy module imports, so that listing checks (`auditkit checks`, `--help`) stays instant.

``pd = lazy("pandas")`` binds a stand-in whose first attribute access imports the module. Check
modules use it for pandas (≈ 0.3 s to import), which they only need when a check runs; keep the
real import under ``TYPE_CHECKING`` so that annotations and type checkers see the module.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Imports ``name`` on first attribute access and forwards every attribute to it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            # Probes such as the registry's getattr(obj, "__auditkit_check__") must not import.
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy(name: str) -> Any:
    return LazyModule(name)
