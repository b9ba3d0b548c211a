"""Hostile inputs, table-driven: each gets its exit code and one-line message, runs no code, and
changes no file that auditkit did not write (issue 12's acceptance).

Every case runs in a sandbox holding data, a spec and a folder of the user's own files; after the
run, every file outside the bundle folder must be byte-identical and no canary file may exist.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main

BASE = """\
version: 1
name: hostile-case
data:
  label: y
  splits: {train: train.csv, test: test.csv}
report: {formats: [json]}
"""


def _sandbox(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80), "y": rng.integers(0, 2, 80)})
    df.to_csv(tmp / "train.csv", index=False)
    df.iloc[:40].to_csv(tmp / "test.csv", index=False)
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and skip not in p.parents:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass(frozen=True)
class Case:
    id: str
    spec: str  # "{canary}" is replaced by the canary path, "{tmp}" by the sandbox
    needle: str  # a substring of the one-line message
    args: tuple[str, ...] = ()
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None


def _yaml_bomb(levels: int) -> str:
    lines = ["    - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"    - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return BASE + "card:\n  limitations:\n" + "\n".join(lines) + "\n"


CASES: list[Case] = [
    Case("yaml_billion_laughs", _yaml_bomb(9), "expands to over 100,000 nodes"),
    Case("yaml_recursive_alias", BASE + "description: &r [*r]\n", "alias refers to itself"),
    Case(
        "yaml_python_tag",
        BASE.replace("name: hostile-case", 'name: !!python/object/apply:os.system ["touch {canary}"]'),
        "could not determine a constructor",
    ),
    Case(
        "yaml_python_name_tag",
        BASE + "description: !!python/name:os.system\n",
        "could not determine a constructor",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    _sandbox(tmp_path)
    canary = tmp_path / "canary-ran"
    if case.prepare:
        case.prepare(tmp_path)
    spec = tmp_path / "audit.yaml"
    spec.write_text(
        textwrap.dedent(case.spec).replace("{canary}", str(canary)).replace("{tmp}", str(tmp_path))
    )
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    before = _snapshot(tmp_path, skip=out)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args] or ["run", str(spec), "-o", str(out), "-q"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == case.code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("auditkit: error: ")]
    assert len(lines) == 1 and case.needle in lines[0], err
    assert not canary.exists(), "the spec ran code"
    assert _snapshot(tmp_path, skip=out) == before, "a file auditkit did not write changed"
