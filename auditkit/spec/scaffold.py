"""``auditkit init``: a commented audit.yaml for the data files a user has."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

SPLITS = ("train", "test", "production", "ood")
LABEL_GUESSES = ("label", "target", "y", "class", "outcome")


def guess_label(frame: pd.DataFrame, *, npz: bool) -> tuple[str | None, str, list[str]]:
    """(label or None when ambiguous, the reason, candidate columns)."""
    if npz:
        return "y", "the array 'y' of the .npz file", ["y"]
    cols = [str(c) for c in frame.columns]
    named = [c for c in cols if c.lower() in LABEL_GUESSES]
    if len(named) == 1:
        return (
            named[0],
            f"guessed: the only column with a usual target name ({', '.join(LABEL_GUESSES)})",
            named,
        )
    if named:
        return None, f"{len(named)} columns have a usual target name", named
    from auditkit.inputs.data import is_datetime_column  # `auditkit init` reads the data it scaffolds for

    few = [c for c in cols if 2 <= frame[c].nunique(dropna=True) <= 20 and not is_datetime_column(frame[c])]
    return None, "no column has a usual target name", few or cols


def auto_features(frame: pd.DataFrame, label: str) -> tuple[list[str], list[str]]:
    """(features ``features: auto`` takes, datetime columns it leaves out) before any role is set."""
    cols = [str(c) for c in frame.columns if str(c) != label]
    from auditkit.inputs.data import is_datetime_column

    dates = [c for c in cols if is_datetime_column(frame[c])]
    return [c for c in cols if c not in dates], dates


def _ask(candidates: list[str], reason: str) -> str | None:
    """On a terminal, ask which column is the label; elsewhere None (the caller refuses)."""
    if not sys.stdin.isatty():
        return None
    import click

    return str(click.prompt(f"Which column is the label ({reason})?", type=click.Choice(candidates)))


def _comment_list(title: str, names: list[str], width: int = 96) -> str:
    """``names`` as YAML comment lines under ``title`` (wrapped)."""
    lines, line = [], f"  # {title}:"
    for n in (name if name.isprintable() else json.dumps(name) for name in names):  # a newline ends a comment
        if len(line) + len(n) + 2 > width:
            lines.append(line.rstrip(","))
            line = "  #  "
        line += f" {n},"
    lines.append(line.rstrip(","))
    return "\n".join(lines)


def write_spec(
    files: list[Path],
    output: Path,
    *,
    label: str | None = None,
    ask: Callable[[list[str], str], str | None] = _ask,
) -> str:
    """Write a spec naming each file as a split (train, test, production, ood in that order).

    The label is ``label``, or a guess that is written with its reason; an ambiguous guess is asked
    for on a terminal (``ask``) and refused elsewhere (exit 2, the candidates listed).
    """
    from auditkit.errors import UsageError

    if not files:
        raise UsageError("give at least one data file: auditkit init train.csv test.csv")
    if len(files) > len(SPLITS):
        raise UsageError(f"at most {len(SPLITS)} files ({', '.join(SPLITS)})")
    from auditkit.inputs.data import read_table

    frame, array = read_table(files[0], where=str(files[0]))
    cols = [str(c) for c in frame.columns]
    reason = "given with --label"
    if label is None:
        label, reason, candidates = guess_label(frame, npz=array is not None)
        if label is None:
            label = ask(candidates, reason)
            if label is None:
                shown = ", ".join(candidates[:10]) + (", ..." if len(candidates) > 10 else "")
                raise UsageError(f"cannot tell the label column of {files[0].name} ({reason}); "
                                 f"pass --label, one of: {shown}")  # fmt: skip
            reason = "chosen at the prompt"
    if label not in cols:
        raise UsageError(
            f"label column {label!r} is not in {files[0].name} (columns: {', '.join(cols[:10])})"
        )
    if array is not None:
        feature_note = f"  # auto takes the {len(cols) - 1} input columns of array 'x'"
    else:
        features, dates = auto_features(frame, label)
        feature_note = _comment_list(f"auto takes these {len(features)} columns", features)
        if dates:
            feature_note += "\n" + _comment_list("left out as datetimes (set data.time to use one)", dates)
        feature_note += "\n  # auto never takes data.sensitive, id, group, time or exclude columns"
    base = output.resolve().parent
    rel = [Path(f).resolve() for f in files]
    split_lines = "\n".join(
        f"    {name}: {_scalar(_rel(p, base))}" for name, p in zip(SPLITS, rel, strict=False)
    )
    text = f"""# auditkit audit spec. Reference: README.md ("audit.yaml reference"); schema: auditkit schema
