"""The code a verdict depends on, for the manifest: model factories, custom optimizers and schedules,
``checks.paths`` modules and plugin distributions.

A module that lives outside site-packages (next to the spec, an editable install, a local folder of
checks) is listed as a file with its sha256. An installed distribution is listed by name, version
and a digest of its installed files (the sha256 of every file its RECORD lists, recomputed from the
files themselves, so an edited installed file changes it). auditkit itself and its declared
dependencies are not listed: their versions are in results.json's ``environment``.
"""

from __future__ import annotations

import hashlib
import re
import site
import sys
import sysconfig
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from auditkit.inputs.data import file_sha256


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=1)
def _site_dirs() -> tuple[Path, ...]:
    dirs = set()
    paths = sysconfig.get_paths()
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        if paths.get(key):
            dirs.add(Path(paths[key]).resolve())
    for d in [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]:
        dirs.add(Path(d).resolve())
    return tuple(sorted(dirs))


def _installed(path: Path) -> bool:
    return any(path.is_relative_to(d) for d in _site_dirs())


@lru_cache(maxsize=1)
def _own_distributions() -> frozenset[str]:
    """auditkit and every distribution it declares (any extra): recorded by version, not hashed."""
    names = {"auditkit"}
    try:
        for req in metadata.requires("auditkit") or []:
            m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
            if m:
                names.add(_norm(m.group(0)))
    except metadata.PackageNotFoundError:
        pass
    return frozenset(names)


def _module_file(module: ModuleType) -> Path | None:
    f = getattr(module, "__file__", None)
    return Path(f).resolve() if f else None


def _loaded_files(top: str) -> list[Path]:
    """Source files of the loaded modules ``top`` and ``top.*`` (what the run actually imported)."""
    out = set()
    for name, module in list(sys.modules.items()):
        if (name == top or name.startswith(top + ".")) and isinstance(module, ModuleType):
            f = _module_file(module)
            if f is not None and f.is_file():
                out.add(f)
    return sorted(out)


def _files_under(base: Path) -> list[Path]:
    """Loaded modules whose source lives in the spec's folder (a factory's helper modules)."""
    base = base.resolve()
    out = set()
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("auditkit", "auditkit_local_checks") or not isinstance(module, ModuleType):
            continue  # auditkit's own source (an editable checkout next to the spec) is versioned
        f = _module_file(module)
        if f is not None and f.is_relative_to(base) and not _installed(f) and f.is_file():
            out.add(f)
    return sorted(out)


def distribution_digest(dist: metadata.Distribution) -> tuple[str, int]:
    """(sha256 over ``path,sha256-of-content`` of every file the RECORD lists with a hash, count)."""
    lines = []
    for f in dist.files or []:
        if f.hash is None:  # RECORD itself and byte-code caches carry no hash
            continue
        path = Path(str(dist.locate_file(f)))
        content = file_sha256(path) if path.is_file() else "missing"
        lines.append(f"{f.as_posix()},{content}")
    lines.sort()
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest(), len(lines)


def distribution_entry(role: str, dist: metadata.Distribution) -> dict[str, Any]:
    digest, n = distribution_digest(dist)
    name = dist.metadata["Name"]
    return {
        "role": role, "kind": "distribution", "path": f"{name}=={dist.version}", "distribution": name,
        "version": dist.version, "sha256": digest, "files": n,
    }  # fmt: skip


def verify_distribution(entry: dict[str, Any]) -> list[str]:
    role, name = entry["role"], str(entry.get("distribution") or entry["path"])
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return [f"missing input: {role} distribution {name} is not installed"]
    if dist.version != entry.get("version"):
        return [f"changed input: {role} {name} {entry.get('version')} is now {dist.version}"]
    if distribution_digest(dist)[0] != entry["sha256"]:
        return [f"changed input: {role} {name}=={dist.version}: its installed files differ"]
    return []


def _distribution_of(top: str) -> metadata.Distribution | None:
    for name in metadata.packages_distributions().get(top, []):
        if _norm(name) in _own_distributions():
            return None
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _code_ref(role: str, ref: str) -> tuple[list[tuple[str, Path]], list[dict[str, Any]]]:
    """Files and distributions behind a ``pkg.mod:attr`` reference."""
    top = ref.partition(":")[0].split(".")[0]
    if not top or top in sys.stdlib_module_names:
        return [], []
    files = [(role, f) for f in _loaded_files(top) if not _installed(f)]
    dist = _distribution_of(top)
    return files, ([distribution_entry(role, dist)] if dist is not None else [])


def code_refs(spec: Any) -> list[tuple[str, str]]:
    """(role, 'pkg.mod:attr') of every spec value that names code."""
    refs = []
    if spec.model is not None and spec.model.factory:
        refs.append(("model.factory", spec.model.factory))
    training = spec.training
    if training is not None:
        items = [("training.optimizer", training.optimizer), ("training.schedule", training.schedule)]
        items += [(f"training.compare.{i}", c) for i, c in enumerate(training.compare)]
        for role, value in items:
            name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
            if isinstance(name, str) and ":" in name:
                refs.append((role, name))
    return refs


def code_inputs(
    loaded: Any, plugins: list[dict[str, Any]]
) -> tuple[list[tuple[str, Path]], list[dict[str, Any]]]:
    """(role, file) pairs and distribution entries of the code the run used. Call after the run:
    only imported modules are known."""
    spec = loaded.spec
    files: list[tuple[str, Path]] = []
    dists: list[dict[str, Any]] = []
    for role, ref in code_refs(spec):
        f, d = _code_ref(role, ref)
        files += f
        dists += d
    for folder in spec.checks.paths:
        root = loaded.resolve(folder)
        files += [("checks.paths", p) for p in sorted(root.glob("*.py")) if not p.name.startswith("_")]
    for plugin in plugins:
        role = f"plugin:{plugin.get('name')}"
        top = str(plugin.get("value") or "").partition(":")[0].split(".")[0]
        if top:
            files += [(role, f) for f in _loaded_files(top) if not _installed(f)]
        try:
            dist = metadata.distribution(str(plugin.get("distribution")))
        except metadata.PackageNotFoundError:
            continue
        dists.append(distribution_entry(role, dist))
    if spec.model is not None and spec.model.factory and loaded.path is not None:
        files += [("model.factory", f) for f in _files_under(loaded.base)]
    return _dedupe(files), dists


def _dedupe(files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    seen: set[Path] = set()
    out = []
    for role, path in files:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append((role, path))
    return out
