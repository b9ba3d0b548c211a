"""Model cards from results.json: Markdown with Hugging Face front matter, and a Google Model Card
Toolkit (schema v0.0.2) JSON document that validates against the schema shipped in
``auditkit/resources/model_card_toolkit.schema.v0.0.2.json`` (Apache-2.0, attribution beside it).

Headline metrics are the metrics of the evaluation, robustness and OOD checks that ran. Hugging
Face's model-index has no slot for intervals, so the point value goes there and the interval, n and
threshold go into the Evaluation table of the body.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup

from auditkit.numbers import cut, fmt_ci, fmt_num
from auditkit.render.common import area_of, document_date, has_tags, task_text
from auditkit.results.document import deselected
from auditkit.safetext import inert, markdown_text

MD_FILE = "model_card.md"
JSON_FILE = "model_card.json"
HEADLINE_AREAS = ("evaluation", "robustness", "ood")
MAX_HEADLINE = 40


_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")  # MCT references must be URIs


@lru_cache(maxsize=1)
def mct_schema() -> dict[str, Any]:
    text = (
        files("auditkit")
        .joinpath("resources/model_card_toolkit.schema.v0.0.2.json")
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def _one_line(value: Any, limit: int = 200) -> str:
    return cut(inert(re.sub(r"\s+", " ", str(value or "")).strip(), multiline=False), limit)


def _numbers(fmt: Any, value: Any) -> Any:
    """``fmt(value)`` as Markup (shown as written) when ``value`` holds only numbers; else text."""
    items = value if isinstance(value, (list, tuple)) else [value]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items)
    return Markup(fmt(value)) if numeric else fmt(value)


def _fairness_checks(results: dict[str, Any]) -> set[str]:
    """Checks whose metrics go in the card's fairness section: those tagged "fairness" that are
    not also "performance" checks (per-slice performance, tagged both, stays under the metrics)."""
    return {
        str(rec.get("id"))
        for rec in results.get("checks") or []
        if isinstance(rec, dict) and has_tags(rec, "fairness") and not has_tags(rec, "performance")
    }


def _rows(
    results: dict[str, Any], areas: tuple[str, ...], name_filter: str | None = None
) -> list[dict[str, Any]]:
    rows = []
    for rec in results.get("checks") or []:
        if deselected(rec) or rec.get("status") not in ("passed", "failed") or area_of(rec) not in areas:
            continue
        for m in rec.get("metrics") or []:
            if (
                not isinstance(m, dict)
                or not isinstance(m.get("value"), (int, float))
                or isinstance(m.get("value"), bool)
            ):
                continue
            if name_filter and not re.search(name_filter, str(m.get("name")), re.I):
                continue
            thr, direction = m.get("threshold"), m.get("direction")
            rule = ""
            if thr is not None and direction in ("higher", "lower"):
                rule = ("≥ " if direction == "higher" else "≤ ") + fmt_num(thr)
            rows.append({
                # numbers formatted here are shown as written (Markup): "[0.91, 0.98]" is an interval, not a link
                "check": str(rec.get("id")), "metric": str(m.get("name")), "raw": m,
                "unit": _one_line(m.get("unit"), 60) if m.get("unit") else "",
                "value": _numbers(fmt_num, m.get("value")), "ci": _numbers(fmt_ci, m.get("ci")),
                "n": _numbers(fmt_num, m.get("n")) if m.get("n") is not None else "",
                "rule": rule, "status": rec.get("status"), "title": str(rec.get("title") or ""),
            })  # fmt: skip
    return rows


def _task(results: dict[str, Any]) -> tuple[str, str]:
    spec = results.get("spec") or {}
    kind = ((spec.get("model") or {}).get("input") or {}).get("kind")
    task = (results.get("subject") or {}).get("task") or "classification"
    if task == "regression":  # Hugging Face task ids: tabular-regression; images have no regression id
        return (
            ("image-regression", "Image Regression")
            if kind == "image"
            else ("tabular-regression", "Tabular Regression")
        )
    if kind == "image":
        return "image-classification", "Image Classification"
    return "tabular-classification", "Tabular Classification"


def _card(results: dict[str, Any]) -> dict[str, Any]:
    spec = results.get("spec") or {}
    card = spec.get("card") or {}
    return card if isinstance(card, dict) else {}


def _model_name(results: dict[str, Any]) -> str:
    card = _card(results)
    return str(card.get("model_name") or (results.get("subject") or {}).get("name") or "model")


def _hub_dataset(subject: dict[str, Any], split: str) -> dict[str, Any]:
    """model-index ``dataset``: the split's content fingerprint in the name (the Hub shows it) and args."""
    info = (subject.get("datasets") or {}).get(split) or {}
    sha = str(info.get("sha256") or "") if isinstance(info, dict) else ""
    label = f"{subject.get('name') or 'audit'} ({split} split" + (f", sha256 {sha[:12]})" if sha else ")")
    # The Hub reads ``type`` as a dataset id: a slug of the subject, not free text.
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(subject.get("name") or "")).strip("-.")[:96] or "custom"
    ds: dict[str, Any] = {"name": _one_line(label, 160), "type": slug, "split": split}
    if sha:
        ds["args"] = {"sha256": _one_line(sha, 80), "rows": info.get("rows")}
    return ds


