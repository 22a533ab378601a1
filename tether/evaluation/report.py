"""What an evaluation found, summed up per variant, and written as a terminal table, JSON and a
self-contained HTML page."""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from policies.eval_stats import PairedDifference, cohen_kappa, paired_bootstrap
from tether.evaluation.runner import CaseResult


def case_score(result: CaseResult, metric: str) -> float:
    """The per-example figure two variants are compared on (0 for a failed call)."""
    if metric == "judge":
        return result.judge.score if result.judge is not None else 0.0
    if metric == "exact":
        return 1.0 if result.exact else 0.0
    accuracy = result.field_accuracy
    return accuracy if accuracy is not None else 0.0


@dataclass
class VariantSummary:
    variant: str
    examples: int
    valid: int
    failed: int
    exact_rate: float | None
    field_accuracy: dict[str, float]
    judge_pass_rate: float | None
    judge_mean_score: float | None
    cost_usd: float


@dataclass
class EvalReport:
    workflow: str
    step: str
    dataset: str
    metric: str
    rubric: str
    variants: list[VariantSummary]
    kappa: float | None
    kappa_examples: int
    comparison: PairedDifference | None
    results: list[CaseResult]
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, object]:
        return {
            "workflow": self.workflow,
            "step": self.step,
            "dataset": self.dataset,
            "metric": self.metric,
            "rubric": self.rubric,
            "made_at": self.made_at,
            "variants": [asdict(v) for v in self.variants],
            "judge_human_agreement": {"kappa": self.kappa, "examples": self.kappa_examples},
            "comparison": asdict(self.comparison) if self.comparison else None,
            "results": [r.model_dump(mode="json") for r in self.results],
        }


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def summarise(results: list[CaseResult], name: str) -> VariantSummary:
    mine = [r for r in results if r.variant == name]
    fields: dict[str, list[bool]] = defaultdict(list)
    for r in mine:
        for key, ok in r.fields.items():
            fields[key].append(ok)
    judged = [r.judge for r in mine if r.judge is not None]
    return VariantSummary(
        variant=name,
        examples=len(mine),
        valid=sum(r.status == "valid" for r in mine),
        failed=sum(r.status in ("error", "refused") for r in mine),
        exact_rate=_rate([r.exact for r in mine if r.exact is not None]),
        field_accuracy={k: sum(v) / len(v) for k, v in sorted(fields.items())},
        judge_pass_rate=_rate([j.verdict == "pass" for j in judged]),
        judge_mean_score=sum(j.score for j in judged) / len(judged) if judged else None,
        cost_usd=round(sum(r.cost_usd for r in mine), 8),
    )


def build_report(
    *,
    workflow: str,
    step: str,
    dataset: str,
    metric: str,
    rubric: str,
    variant_names: list[str],
    results: list[CaseResult],
) -> EvalReport:
    baseline = [r for r in results if r.variant == variant_names[0]]
    labelled = [
        (r.judge_of_labelled.verdict == "pass", r.human_says_right)
        for r in baseline
        if r.judge_of_labelled is not None and r.human_says_right is not None
    ]
    kappa = cohen_kappa([j for j, _ in labelled], [h for _, h in labelled]) if labelled else None
    comparison = None
    if len(variant_names) == 2:
        by_case = {r.case_id: r for r in results if r.variant == variant_names[1]}
        pairs = [(case_score(r, metric), case_score(by_case[r.case_id], metric)) for r in baseline]
        comparison = paired_bootstrap([a for a, _ in pairs], [b for _, b in pairs])
    return EvalReport(
        workflow=workflow,
        step=step,
        dataset=dataset,
        metric=metric,
        rubric=rubric,
        variants=[summarise(results, name) for name in variant_names],
        kappa=kappa,
        kappa_examples=len(labelled),
        comparison=comparison,
        results=results,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def table_rows(report: EvalReport) -> list[list[str]]:
    fields = sorted({k for v in report.variants for k in v.field_accuracy})
    header = ["variant", "n", "valid", "failed", "exact", *[f"field {f}" for f in fields]]
    header += ["judge pass", "judge score", "cost USD"]
    rows = [header]
    for v in report.variants:
        rows.append(
            [v.variant, str(v.examples), str(v.valid), str(v.failed), _pct(v.exact_rate)]
            + [_pct(v.field_accuracy.get(f)) for f in fields]
            + [
                _pct(v.judge_pass_rate),
                "-" if v.judge_mean_score is None else f"{v.judge_mean_score:.3f}",
                f"{v.cost_usd:.6f}",
            ]
        )
    return rows


def findings(report: EvalReport) -> list[str]:
    lines = []
    if report.kappa_examples:
        kappa = "undefined (one label only)" if report.kappa is None else f"{report.kappa:.3f}"
        lines.append(
            f"judge-human agreement (Cohen's kappa) on {report.kappa_examples} "
            f"reviewed examples: {kappa}"
        )
    if report.comparison is not None:
        c = report.comparison
        base, other = report.variants[0].variant, report.variants[1].variant
        verdict = (
            "better"
            if c.low > 0
            else "worse"
            if c.high < 0
            else "no clear difference (interval spans 0)"
        )
        lines.append(
            f"{other} - {base} on {report.metric}: {c.mean:+.3f}, 95% CI [{c.low:+.3f}, "
            f"{c.high:+.3f}] (paired bootstrap, {c.resamples} resamples, fixed seed, "
            f"n={c.n}): {verdict}"
        )
    return lines


def terminal_table(report: EvalReport) -> str:
    rows = table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = [f"{report.workflow}.{report.step} on {report.dataset}"]
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out + findings(report))


def html_page(report: EvalReport) -> str:
    """One file, no external assets: inline CSS, every value escaped."""
    esc = html.escape
    rows = table_rows(report)
    head = "".join(f"<th>{esc(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    cases = "".join(
        "<tr>"
        + "".join(
            f"<td>{esc(str(c))}</td>"
            for c in (
                r.case_id,
                r.variant,
                r.status,
                "-" if r.exact is None else ("yes" if r.exact else "no"),
                "-" if r.judge is None else f"{r.judge.verdict} {r.judge.score:.2f}",
                "-" if r.judge is None else r.judge.reason,
                json.dumps(r.output, ensure_ascii=False)[:400],
                r.error or "",
            )
        )
        + "</tr>"
        for r in report.results
    )
    notes = "".join(f"<p>{esc(line)}</p>" for line in findings(report))
    title = esc(f"Tether eval: {report.workflow}.{report.step}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}}
th,td{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}}
th{{background:#f3f3f3}} td{{max-width:40rem;overflow-wrap:anywhere}}
</style></head><body>
<h1>{title}</h1>
<p>Dataset {esc(report.dataset)} &middot; made {esc(report.made_at)} &middot;
compared on {esc(report.metric)}</p>
<p>Rubric: {esc(report.rubric)}</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{notes}
<h2>Examples</h2>
<table><thead><tr><th>example</th><th>variant</th><th>status</th><th>exact</th>
<th>judge</th><th>judge reason</th><th>output</th><th>error</th></tr></thead>
<tbody>{cases}</tbody></table>
</body></html>
"""


def write_report(report: EvalReport, out_dir: Path) -> tuple[Path, Path]:
    """Write the JSON and HTML reports into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"eval-{report.workflow}.{report.step}-{report.made_at.replace(':', '')[:17]}"
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    json_path.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    html_path.write_text(html_page(report), encoding="utf-8")
    return json_path, html_path