version: 1
name: {_scalar(output.resolve().parent.name or "my-model")}        # subject of the audit
seed: 0
data:
  label: {_scalar(label)}                  # target column ({reason})
  features: auto                 # or a list; auto = all columns but label/id/group/time/sensitive/exclude
{feature_note}
  # categorical: [colour]        # inferred from dtype when absent
  # id: customer_id              # entity id: entity leakage, per-entity time order
  # group: household_id          # grouping: group leakage
  # time: created_at             # timestamp: temporal leakage
  # sensitive: [sex]             # slices and fairness
  splits:
{split_lines}
# model:                         # exactly one source; without a model only data checks run
#   builtin: mlp                 # mlp | cnn, trained by auditkit from `training`
#   # torchscript: model.pt
#   task: classification         # or regression; inferred when absent (numeric label, > 50 values)
#   # output: point              # regression: point | gaussian | {{quantiles: [0.05, 0.5, 0.95]}}
# training:
#   optimizer: {{name: AdamW, lr: 0.001, weight_decay: 0.01}}
#   schedule: {{name: cosine, warmup_epochs: 1}}
#   epochs: 20
#   seeds: [0, 1, 2]
checks:
  select: []                     # id prefixes, e.g. [AK-LEAK, AK-BAL]; empty = all applicable
  ignore: []
  params: {{}}                     # e.g. {{AK-LEAK-001: {{max_overlap_ratio: 0.0}}}}
{criteria_lines(frame, label)}
gate:
  fail_on: high                  # info | low | medium | high | critical
  waivers: []                    # - {{check: AK-BAL-001, reason: "...", expires: 2027-01-31}}
report:
  formats: [json, html, pdf, model_card, junit]
  frameworks: [nist_ai_rmf]      # add eu_ai_act, iso_42001 for their coverage matrices
"""
    output.write_text(text, encoding="utf-8")
    return text


def criteria_lines(frame: Any, label: str) -> str:
    """Commented-out performance minimums for AK-PERF-001, with what train says as the hint.

    Without declared minimums AK-PERF-001 reports accuracy but gates only "beats the majority
    class"; the hint is the majority-class share on train (what always guessing it scores) and the
    chance level, so a user picks a real minimum above them rather than copying a number."""
    counts = frame[label].value_counts(dropna=True) if label in frame.columns else None
    if counts is None or counts.empty:
        return "  # (declared minimums: see AK-PERF-001 in the README; no label values to measure on train)"
    majority = float(counts.iloc[0]) / float(counts.sum())
    k = int(len(counts))
    from auditkit.safetext import inert

    name = '"' + inert(str(counts.index[0]), multiline=False)[:60] + '"'  # a comment stays one line
    return "\n".join([
        "  # Declared criteria: without minimums AK-PERF-001 reports performance but does not gate it.",
        "  # Replace `params: {}` above with these lines, uncommented, and set values you can defend:",
        "  # params:",
        "  #   AK-PERF-001:",
        f"  #     min_accuracy: {majority:.3f}           # hint, measured on train: majority class {name}"
        f" is {majority:.1%} of rows (always guessing it scores this)",
        f"  #     min_balanced_accuracy: {1 / k:.3f}  # hint: chance level for {k} classes",
        "  #     min_roc_auc: 0.5             # hint: chance level",
    ])  # fmt: skip


def _rel(p: Path, base: Path) -> str:
    """Relative to the spec's folder (paths in a spec are), so the spec and data move together."""
    try:
        return Path(os.path.relpath(p, base)).as_posix()
    except ValueError:  # another drive on Windows
        return p.as_posix()


def _scalar(text: str) -> str:
    """``text`` as a YAML scalar that reads back as the same string (a column named yes, 1 or a:b)."""
    try:
        plain = yaml.safe_load(text) == text and not any(c in text for c in ":#{}[],&*!|>'\"%@`")
    except yaml.YAMLError:
        plain = False
    return text if plain and text.strip() == text else json.dumps(text)
