"""The evidence bundle: atomic output folder, manifest.json of sha256 hashes, and verification.

The folder is built under a temporary sibling name and renamed into place only when complete, so
an interrupted run never leaves a folder that looks like a finished bundle. manifest.json lists
every input (spec, data, model files) and every output except itself.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from auditkit.errors import InputError
from auditkit.toolkit.hashing import file_sha256

MANIFEST = "manifest.json"
MANIFEST_VERSION = "1"
FORMAT = "auditkit-bundle"  # the format id that says auditkit wrote a folder (with every file it lists)
REPORT_FORMAT = "auditkit-report"  # a folder written by `auditkit report`
MAX_MANIFEST_BYTES = 256 << 20  # a bigger "manifest.json" is not one auditkit wrote
SIGNATURE = "manifest.sig"  # detached Ed25519 signature over manifest.json (auditkit.results.signing)
# errnos that mean "the output place cannot take the bundle", not "a bug": exit 2 with one line.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
PLACE_ERRNOS = frozenset({errno.EROFS, errno.EIO, errno.EPERM, errno.EACCES, errno.ENOENT})


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


def build_manifest(
    root: Path, inputs: list[dict[str, Any]], *, signing: dict[str, str] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "algorithm": "sha256",
        "inputs": inputs,
        "outputs": manifest_entries(root),
    }
    if signing is not None:  # the key that will sign this manifest (known before the reports render)
        doc["signing"] = signing
    return doc


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_report_manifest(root: Path, results_path: Path) -> None:
    """manifest.json of a folder written by ``auditkit report``: its outputs and the results it rendered."""
    doc = build_manifest(root, input_entries([("results", results_path)], None))
    doc["format"] = REPORT_FORMAT
    write_json(root / MANIFEST, doc)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _why(err: OSError) -> str:
    return err.strerror or type(err).__name__


def _listed(doc: Any) -> dict[str, tuple[str, int | None]] | None:
    """path -> (sha256, bytes) of the outputs of a manifest auditkit wrote; None for any other file."""
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, REPORT_FORMAT):
        return None
    if doc.get("manifest_version") != MANIFEST_VERSION or doc.get("algorithm") != "sha256":
        return None
    outputs = doc.get("outputs")
    if not isinstance(outputs, list):
        return None
    listed: dict[str, tuple[str, int | None]] = {}
    for e in outputs:
        if (
            not isinstance(e, dict)
            or not isinstance(e.get("path"), str)
            or not isinstance(e.get("sha256"), str)
        ):
            return None
        listed[e["path"]] = (e["sha256"], e.get("bytes") if isinstance(e.get("bytes"), int) else None)
    return listed


def _own_file(path: Path, rel: str, listed: dict[str, tuple[str, int | None]], size: int) -> bool:
    if rel == SIGNATURE:
        from auditkit.results.signing import is_signature_file

        return is_signature_file(path)
    if rel not in listed:
        return False
    digest, nbytes = listed[rel]
    return (nbytes is None or nbytes == size) and file_sha256(path) == digest


def foreign_entry(folder: Path) -> str | None:
    """The first entry of ``folder`` that auditkit did not write, with why; None when every file in
    it is listed, unchanged, in an auditkit manifest (a bundle or a report folder) or it is empty.

    Symbolic links, devices and pipes are never auditkit's; a listed file that was edited is the
    user's now. Empty folders hold nothing to lose.
    """
    entries = _entries(folder)
    first = next(entries, None)
    if first is None:
        return None
    listed = _read_listed(folder / MANIFEST)
    if listed is None:  # decided without walking the rest (an -o of / or of a home folder)
        return (
            f"{first[0]} (the folder has no manifest.json written by auditkit: it is not an auditkit bundle)"
        )
    for rel, p, st in itertools.chain([first], entries):
        if st is None:
            return f"{rel} (a folder auditkit cannot read)"
        if not stat.S_ISREG(st.st_mode):
            return f"{rel} (a symbolic link or special file, not one auditkit wrote)"
        if rel == MANIFEST:
            continue
        if not _own_file(p, rel, listed, st.st_size):
            why = "changed since auditkit wrote it" if rel in listed else "not listed in its manifest.json"
            return f"{rel} ({why})"
    return None


def _entries(folder: Path) -> Iterator[tuple[str, Path, os.stat_result | None]]:
    """Every non-folder entry under ``folder`` (links not followed), sorted per folder, lazily;
    a folder that cannot be listed comes out with ``None``."""
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False, onerror=unreadable.append):
        while unreadable:
            err = unreadable.pop()
            yield Path(str(err.filename)).relative_to(folder).as_posix() or ".", Path(str(err.filename)), None
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = os.lstat(p)
            if not stat.S_ISDIR(st.st_mode):
                yield p.relative_to(folder).as_posix(), p, st
    for err in unreadable:
        yield Path(str(err.filename)).relative_to(folder).as_posix() or ".", Path(str(err.filename)), None


def _read_listed(mpath: Path) -> dict[str, tuple[str, int | None]] | None:
    try:
        st = os.lstat(mpath)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MANIFEST_BYTES:
            return None
        return _listed(json.loads(mpath.read_text(encoding="utf-8")))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def _output_path(target: Path) -> Path:
    """The absolute output path; its parent is resolved, its last component is not followed."""
    target = Path(os.path.abspath(target))
    return target.parent.resolve() / target.name


def check_output(target: Path, *, kind: str = FORMAT) -> Path:
    """Refuse an output folder auditkit may not replace (one line, nothing touched)."""
    target = _output_path(target)
    if target.is_symlink():
        raise InputError(
            f"output {target}: is a symbolic link; give the folder it points to, or another path"
        )
    if not target.exists():
        return target
    if not target.is_dir():
        raise InputError(f"output {target}: exists and is not a folder")
    foreign = foreign_entry(target)
    if foreign is not None:
        raise InputError(f"output {target}: holds a file auditkit did not write: {foreign}; nothing was "
                         "changed: choose another -o or move the file away")  # fmt: skip
    if kind == REPORT_FORMAT and _manifest_format(target) == FORMAT:
        raise InputError(f"output {target}: is an auditkit bundle; rendering into it would change its "
                         "evidence: choose another -o")  # fmt: skip
    return target


def _manifest_format(folder: Path) -> Any:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return None


def _output_error(err: OSError, tmp: Path, target: Path) -> InputError | None:
    """A write that failed because of the output place (full disk, read-only, gone): one line."""
    names = [str(n) for n in (err.filename, err.filename2) if n]
    inside = any(n.startswith(str(tmp)) or n.startswith(str(target)) for n in names)
    if err.errno in DISK_ERRNOS or (inside and err.errno in PLACE_ERRNOS):
        return InputError(f"output {target}: cannot write the bundle ({_why(err)}); no bundle was written")
    return None


@contextmanager
def atomic_dir(target: Path, *, kind: str = FORMAT) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target`` atomically.

    ``target`` is replaced only when it is absent, empty, or holds nothing but the unchanged files
    its auditkit manifest lists (``foreign_entry``); otherwise InputError before anything is
    written. The new folder gets the user's umask. On any exception, KeyboardInterrupt and
    SystemExit included, the temporary folder is removed; an OSError of the output place (full
    disk, read-only or immutable parent) becomes an InputError (exit 2).
    """
    target = check_output(target, kind=kind)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as err:
        raise InputError(f"output {target}: cannot create a folder here ({_why(err)})") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a bundle is shared like any folder
        yield tmp
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        mapped = _output_error(err, tmp, target)
        if mapped is not None:
            raise mapped from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap(tmp, target, kind)


