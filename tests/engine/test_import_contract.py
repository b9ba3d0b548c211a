"""The import contract, read from the source (AST), so a breach names its file, line and import.

Checks (checks/*.py and the example plugin) import only ``auditkit`` (the public API),
``auditkit.toolkit`` and its submodules, ``auditkit.errors``, and their own package's private
``_x`` helper modules; never another public check module, never a private name of another
module, never ``ctx.artifacts``. A check may name ``auditkit.engine.check.Preflight`` (and
``RunContext`` from ``auditkit``) under ``TYPE_CHECKING`` only: type names, no run-time coupling.

The engine rooms point one way (docs/ARCHITECTURE.md): each room imports at run time only itself,
the root modules (errors, safetext, numbers, severity) and the rooms ``ROOMS`` allows it;
``KNOWN_ROOM_VIOLATIONS`` lists the lazy imports that remain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "checks"
PLUGIN = ROOT / "examples" / "plugin"
AUDITKIT = ROOT / "auditkit"

ALLOWED_MODULES = (
    "auditkit",
    "auditkit.toolkit",
    "auditkit.errors",
)  # exactly these, plus the prefixes below
ALLOWED_PREFIXES = ("auditkit.toolkit.",)
TYPE_ONLY = {("auditkit.engine.check", "Preflight")}

# Accepted breaches: (file relative to the repo root, the imported module or "ctx.artifacts").
# Empty since issue #13 landed; a stale entry (no longer breached) fails too, so it cannot rot.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def _files() -> list[Path]:
    return sorted([*CHECKS.glob("*.py"), *PLUGIN.rglob("*.py")])


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (the body, not the else branch)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(tree: ast.Module) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, imported names) for every import statement, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [a.name for a in node.names]


def _own_private(module: str, builtin: bool, package: str) -> bool:
    """A private helper module of the file's own package (auditkit.checks._x or the plugin's)."""
    parent, _, last = module.rpartition(".")
    if not last.startswith("_") or last.startswith("__"):
        return False
    return parent == ("auditkit.checks" if builtin else package)


def _check_breaches(path: Path, builtin: bool | None = None) -> Iterator[tuple[str, str]]:
    """(import key, message) for each breach in one check file (``builtin``: a checks/ module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = _type_checking_lines(tree)
    builtin = path.is_relative_to(CHECKS) if builtin is None else builtin
    where = _rel(path) if path.is_relative_to(ROOT) else path.name
    package = path.parent.name
    for line, module, names in _imports(tree):
        own_package = not builtin and module.split(".")[0] == package
        if _own_private(module, builtin, package) or own_package:
            continue
        if module.startswith("auditkit.checks") or (module == "auditkit" and "checks" in names):
            yield module, f"{where}:{line}: imports the check module {module} (use a private _x helper)"
            continue
        if module.startswith("auditkit"):
            allowed = module in ALLOWED_MODULES or module.startswith(ALLOWED_PREFIXES)
            type_ok = line in typing_only and all((module, n) in TYPE_ONLY for n in names)
            if not (allowed or type_ok):
                yield (
                    module,
                    f"{where}:{line}: imports {module} ({', '.join(names) or 'module'}), outside the public API",
                )
                continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private:
            yield module, f"{where}:{line}: imports private name(s) {', '.join(private)} of {module}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "artifacts" and ast.unparse(node.value) == "ctx":
            yield "ctx.artifacts", f"{where}:{node.lineno}: uses ctx.artifacts (use the RunContext methods)"


def test_checks_import_only_the_public_api() -> None:
    found = {(_rel(p), key): msg for p in _files() for key, msg in _check_breaches(p)}
    new = sorted(msg for key, msg in found.items() if key not in KNOWN_VIOLATIONS)
    assert not new, "import contract broken:\n" + "\n".join(new)
    stale = sorted(KNOWN_VIOLATIONS - set(found))
    assert not stale, f"KNOWN_VIOLATIONS lists breaches that are gone; remove them: {stale}"


# Root modules every room may import: they import nothing from auditkit (or, for ``auditkit``
# itself, only the check API re-exported by name).
ROOT_MODULES = ("auditkit.errors", "auditkit.safetext", "auditkit.numbers", "auditkit.severity")

# What each room may import at run time (imports under ``if TYPE_CHECKING:`` are type names, no
# coupling); a room always may import itself. docs/ARCHITECTURE.md states the same rules.
ROOMS: dict[str, tuple[str, ...]] = {
    "render": ("auditkit.results.document", "auditkit.frameworks"),
    "results": ("auditkit.toolkit",),  # file digests; never render, but lazily (the bundle writer)
    "toolkit": (),
    "frameworks": (),
    "spec": ("auditkit.toolkit", "auditkit.frameworks"),
    "inputs": ("auditkit.toolkit", "auditkit.spec", "auditkit.frameworks"),
    "engine": (
        "auditkit.toolkit",
        "auditkit.spec",
        "auditkit.inputs",
        "auditkit.frameworks",
        "auditkit.results",
    ),
}

# Breaches that remain (file, imported module); each is a lazy import inside a function, named in
# docs/ARCHITECTURE.md. A stale entry (no longer breached) fails too, so the list cannot rot.
KNOWN_ROOM_VIOLATIONS: set[tuple[str, str]] = {
    # the bundle writer renders the reports and verifies an installed distribution
    ("auditkit/results/bundle.py", "auditkit.render"),
    ("auditkit/results/bundle.py", "auditkit.inputs.provenance"),
    # training runs go to the compute engine
    ("auditkit/inputs/parallel_training.py", "auditkit.engine.compute"),
    # an MLflow model URI is checked and downloaded through the MLflow integration
    ("auditkit/inputs/loading.py", "auditkit.integrations.mlflow_io"),
    ("auditkit/spec/schema.py", "auditkit.integrations.mlflow_io"),
    # `auditkit init` reads a data file to write a spec
    ("auditkit/spec/scaffold.py", "auditkit.inputs.data"),
    # the engine writes the reports an audit asks for, runs the MLflow hooks, finds the built-in checks
    ("auditkit/engine/audit.py", "auditkit.render"),
    ("auditkit/engine/audit.py", "auditkit.integrations.mlflow_io"),
    ("auditkit/engine/registry.py", "auditkit.checks"),
}


def _runtime_imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every import outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = _type_checking_lines(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve against the package
            pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
            yield node.lineno, f"{pkg}.{node.module}" if node.module else pkg, [a.name for a in node.names]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            yield from _imports(ast.Module(body=[node], type_ignores=[]))


def _room_breaches(room: str) -> dict[tuple[str, str], str]:
    allowed = (f"auditkit.{room}", *ROOT_MODULES, *ROOMS[room])
    out = {}
    for path in sorted((AUDITKIT / room).rglob("*.py")):
        for line, module, names in _runtime_imports(path):
            if not module.startswith("auditkit"):
                continue
            if module == "auditkit" and names == ["__version__"]:
                continue
            if module == "auditkit":  # the root re-exports the engine's check API: name the home module
                out[(_rel(path), f"auditkit:{','.join(names)}")] = (
                    f"{_rel(path)}:{line}: imports {names} from auditkit"
                )
                continue
            if not any(module == a or module.startswith(a + ".") for a in allowed):
                out[(_rel(path), module)] = f"{_rel(path)}:{line}: imports {module}"
    return out


def test_rooms_import_only_what_docs_architecture_allows() -> None:
    found: dict[tuple[str, str], str] = {}
    for room in ROOMS:
        found.update(_room_breaches(room))
    new = sorted(msg for key, msg in found.items() if key not in KNOWN_ROOM_VIOLATIONS)
    assert not new, "a room imports outside its rules (docs/ARCHITECTURE.md):\n" + "\n".join(new)
    stale = sorted(KNOWN_ROOM_VIOLATIONS - set(found))
    assert not stale, f"KNOWN_ROOM_VIOLATIONS lists breaches that are gone; remove them: {stale}"


def test_known_room_breaches_are_lazy_imports() -> None:
    """What is left is imported inside a function, never when the module loads."""
    for file, module in KNOWN_ROOM_VIOLATIONS:
        path = ROOT / file
        top = [m for ln, m, _ in _imports(ast.parse(path.read_text())) if ln in _top_level_lines(path)]
        assert module not in top, f"{file} imports {module} at module level"


def _top_level_lines(path: Path) -> set[int]:
    tree = ast.parse(path.read_text())
    return {n.lineno for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)}


def test_render_reads_only_results_json() -> None:
    """The renderers' rule on its own (the strictest room): no engine, inputs or spec, not even via
    the root package's re-exports."""
    bad = [msg for msg in _room_breaches("render").values()]
    assert not bad, "render/ must read only results.json:\n" + "\n".join(bad)


def test_the_contract_test_catches_a_breach(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text(
        "from auditkit.engine.context import RunContext\n"
        "from auditkit.checks.leakage import near_duplicates\n"
        "from auditkit.toolkit.stats import _auc_weighted\n"
        "def f(ctx):\n    return ctx.artifacts\n"
    )
    msgs = [m for _, m in _check_breaches(bad, builtin=True)]
    ok = tmp_path / "fine.py"
    ok.write_text(
        "from typing import TYPE_CHECKING\n"
        "from auditkit import check\nfrom auditkit.toolkit import auc\nfrom auditkit.checks._evaluation import finite\n"
        "if TYPE_CHECKING:\n    from auditkit.engine.check import Preflight\n"
    )
    assert list(_check_breaches(ok, builtin=True)) == []
    assert any(":1: imports auditkit.engine.context" in m for m in msgs), msgs
    assert any(":2: imports the check module auditkit.checks.leakage" in m for m in msgs), msgs
    assert any(":3: imports private name(s) _auc_weighted" in m for m in msgs), msgs
    assert any(":5: uses ctx.artifacts" in m for m in msgs), msgs


def test_root_modules_import_nothing_from_auditkit() -> None:
    """errors, safetext, numbers and severity are the floor every room may stand on."""
    bad = [
        f"{m}:{line}: imports {module}"
        for m in ROOT_MODULES
        for line, module, _ in _runtime_imports(AUDITKIT / f"{m.split('.')[1]}.py")
        if module.startswith("auditkit")
    ]
    assert not bad, "\n".join(bad)


def test_the_room_rule_catches_a_breach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    me = sys.modules[__name__]
    (tmp_path / "render").mkdir()
    (tmp_path / "render" / "probe.py").write_text(
        "from typing import TYPE_CHECKING\nfrom auditkit import SEVERITIES\nfrom auditkit.engine.check import Metric\n"
        "from auditkit.results.document import dumps\nif TYPE_CHECKING:\n    from auditkit.inputs.data import Dataset\n"
    )
    monkeypatch.setattr(me, "AUDITKIT", tmp_path)
    monkeypatch.setattr(me, "ROOT", tmp_path)
    msgs = sorted(_room_breaches("render").values())
    assert msgs == [
        "render/probe.py:2: imports ['SEVERITIES'] from auditkit",
        "render/probe.py:3: imports auditkit.engine.check",
    ], msgs


def test_training_does_not_import_the_artifact_cache() -> None:
    """Training is a function of its ``TrainingInputs``: inputs/training*.py import nothing from
    inputs/artifacts, not even type names (the cache builds the inputs and calls downward)."""
    bad = []
    inputs = AUDITKIT / "inputs"
    for path in sorted({*inputs.glob("training*.py"), *inputs.glob("*_training.py")}):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                modules = [f"{pkg}.{node.module}" if node.module else pkg]
                if node.module is None:  # from . import artifacts
                    modules = [f"{pkg}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            if any(
                m == "auditkit.inputs.artifacts" or m.startswith("auditkit.inputs.artifacts.")
                for m in modules
            ):
                bad.append(f"{_rel(path)}:{node.lineno}: imports auditkit.inputs.artifacts")
    assert not bad, "training must not import the artifact cache:\n" + "\n".join(bad)
