"""``--no-code``: refuse every spec key that makes auditkit import or run Python from outside.

A release gate may run a spec from an untrusted pull request. Four kinds of key are code by
design — ``checks.paths`` (local check modules), ``model.factory`` and ``pkg.mod:Class`` optimizers
and schedules (imports), ``model.allow_pickle`` (unpickling runs code) — and installed entry-point
plugins are code the spec can pick with ``checks.require_plugins``. With ``auditkit run --no-code``,
``AUDITKIT_NO_CODE=1`` or ``Overrides(no_code=True)`` each of them is an error (exit 2, one line
naming the key) found before anything runs, and plugin autoload is off. Either switch turns the
policy on; nothing in a spec can turn it off.

Besides that first check, the places that would import or unpickle call :func:`refuse`, so code
paths reached some other way (the Python API with pre-built artifacts) are refused too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from auditkit.errors import SpecError

if TYPE_CHECKING:
    from auditkit.spec.schema import AuditSpec, LoadedSpec

ENV = "AUDITKIT_NO_CODE"
ROOTS_ENV = "AUDITKIT_ALLOW_PATHS"  # extra folders a no-code spec may read, os.pathsep-separated
_active = 0  # nesting count of no-code runs in this process (threads of a run see it too)


def from_env() -> bool:
    """``AUDITKIT_NO_CODE`` set to anything but empty, 0, false, no or off."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def active() -> bool:
    return _active > 0 or from_env()


@contextlib.contextmanager
def scope(no_code: bool) -> Iterator[None]:
    """The no-code policy for the block (on when ``no_code`` or the environment says so)."""
    global _active
    on = no_code or from_env()
    if on:
        _active += 1
    try:
        yield
    finally:
        if on:
            _active -= 1


def forbidden(key: str, what: str) -> SpecError:
    return SpecError(f"code is forbidden by --no-code ({what})", location=key)


def refuse(key: str, what: str) -> None:
    """Raise the no-code error for ``key`` when the policy is on."""
    if active():
        raise forbidden(key, what)


def code_keys(spec: AuditSpec) -> list[tuple[str, str]]:
    """(key, why it is code) for every key of ``spec`` that imports or runs Python from outside."""
    keys: list[tuple[str, str]] = []
    if spec.checks.paths:
        keys.append(("checks.paths", "it imports and runs local Python check modules"))
    if spec.checks.require_plugins:
        keys.append(("checks.require_plugins", "plugins are Python code; --no-code does not load them"))
    m = spec.model
    if m is not None and m.factory:
        keys.append(("model.factory", f"{m.factory!r} imports and calls Python"))
    if m is not None and m.allow_pickle:
        keys.append(("model.allow_pickle", "unpickling a file runs any code it contains"))
    t = spec.training
    if t is not None:
        named = [("training.optimizer.name", t.optimizer.name), ("training.schedule.name", t.schedule.name)]
        named += [(f"training.compare.{i}.name", c.name) for i, c in enumerate(t.compare)]
        for key, name in named:
            if ":" in str(name):
                keys.append((key, f"{name!r} imports Python; name a built-in class such as AdamW"))
    return keys


def check_spec(spec: AuditSpec) -> None:
    """Under the policy, the first code key of ``spec`` is an error (before anything runs)."""
    if not active():
        return
    keys = code_keys(spec)
    if keys:
        raise forbidden(*keys[0])


def allowed_roots(loaded: LoadedSpec) -> list[Path]:
    """The spec's own folder and the folders the operator allowed in ``AUDITKIT_ALLOW_PATHS``."""
    extra = [Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(os.path.realpath(p)) for p in [loaded.base, *extra]]


def check_paths(loaded: LoadedSpec) -> None:
    """Under the policy, every file the spec names must lie inside an allowed root.

    A spec from a pull request could otherwise name ``~/.aws/credentials`` or ``/etc/shadow`` as a data
    split and publish its rows in the report, which CI uploads. Symbolic links are resolved first.
    """
    if not active():
        return
    from auditkit.spec.schema import spec_files

    roots = allowed_roots(loaded)
    for key, rel in spec_files(loaded):
        real = Path(os.path.realpath(loaded.resolve(rel)))
        if not any(real == root or root in real.parents for root in roots):
            raise SpecError(
                f"{rel!r} is outside the spec's folder; --no-code reads only files under it "
                f"(or under {ROOTS_ENV})",
                location=key,
            )
