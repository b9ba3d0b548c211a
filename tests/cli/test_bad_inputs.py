"""Bad input gets a one-line error naming the problem, exit code 2, and no traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.cli import main

CARD = """
card:
  owners: [{name: ML team, contact: ml@example.com}]
  intended_use: Screening support for trained staff only.
  out_of_scope: Automated decisions without a human in the loop.
  limitations: Trained on a small, old sample from one market.
  ethical_considerations: Error rates by group are monitored each release.
  license: Apache-2.0
"""


def _tables(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50), "y": rng.integers(0, 2, 50)})
    df.to_csv(tmp / "train.csv", index=False)
    df.iloc[:20].to_csv(tmp / "test.csv", index=False)
    df.iloc[:0].to_csv(tmp / "empty.csv", index=False)
    df.drop(columns=["b"]).to_csv(tmp / "nob.csv", index=False)
    df.assign(a=["x"] + list(df.a[1:])).to_csv(tmp / "text_in_numeric.csv", index=False)
    (tmp / "garbage.parquet").write_bytes(b"not a parquet file at all")
    (tmp / "data.txt").write_text("a,b\n1,2\n")


BASE = """
version: 1
name: bad-input-case
data:
  label: y
  splits: {train: train.csv, test: test.csv}
report: {formats: [json]}
"""

# (case id, spec text, extra CLI args, a substring the one-line message must contain)
CASES: list[tuple[str, str, list[str], str]] = [
    ("malformed_yaml", "version: 1\nname: [unclosed\n", [], "malformed YAML"),
    ("duplicate_key", BASE + "seed: 1\nseed: 2\n", [], "duplicate key 'seed'"),
    ("not_a_mapping", "- just\n- a list\n", [], "must be a mapping"),
    ("empty_spec", "", [], "empty"),
    ("unknown_top_key", BASE + "chekcs: {}\n", [], "did you mean 'checks'"),
    ("unknown_nested_key", BASE.replace("label: y", "label: y\n  lable: y"), [], "data.lable: unknown key"),
    ("missing_name", BASE.replace("name: bad-input-case\n", ""), [], "name: required key is missing"),
    ("wrong_version", BASE.replace("version: 1", "version: 3"), [], "version"),
    ("missing_file", BASE.replace("test.csv", "tset.csv"), [], "data.splits.test: file not found: tset.csv"),
    ("label_absent", BASE.replace("label: y", "label: outcome"), [], "label column 'outcome' not found"),
    ("empty_split", BASE.replace("test: test.csv", "test: empty.csv"), [], "no rows"),
    ("feature_missing", BASE.replace("test: test.csv", "test: nob.csv"), [], "feature 'b' is missing"),
    ("non_numeric", BASE.replace("test: test.csv", "test: text_in_numeric.csv"), [], "non-numeric values"),
    (
        "unparseable",
        BASE.replace("test: test.csv", "test: garbage.parquet"),
        [],
        "cannot read garbage.parquet",
    ),
    ("unsupported_type", BASE.replace("test: test.csv", "test: data.txt"), [], "unsupported file type"),
    ("wrong_type_seed", BASE.replace("version: 1", "version: 1\nseed: lots"), [], "seed"),
    ("bad_fail_on", BASE + "gate: {fail_on: severe}\n", [], "gate.fail_on"),
    (
        "unknown_select",
        BASE + "checks: {select: [AK-GOV-009]}\n",
        [],
        "unknown check id or prefix 'AK-GOV-009'",
    ),
    (
        "unknown_param",
        BASE + CARD + "checks: {params: {AK-GOV-001: {min_char: 3}}}\n",
        [],
        "did you mean 'min_chars'",
    ),
    (
        "bad_param_type",
        BASE + CARD + "checks: {params: {AK-GOV-001: {min_chars: many}}}\n",
        [],
        "checks.params.AK-GOV-001.min_chars",
    ),
    (
        "waiver_without_reason",
        BASE + "gate: {waivers: [{check: AK-GOV-001, expires: 2027-01-01}]}\n",
        [],
        "gate.waivers.0.reason: required key is missing",
    ),
    (
        "bad_attestation_id",
        BASE + CARD + '  attestations: {"GOVERN 9.9": {status: met, evidence: x, by: y, date: 2026-01-01}}\n',
        [],
        "not a NIST AI RMF 1.0 subcategory",
    ),
    (
        "two_model_sources",
        BASE + "model: {torchscript: train.csv, builtin: mlp}\n",
        [],
        "exactly one model source",
    ),
    ("cli_bad_param_syntax", BASE, ["--param", "nonsense"], "expected CHECK-ID.name=value"),
    ("cli_unknown_ignore", BASE, ["--ignore", "AK-NOPE"], "unknown check id or prefix 'AK-NOPE'"),
    ("missing_baseline", BASE + "gate: {baseline: old/results.json}\n", [], "gate.baseline: file not found"),
    ("bad_format", BASE.replace("formats: [json]", "formats: [docx]"), [], "report.formats.0"),
    (
        "unknown_require_plugin",
        BASE + "checks: {require_plugins: [no-such-plugin]}\n",
        [],
        "required plugin(s) not installed: no-such-plugin",
    ),
]


@pytest.mark.parametrize(("case", "spec", "args", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, spec: str, args: list[str], needle: str
) -> None:
    _tables(tmp_path)
    path = tmp_path / "audit.yaml"
    path.write_text(textwrap.dedent(spec))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["run", str(path), "-o", str(out), "-q", *args])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("auditkit: error: ")
    assert needle in err
    assert "Traceback" not in err
    assert not out.exists(), "a failed run must not leave an output folder"


def test_duplicate_check_id_from_local_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tables(tmp_path)
    (tmp_path / "mychecks").mkdir()
    (tmp_path / "mychecks" / "dup.py").write_text(
        textwrap.dedent('''
        from auditkit import Outcome, check

        @check(id="AK-GOV-001", title="A clash", requires=("train",))
        def clash(ctx, /):
            """Clashes with a built-in id."""
            return Outcome()
    ''')
    )
    (tmp_path / "audit.yaml").write_text(BASE + "checks: {paths: [mychecks]}\n")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path / "audit.yaml"), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "duplicate check id AK-GOV-001" in err
    assert "builtin:auditkit.checks.governance" in err and "dup.py" in err


def test_output_folder_that_is_not_a_bundle_is_never_clobbered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tables(tmp_path)
    (tmp_path / "audit.yaml").write_text(BASE)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path / "audit.yaml"), "-o", str(precious), "-q"])
    assert exc.value.code == 2
    assert "not an auditkit bundle" in capsys.readouterr().err
    assert (precious / "thesis.txt").read_text() == "years of work"
