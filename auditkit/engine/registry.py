"""Check discovery: built-ins (a fixed tuple), entry-point plugins, and local folders by path.

Nothing registers itself on import: the registry imports the modules it is told about and collects
the functions the ``@check`` decorator annotated. Two checks with one id are an error naming both.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from auditkit.engine.check import CheckInfo, check_info
from auditkit.errors import PluginError
from auditkit.spec import nocode


def builtin_modules() -> tuple[str, ...]:
    """The built-in check modules: every public module of ``auditkit.checks`` (a module whose name
    starts with ``_`` holds helpers shared by built-in checks, never checks)."""
    import pkgutil

    import auditkit.checks

    names = (m.name for m in pkgutil.iter_modules(auditkit.checks.__path__) if not m.name.startswith("_"))
    return tuple(f"auditkit.checks.{name}" for name in sorted(names))


ENTRY_POINT_GROUP = "auditkit.checks"


@dataclass
class Registry:
    checks: dict[str, CheckInfo] = field(default_factory=dict)
    plugins: list[dict[str, str]] = field(default_factory=list)

    def add(self, info: CheckInfo) -> None:
        prior = self.checks.get(info.id)
        if prior is not None and prior.func is not info.func:
            raise PluginError(f"duplicate check id {info.id}: defined by {prior.source} and by {info.source}")
        self.checks[info.id] = info

    def sorted(self) -> list[CheckInfo]:
        return [self.checks[k] for k in sorted(self.checks)]

    def get(self, check_id: str) -> CheckInfo | None:
        return self.checks.get(check_id)


def checks_in_module(module: ModuleType, source: str) -> list[CheckInfo]:
    found = []
    for name in sorted(vars(module)):
        info = check_info(getattr(module, name))
        # Only functions defined here: a module that re-imports another's check does not own it.
        if info is not None and getattr(info.func, "__module__", None) == module.__name__:
            found.append(replace(info, source=source))
    return found


def load_builtins(registry: Registry, modules: Sequence[str] | None = None) -> None:
    for name in builtin_modules() if modules is None else modules:
        module = importlib.import_module(name)
        for info in checks_in_module(module, f"builtin:{name}"):
            registry.add(info)


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``Acme_Checks``, ``acme.checks`` and
    ``acme-checks`` are the same plugin."""
    return re.sub(r"[-_.]+", "-", name).lower()


def load_entry_points(registry: Registry, require: Iterable[str] = ()) -> None:
    """Plugins from the ``auditkit.checks`` entry-point group, sorted by name."""
    from importlib.metadata import entry_points

    nocode.refuse("checks.require_plugins" if require else "plugins", "plugins are Python code")
    eps = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    seen = set()
    for ep in eps:
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else ep.value
        version = dist.version if dist is not None else "unknown"
        try:
            obj = ep.load()
        except Exception as err:
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {err}") from None
        source = f"plugin:{dist_name}=={version}"
        infos = _collect(obj, source)
        if not infos:
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) defines no @check functions")
        for info in infos:
            registry.add(info)
        registry.plugins.append(
            {"name": ep.name, "distribution": dist_name, "version": version, "value": ep.value}
        )
        seen.add(canonical_name(ep.name))
        seen.add(canonical_name(dist_name))
    missing = [r for r in require if canonical_name(r) not in seen]
    if missing:
        raise PluginError(f"required plugin(s) not installed: {', '.join(missing)}")


def _collect(obj: object, source: str) -> list[CheckInfo]:
    if isinstance(obj, ModuleType):
        return checks_in_module(obj, source)
    info = check_info(obj)
    if info is not None:
        return [replace(info, source=source)]
    if isinstance(obj, (list, tuple)):
        return [i for o in obj for i in _collect(o, source)]
    return []


def load_path(registry: Registry, folder: Path) -> None:
    """Import every ``*.py`` in a local folder (sorted) and collect its checks."""
    nocode.refuse("checks.paths", "it imports and runs local Python check modules")
    files = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    for path in files:
        mod_name = f"auditkit_local_checks.{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"{path}: cannot import")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            raise PluginError(f"{path}: failed to import: {type(err).__name__}: {err}") from None
        for info in checks_in_module(module, f"path:{path}"):
            registry.add(info)


def build_registry(
    *,
    autoload: bool = True,
    require_plugins: Iterable[str] = (),
    paths: Iterable[Path] = (),
) -> Registry:
    registry = Registry()
    load_builtins(registry)
    require = list(require_plugins)
    if require:
        nocode.refuse("checks.require_plugins", "plugins are Python code; --no-code does not load them")
    if autoload and not nocode.active():  # under --no-code plugins are simply not loaded
        load_entry_points(registry, require)
    elif require:
        raise PluginError(f"require_plugins {require} given but plugin autoload is disabled")
    for folder in paths:
        load_path(registry, folder)
    return registry
