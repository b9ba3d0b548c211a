"""The import contract, read from the source (AST), so a breach names its file, line and import.

Checks (checks/*.py and the example plugin) import only ``auditkit`` (the public API),
``auditkit.toolkit`` and its submodules, ``auditkit.errors``, and their own package's private
``_x`` helper modules; never another public check module, never a private name of another
module, never ``ctx.artifacts``. A check may name ``auditkit.engine.check.Preflight`` (and
``RunContext`` from ``auditkit``) under ``TYPE_CHECKING`` only: type names, no run-time coupling.

The engine rooms point one way: ``render/`` reads only results.json (nothing of engine, inputs,
spec); ``toolkit/`` knows nothing of render or results.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

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

# Known breaches in files other engineers are converting (issue #13). Each entry is
# (file relative to the repo root, the imported module or "ctx.artifacts"). Empty this list as
# their branches land; a stale entry (no longer breached) fails too, so it cannot rot.
KNOWN_VIOLATIONS: set[tuple[str, str]] = {
    ("checks/adversarial.py", "auditkit.engine.context"),
    ("checks/adversarial.py", "auditkit.inputs.model"),
    ("checks/balance.py", "auditkit.inputs.data"),  # mine (house-data), not yet converted
    ("checks/balance.py", "ctx.artifacts"),  # mine (house-data), not yet converted
    ("checks/corruption.py", "auditkit.checks.adversarial"),
    ("checks/deployment.py", "auditkit.checks.adversarial"),
    ("checks/deployment.py", "auditkit.checks.corruption"),
    ("checks/deployment.py", "auditkit.engine.check"),
    ("checks/deployment.py", "auditkit.engine.context"),
    ("checks/deployment.py", "auditkit.inputs.deployment"),
    ("checks/deployment.py", "auditkit.inputs.model"),
    ("checks/deployment.py", "ctx.artifacts"),
    ("checks/drift.py", "auditkit.engine.check"),  # mine (house-data), not yet converted
    ("checks/governance.py", "auditkit.frameworks.rmf"),  # mine (house-data), not yet converted
    ("checks/label_errors.py", "auditkit.inputs.data"),  # mine (house-data), not yet converted
    ("checks/label_errors.py", "auditkit.inputs.training"),  # mine (house-data), not yet converted
    ("checks/label_errors.py", "ctx.artifacts"),  # mine (house-data), not yet converted
    ("checks/leakage.py", "auditkit.inputs.data"),  # mine (house-data), not yet converted
    ("checks/ood.py", "auditkit.inputs.data"),
    ("checks/quality.py", "auditkit.inputs.data"),  # mine (house-data), not yet converted
    ("checks/quality.py", "auditkit.spec.expr"),  # mine (house-data), not yet converted
    ("checks/quality.py", "ctx.artifacts"),  # mine (house-data), not yet converted
}


# render/common.py reads check metadata from the engine; owned by the render branch (issue #13).
KNOWN_ROOM_VIOLATIONS = {"auditkit/render/common.py:22: imports auditkit.engine.check"}


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


def _room_breaches(room: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((AUDITKIT / room).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve against the room
                pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                module = f"{pkg}.{node.module}" if node.module else pkg
                lines = [(node.lineno, module)]
            else:
                lines = (
                    [(ln, m) for ln, m, _ in _imports(ast.Module(body=[node], type_ignores=[]))]
                    if isinstance(node, ast.Import | ast.ImportFrom)
                    else []
                )
            for line, module in lines:
                if any(module == f or module.startswith(f + ".") for f in forbidden):
                    out.append(f"{_rel(path)}:{line}: imports {module}")
    return out


def test_renderers_read_only_results_json() -> None:
    bad = _room_breaches("render", ("auditkit.engine", "auditkit.inputs", "auditkit.spec"))
    bad = [b for b in bad if b not in KNOWN_ROOM_VIOLATIONS]
    assert not bad, "render/ must not import engine/inputs/spec:\n" + "\n".join(bad)


def test_toolkit_knows_nothing_of_render_or_results() -> None:
    bad = _room_breaches("toolkit", ("auditkit.render", "auditkit.results"))
    assert not bad, "toolkit/ must not import render/results:\n" + "\n".join(bad)


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