def _hub_metric(r: dict[str, Any]) -> dict[str, Any]:
    """model-index ``metrics`` entry. The Hub has no slot for an interval: the display name carries it
    as text and ``args`` as numbers (ci_low, ci_high, confidence, n)."""
    raw = r["raw"]
    ci = raw.get("ci")
    name = f"{r['check']} {r['metric']}"
    args: dict[str, Any] = {}
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        name += f" (95% CI {fmt_num(ci[0])}–{fmt_num(ci[1])}" + (
            f", n={fmt_num(raw['n'])})" if raw.get("n") else ")"
        )
        args = {"ci_low": float(ci[0]), "ci_high": float(ci[1]), "confidence": 0.95}
    if isinstance(raw.get("n"), int) and not isinstance(raw.get("n"), bool):
        args["n"] = raw["n"]
    m: dict[str, Any] = {"type": _one_line(r["metric"], 60), "value": float(raw["value"]),
                         "name": _one_line(name, 160), "verified": False}  # fmt: skip
    if args:
        m["args"] = args
    return m


def front_matter(results: dict[str, Any]) -> dict[str, Any]:
    card = _card(results)
    task_type, task_name = _task(results)
    headline = _rows(results, HEADLINE_AREAS)[:MAX_HEADLINE]
    subject = results.get("subject") or {}
    datasets = sorted((subject.get("datasets") or {}).keys())
    eval_split = "test" if "test" in datasets else (datasets[0] if datasets else "test")
    fm: dict[str, Any] = {}
    if card.get("license"):
        fm["license"] = _one_line(card["license"], 80).lower()
    fm["library_name"] = "pytorch"
    fm["tags"] = [
        "auditkit",
        task_type,
        f"audit-gate-{'pass' if (results.get('gate') or {}).get('decision') == 'pass' else 'fail'}",
    ]
    if headline:
        fm["metrics"] = sorted({_one_line(r["metric"], 60) for r in headline})
    if headline:  # a model-index without metrics says nothing and the Hub's parser drops it
        fm["model-index"] = [{
            "name": _one_line(_model_name(results), 120),
            "results": [{
                "task": {"type": task_type, "name": task_name},
                "dataset": _hub_dataset(subject, eval_split),
                "metrics": [_hub_metric(r) for r in headline],
            }],
        }]  # fmt: skip
    co2 = _rows(results, ("training",), r"co2")
    if co2:
        fm["co2_eq_emissions"] = {
            "emissions": float(co2[0]["raw"]["value"]),
            "source": f"auditkit {co2[0]['check']}",
        }
    return fm