def _swap(tmp: Path, target: Path, kind: str) -> None:
    old = None
    try:
        if target.exists():
            check_output(target, kind=kind)  # again: a file may have arrived while the audit ran
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if not target.exists():
                os.replace(old, target)
            else:
                shutil.rmtree(old, ignore_errors=True)
        if isinstance(err, OSError):
            raise InputError(f"output {target}: cannot move the bundle into place ({_why(err)})") from None
        raise
    if old is not None:
        if foreign_entry(old) is None:
            shutil.rmtree(old, ignore_errors=True)
        else:  # never delete what is not ours, even after a race
            print(
                f"auditkit: warning: the previous {target.name} was kept as {old}: it holds files auditkit "
                "did not write",
                file=sys.stderr,
            )


def _check_manifest_shape(mpath: Path, manifest: Any, outputs: Any, inputs: Any) -> None:
    """One line for a manifest that is not one auditkit wrote (instead of a KeyError deep inside)."""
    if manifest.get("format", FORMAT) not in (FORMAT, REPORT_FORMAT):
        raise InputError(f"{mpath}: format {manifest.get('format')!r} is not auditkit's ({FORMAT!r})")
    if manifest.get("algorithm") != "sha256" or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise InputError(f"{mpath}: algorithm {manifest.get('algorithm')!r} / manifest_version "
                         f"{manifest.get('manifest_version')!r} is not auditkit's (sha256 / {MANIFEST_VERSION!r})")  # fmt: skip
    for kind, entries, keys in (
        ("outputs", outputs, ("path", "sha256")),
        ("inputs", inputs, ("role", "path", "sha256")),
    ):
        if not isinstance(entries, list):
            raise InputError(f"{mpath}: {kind} must be a list")
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or any(not isinstance(e.get(k), str) for k in keys):
                raise InputError(f"{mpath}: {kind}[{i}] needs string fields {', '.join(keys)}")
            if "bytes" in e and not isinstance(e["bytes"], int):
                raise InputError(f"{mpath}: {kind}[{i}].bytes must be an integer")


