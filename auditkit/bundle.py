"""The evidence bundle: atomic output folder, manifest.json of sha256 hashes, and verification.

The folder is built under a temporary sibling name and renamed into place only when complete, so
an interrupted run never leaves a folder that looks like a finished bundle. manifest.json lists
every input (spec, data, model files) and every output except itself.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from auditkit.data import file_sha256
from auditkit.errors import InputError

MANIFEST = "manifest.json"
MANIFEST_VERSION = "1"


def manifest_entries(root: Path, *, exclude: tuple[str, ...] = (MANIFEST,)) -> list[dict[str, Any]]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel in exclude:
                continue
            out.append({"path": rel, "sha256": file_sha256(p), "bytes": p.stat().st_size})
    return out


def input_entries(files: list[tuple[str, Path]], base: Path | None) -> list[dict[str, Any]]:
    out = []
    for role, path in files:
        rel = os.path.relpath(path, base) if base else str(path)
        out.append({
            "role": role, "path": Path(rel).as_posix(), "resolved": str(path.resolve()),
            "sha256": file_sha256(path), "bytes": path.stat().st_size,
        })  # fmt: skip
    return out


def build_manifest(root: Path, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "algorithm": "sha256",
        "inputs": inputs,
        "outputs": manifest_entries(root),
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


@contextmanager
def atomic_dir(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target`` atomically.

    A ``target`` that exists and is not an auditkit bundle (no manifest.json) is never replaced.
    On any exception, KeyboardInterrupt and SystemExit included, the temporary folder is removed.
    """
    target = target.resolve()
    if target.exists():
        if not target.is_dir():
            raise InputError(f"output {target} exists and is not a folder")
        if any(target.iterdir()) and not (target / MANIFEST).exists():
            raise InputError(f"output folder {target} exists, is not empty and is not an auditkit bundle; choose another -o")
        if not overwrite:
            raise InputError(f"output folder {target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_manifest_shape(mpath: Path, manifest: Any, outputs: Any, inputs: Any) -> None:
    """One line for a manifest that is not one auditkit wrote (instead of a KeyError deep inside)."""
    if manifest.get("algorithm") != "sha256" or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise InputError(f"{mpath}: algorithm {manifest.get('algorithm')!r} / manifest_version "
                         f"{manifest.get('manifest_version')!r} is not auditkit's (sha256 / {MANIFEST_VERSION!r})")  # fmt: skip
    for kind, entries, keys in (("outputs", outputs, ("path", "sha256")), ("inputs", inputs, ("role", "path", "sha256"))):
        if not isinstance(entries, list):
            raise InputError(f"{mpath}: {kind} must be a list")
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or any(not isinstance(e.get(k), str) for k in keys):
                raise InputError(f"{mpath}: {kind}[{i}] needs string fields {', '.join(keys)}")
            if "bytes" in e and not isinstance(e["bytes"], int):
                raise InputError(f"{mpath}: {kind}[{i}].bytes must be an integer")


def verify(bundle: Path, *, check_inputs: bool = True) -> list[str]:
    """Recompute every hash in the bundle's manifest; return the mismatches (empty = all match)."""
    bundle = Path(bundle)
    mpath = bundle / MANIFEST
    if not mpath.is_file():
        raise InputError(f"{bundle}: no {MANIFEST}; not an auditkit bundle")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        outputs = manifest["outputs"]
        inputs = manifest.get("inputs", [])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{mpath}: unreadable manifest ({err})") from None
    _check_manifest_shape(mpath, manifest, outputs, inputs)
    problems: list[str] = []
    listed = set()
    for entry in outputs:
        parts = PurePosixPath(entry["path"])
        if parts.is_absolute() or ".." in parts.parts:
            problems.append(f"output path outside the bundle: {entry['path']}")
            continue
        p = bundle / entry["path"]
        listed.add(entry["path"])
        if not p.is_file():
            problems.append(f"missing output: {entry['path']}")
        elif file_sha256(p) != entry["sha256"] or ("bytes" in entry and p.stat().st_size != entry["bytes"]):
            problems.append(f"changed output: {entry['path']}")
    for p in sorted(bundle.rglob("*")):
        rel = p.relative_to(bundle).as_posix()
        if p.is_file() and rel != MANIFEST and rel not in listed:
            problems.append(f"unlisted file: {rel}")
    if check_inputs:
        for entry in inputs:
            p = Path(entry.get("resolved") or entry["path"])
            if not p.is_file():
                problems.append(f"missing input: {entry['role']} {entry['path']}")
            elif file_sha256(p) != entry["sha256"] or ("bytes" in entry and p.stat().st_size != entry["bytes"]):
                problems.append(f"changed input: {entry['role']} {entry['path']}")
    from auditkit.render import verify_hooks

    for hook in verify_hooks():
        problems.extend(hook(bundle, manifest))
    return problems