def markdown(results: dict[str, Any]) -> str:
    from auditkit.render.common import jinja_env

    card = _card(results)
    subject = results.get("subject") or {}
    gate = results.get("gate") or {}
    spec = results.get("spec") or {}
    training = spec.get("training") or {}
    counts: dict[str, int] = {}
    for rec in results.get("checks") or []:
        if not deselected(rec):
            counts[rec.get("status", "?")] = counts.get(rec.get("status", "?"), 0) + 1
    owners = [
        _one_line(o.get("name") if isinstance(o, dict) else o)
        + (f" ({_one_line(o.get('contact'))})" if isinstance(o, dict) and o.get("contact") else "")
        for o in card.get("owners") or []
    ]
    model = subject.get("model") or {}
    m = {
        "name": _one_line(_model_name(results), 200),
        "overview": cut(card.get("overview") or subject.get("description") or "", 2000),
        "tool_version": _one_line((results.get("tool") or {}).get("version")),
        "report_id": _one_line((results.get("run") or {}).get("id")),
        "date": document_date(results).strftime("%Y-%m-%d"),
        "version": _one_line(card.get("version") or "not stated"),
        "owners": owners or ["not stated"],
        "license": _one_line(card.get("license") or "not stated"),
        "task": _one_line(task_text(results), 600),
        "model_sha": _one_line(model.get("sha256") or "not recorded", 80) if isinstance(model, dict) else "not recorded",
        "datasets": [{"name": _one_line(k, 60), "rows": fmt_num(v.get("rows")), "sha256": _one_line(v.get("sha256"), 80)}
                     for k, v in sorted((subject.get("datasets") or {}).items()) if isinstance(v, dict)],
        "intended_use": cut(card.get("intended_use") or "", 3000),
        "users": ", ".join(_one_line(u) for u in card.get("users") or []),
        "out_of_scope": cut(card.get("out_of_scope") or "", 3000),
        "limitations": cut(card.get("limitations") or "", 3000),
        "ethical": cut(card.get("ethical_considerations") or "", 3000),
        "tradeoffs": cut(card.get("tradeoffs") or "", 3000),
        "fairness": [r for r in _rows(results, ("evaluation",)) if r["check"] in _fairness_checks(results)],
        "training": [(k, json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else str(v))
                     for k, v in sorted(training.items()) if v not in (None, [], {})] if isinstance(training, dict) else [],
        "training_metrics": _rows(results, ("training",))[:30],
        "metrics": _rows(results, HEADLINE_AREAS)[:MAX_HEADLINE],
        "energy": [r for r in _rows(results, ("training",)) if re.search(r"co2|energy|kwh|joule|flop", r["metric"], re.I)],
        "gate": {"decision": "pass" if gate.get("decision") == "pass" else "fail", "exit_code": gate.get("exit_code"),
                 "fail_on": _one_line(gate.get("fail_on")), "reason": _one_line(gate.get("reason"), 500),
                 "recommendation": "go" if gate.get("recommendation") == "go" else "no-go"},
        "status_counts": dict(sorted(counts.items())),
        "citation": cut(card.get("citation") or "", 2000),
        "references": [cut(str(r), 500) for r in card.get("references") or []][:20],
    }  # fmt: skip
    fm = yaml.safe_dump(front_matter(results), sort_keys=False, allow_unicode=True, width=10**6)
    env = jinja_env().overlay(finalize=_md_shown)
    env.filters["cell"] = _cell
    from markupsafe import Markup

    # The front matter is YAML produced by yaml.safe_dump from one-line strings (no markup context).
    return env.get_template("model_card.md.j2").render(m=m, front_matter=Markup(fm))