def verify(bundle: Path, *, check_inputs: bool = True, key: Path | None = None) -> list[str]:
    """Recompute every hash in the bundle's manifest; return the mismatches (empty = all match)."""
    return verify_detail(bundle, check_inputs=check_inputs, key=key)[0]


def verify_detail(
    bundle: Path, *, check_inputs: bool = True, key: Path | None = None
) -> tuple[list[str], str]:
    """(mismatches, signature note). With ``key`` (a public key PEM) the bundle must carry a valid
    Ed25519 signature by that key over manifest.json; without it the signature is only described."""
    from auditkit.results.signing import check_signature, load_public_key

    bundle = Path(bundle)
    public_key = load_public_key(key) if key is not None else None
    mpath = bundle / MANIFEST
    if not mpath.is_file():
        raise InputError(f"{bundle}: no {MANIFEST}; not an auditkit bundle")
    try:
        raw = mpath.read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
        outputs = manifest["outputs"]
        inputs = manifest.get("inputs", [])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{mpath}: unreadable manifest ({err})") from None
    _check_manifest_shape(mpath, manifest, outputs, inputs)
    problems = _verify_outputs(bundle, outputs)
    if check_inputs:
        problems.extend(_verify_inputs(inputs))
    from auditkit.render import verify_hooks

    for hook in verify_hooks():
        problems.extend(hook(bundle, manifest))
    sig_problems, note = check_signature(bundle, raw, manifest.get("signing"), public_key)
    return problems + sig_problems, note


def _verify_outputs(bundle: Path, outputs: list[dict[str, Any]]) -> list[str]:
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
        # manifest.sig signs the manifest, so it cannot be listed in it; check_signature judges it.
        if p.is_file() and rel not in (MANIFEST, SIGNATURE) and rel not in listed:
            problems.append(f"unlisted file: {rel}")
    return problems


def _verify_inputs(inputs: list[dict[str, Any]]) -> list[str]:
    from auditkit.inputs.provenance import verify_distribution

    problems: list[str] = []
    for entry in inputs:
        if entry.get("kind") == "distribution":
            problems.extend(verify_distribution(entry))
            continue
        p = Path(entry.get("resolved") or entry["path"])
        if not p.is_file():
            problems.append(f"missing input: {entry['role']} {entry['path']}")
        elif file_sha256(p) != entry["sha256"] or ("bytes" in entry and p.stat().st_size != entry["bytes"]):
            problems.append(f"changed input: {entry['role']} {entry['path']}")
    return problems
