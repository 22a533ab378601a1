"""``tether eval`` and ``tether calibrate``: the work behind the two commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from policies.eval_stats import Calibration
from policies.loader import load_policy
from tether.core.errors import InputError
from tether.core.settings import Settings
from tether.evaluation.dataset import EvalCase, cases_from_reviews, load_jsonl
from tether.evaluation.progress import ProgressBar
from tether.evaluation.report import EvalReport, build_report, write_report
from tether.evaluation.runner import StepEvaluator, Variant
from tether.evaluation.steps import find_step, prompt_variant
from tether.store.engine import session_scope
from tether.store.examples import calibration_report
from workflows.steps import LlmStep

Metric = Literal["judge", "fields", "exact"]


@dataclass(frozen=True)
class EvalRequest:
    workflow: str
    step: str
    dataset: str
    """A JSONL path, or ``reviews`` for the step's labelled examples."""
    variant: str | None = None
    """``prompt=VERSION|FILE.json`` and/or ``model=provider/model``, comma-separated."""
    judge: bool = True
    metric: Metric | None = None
    out_dir: Path = Path("eval-reports")
    concurrency: int = 4
    limit: int | None = None


def parse_variant(workflow: str, step: LlmStep[Any], baseline: Variant, spec: str) -> Variant:
    prompt, model = baseline.prompt, baseline.model
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise InputError(f"--variant {spec!r}: expected prompt=VERSION or model=PROVIDER/MODEL")
        if key == "prompt":
            prompt = prompt_variant(workflow, step, value)
        elif key == "model":
            model = value
        else:
            raise InputError(f"--variant {spec!r}: unknown key {key!r} (prompt or model)")
    return Variant(name=spec, prompt=prompt, model=model)


def load_cases(settings: Settings, request: EvalRequest) -> list[EvalCase]:
    if request.dataset == "reviews":
        return cases_from_reviews(
            settings.resolved_database_url, request.workflow, request.step, request.limit
        )
    cases = load_jsonl(Path(request.dataset))
    return cases[: request.limit] if request.limit else cases


async def evaluate(settings: Settings, request: EvalRequest) -> tuple[EvalReport, Path, Path]:
    """Run the step over the dataset (and the variant), score, judge, and write the reports."""
    step = find_step(request.workflow, request.step)
    cases = load_cases(settings, request)  # every bad line is reported before anything runs
    policy = load_policy(settings.policy_file)
    baseline = Variant(name=f"{step.name}@{step.prompt.version}", prompt=step.prompt)
    variants = [baseline]
    if request.variant:
        variants.append(parse_variant(request.workflow, step, baseline, request.variant))
    metric: Metric = request.metric or ("judge" if request.judge else "fields")
    evaluator = StepEvaluator(settings, policy, request.workflow, step, judge=request.judge)
    bar = ProgressBar(len(cases) * len(variants), f"eval {request.workflow}.{request.step}")
    try:
        results = await evaluator.run(
            cases, variants, concurrency=request.concurrency, progress=bar.tick
        )
    finally:
        await evaluator.close()
    report = build_report(
        workflow=request.workflow,
        step=request.step,
        dataset=request.dataset,
        metric=metric,
        rubric=evaluator.rubric if request.judge else "",
        variant_names=[v.name for v in variants],
        results=results,
    )
    json_path, html_path = write_report(report, request.out_dir)
    return report, json_path, html_path


def calibration_for(
    settings: Settings, workflow: str, step: str, target: float | None, min_support: int
) -> Calibration:
    find_step(workflow, step)
    policy = load_policy(settings.policy_file)
    settings_of_step = policy.eval.for_step(workflow, step)
    with session_scope(settings.resolved_database_url) as session:
        return calibration_report(
            session,
            workflow,
            step,
            target_precision=target or settings_of_step.target_precision,
            min_support=min_support,
            audit_sample_rate=settings_of_step.audit_sample_rate,
        )


def calibration_table(workflow: str, step: str, report: Calibration) -> str:
    lines = [
        f"{workflow}.{step}: {report.labelled} labelled outputs (reviews and audits)",
        "threshold  accepted  correct  precision",
    ]
    for row in report.thresholds:
        if row.accepted == 0:
            continue
        precision = f"{row.precision * 100:.1f}%" if row.precision is not None else "-"
        lines.append(f"{row.threshold:>9.2f}  {row.accepted:>8}  {row.correct:>7}  {precision:>9}")
    target = f"{report.target_precision * 100:.0f}%"
    if report.suggested_threshold is None:
        lines.append(f"no threshold reaches {target} precision on enough outputs yet")
    else:
        lines.append(
            f"suggested accept threshold for {target} precision: {report.suggested_threshold:.2f}"
        )
    return "\n".join(lines)