def _md_shown(value: Any) -> Any:
    """Markdown ``finalize``: plain text is shown as text (``markdown_text``), HTML-escaped by
    autoescape afterwards; Markup (table cells, the YAML front matter) only gets ``inert``."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return Markup(inert(str(value)))
    if isinstance(value, str):
        return markdown_text(value)
    return value


def _cell(value: Any) -> Any:
    """A Markdown table cell: one line of text, Markdown punctuation and pipes escaped, then HTML."""
    from markupsafe import Markup, escape

    html = value if isinstance(value, Markup) else escape(str(value if value is not None else ""))
    return Markup(markdown_text(re.sub(r"\s+", " ", str(html)), multiline=False))


def mct(results: dict[str, Any]) -> dict[str, Any]:
    """The Model Card Toolkit v0.0.2 document (metric values and bounds are strings, per the schema)."""
    card = _card(results)
    subject = results.get("subject") or {}
    doc_date = document_date(results).date().isoformat()
    details: dict[str, Any] = {
        "name": _model_name(results),
        "overview": str(card.get("overview") or subject.get("description") or f"Audited by auditkit (report {(results.get('run') or {}).get('id')})."),
        "owners": [{"name": str(o.get("name") or ""), "contact": str(o.get("contact") or "")}
                   for o in card.get("owners") or [] if isinstance(o, dict)],
        "version": {"name": str(card.get("version") or "unversioned"), "date": doc_date},
        "references": [{"reference": str(r)} for r in card.get("references") or [] if _URI.match(str(r))],
        "documentation": "See report.pdf and results.json in the auditkit evidence bundle.",
    }  # fmt: skip
    if card.get("license"):
        details["licenses"] = [{"identifier": str(card["license"])}]
    # MCT references are URIs; a reference written as text (a paper) is kept as a citation instead.
    citations = [str(card["citation"])] if card.get("citation") else []
    citations += [str(r) for r in card.get("references") or [] if not _URI.match(str(r))]
    if citations:
        details["citations"] = [{"style": "text", "citation": c} for c in citations]
    model = subject.get("model") or {}
    if isinstance(model, dict) and model.get("path"):
        details["path"] = str(model["path"])
    perf = []
    for r in _rows(results, HEADLINE_AREAS + ("training",)):
        pm: dict[str, Any] = {"type": f"{r['check']} {r['metric']}", "value": repr(float(r["raw"]["value"]))}
        ci = r["raw"].get("ci")
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            pm["confidence_interval"] = {"lower_bound": repr(float(ci[0])), "upper_bound": repr(float(ci[1]))}
        perf.append(pm)
    datasets: list[dict[str, Any]] = [
        {
            "name": str(k),
            "description": f"{v.get('rows')} rows, {v.get('features')} features; sha256 {v.get('sha256')}",
        }
        for k, v in sorted((subject.get("datasets") or {}).items())
        if isinstance(v, dict)
    ]
    sensitive = ((results.get("spec") or {}).get("data") or {}).get("sensitive") or []
    if sensitive:
        for d in datasets:
            d["sensitive"] = {"sensitive_data": [str(s) for s in sensitive]}
    considerations: dict[str, Any] = {}
    if card.get("users"):
        considerations["users"] = [{"description": str(u)} for u in card["users"]]
    if card.get("intended_use"):
        considerations["use_cases"] = [{"description": str(card["intended_use"])}]
    if card.get("limitations") or card.get("out_of_scope"):
        considerations["limitations"] = [
            {"description": str(x)}
            for x in (
                card.get("limitations"),
                card.get("out_of_scope") and f"Out of scope: {card['out_of_scope']}",
            )
            if x
        ]
    if card.get("tradeoffs"):
        considerations["tradeoffs"] = [{"description": str(card["tradeoffs"])}]
    if card.get("ethical_considerations"):
        considerations["ethical_considerations"] = [
            {"name": str(card["ethical_considerations"]), "mitigation_strategy": "see the audit report"}
        ]
    task_type, _ = _task(results)
    doc: dict[str, Any] = {
        "schema_version": "0.0.2",
        "model_details": details,
        "model_parameters": {"data": datasets, "input_format": task_type.split("-")[0]},
        "quantitative_analysis": {"performance_metrics": perf},
        "considerations": considerations,
    }
    return doc


def render(
    results: dict[str, Any], out_dir: Path, *, attachments: dict[str, bytes] | None = None
) -> list[Path]:
    import jsonschema

    doc = mct(results)
    jsonschema.validate(doc, mct_schema())  # never ship a card that does not validate
    out_dir = Path(out_dir)
    md = out_dir / MD_FILE
    js = out_dir / JSON_FILE
    md.write_text(markdown(results), encoding="utf-8")
    js.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return [md, js]
