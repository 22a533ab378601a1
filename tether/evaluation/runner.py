"""Running a step over a dataset through the real provider path, and judging what it says.

Each call goes through the same activity a workflow runs (cost checkpoint, guarded model call,
validation, repairs, scoring), in an ``ActivityEnvironment``: it is charged to the ledger like
any call, under the tenant ``eval`` and a run id starting ``eval:`` so spend reports show it
apart, and it is never sampled into the review queue.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from temporalio.testing import ActivityEnvironment

from activities.deps import ActivityDeps
from activities.llm_step import LlmStepActivities
from activities.llm_step.audit_sample import EVAL_RUN_PREFIX
from activities.providers.http import create_http_client
from activities.providers.registry import ProviderRegistry
from policies.models import TetherPolicy
from tether.contracts import (
    CheckedStepInput,
    CheckpointInput,
    LlmStepInput,
    LlmStepResult,
    PromptTemplate,
)
from tether.core.settings import Settings
from tether.evaluation.dataset import EvalCase
from tether.evaluation.judging import (
    JUDGE_OUTPUT_MODEL,
    EvalVerdict,
    judge_prompt,
    judge_variables,
)
from tether.evaluation.scoring import exact_match, field_matches
from tether.store.audit_key import configure_audit
from workflows.steps import LlmStep

EVAL_TENANT = "eval"


@dataclass(frozen=True)
class Variant:
    """What is being evaluated: the step's prompt (or another version) on a model (or routing)."""

    name: str
    prompt: PromptTemplate
    model: str | None = None


class CaseResult(BaseModel):
    case_id: str
    variant: str
    status: str
    """valid, invalid_output, refused (over budget) or error."""
    output: dict[str, Any] | None = None
    error: str | None = None
    model: str | None = None
    exact: bool | None = None
    fields: dict[str, bool] = {}
    judge: EvalVerdict | None = None
    judge_of_labelled: EvalVerdict | None = None
    """The judge's verdict on the output the human labelled (for agreement)."""
    human_says_right: bool | None = None
    cost_usd: float = 0.0
    latency_ms: float = 0.0

    @property
    def field_accuracy(self) -> float | None:
        return sum(self.fields.values()) / len(self.fields) if self.fields else None


class StepEvaluator:
    """Runs one step of one workflow on cases; ``close`` when done."""

    def __init__(
        self,
        settings: Settings,
        policy: TetherPolicy,
        workflow: str,
        step: LlmStep[Any],
        *,
        judge: bool = True,
    ) -> None:
        self._http = create_http_client(settings)
        configure_audit(settings)
        deps = ActivityDeps(settings, policy, ProviderRegistry(settings, self._http))
        self._activities = LlmStepActivities(deps)
        self._env = ActivityEnvironment()
        self.workflow, self.step, self.judge_on = workflow, step, judge
        resolved = policy.eval.for_step(workflow, step.name)
        self.rubric = resolved.rubric
        self._judge_prompt = judge_prompt(resolved.rubric)
        self._judge_model = resolved.judge_model
        self.batch = uuid.uuid4().hex[:10]

    async def close(self) -> None:
        await self._http.aclose()

    async def run(
        self,
        cases: list[EvalCase],
        variants: list[Variant],
        *,
        concurrency: int = 4,
        progress: Callable[[], None] = lambda: None,
    ) -> list[CaseResult]:
        """Every case on every variant; a failed call is a result too (nothing is dropped)."""
        gate = asyncio.Semaphore(concurrency)

        async def one(n: int, case: EvalCase, variant: Variant) -> CaseResult:
            async with gate:
                result = await self._case(n, case, variant)
            progress()
            return result

        work = [one(n, c, v) for v in variants for n, c in enumerate(cases)]
        return list(await asyncio.gather(*work))

    async def _case(self, n: int, case: EvalCase, variant: Variant) -> CaseResult:
        key = f"{EVAL_RUN_PREFIX}{self.batch}:{variant.name}:{n}"
        started = time.perf_counter()
        variables = {k: v for k, v in case.input.items() if not k.startswith("ref:")}
        refs = {k.removeprefix("ref:"): v for k, v in case.input.items() if k.startswith("ref:")}
        try:
            called = await self._call(
                key, self.step.name, variant.prompt, variables, refs, self.step.output_path,
                variant.model, self.step.tier, self.step.max_output_tokens,
            )  # fmt: skip
        except Exception as exc:  # a failed call is reported, never dropped
            return CaseResult(
                case_id=case.id, variant=variant.name, status="error",
                error=str(exc)[:300], human_says_right=case.human_says_right,
            )  # fmt: skip
        if called is None:
            return CaseResult(
                case_id=case.id, variant=variant.name, status="refused",
                error="the cost checkpoint refused the spend", human_says_right=case.human_says_right,
            )  # fmt: skip
        cost = called.cost_usd
        result = CaseResult(
            case_id=case.id,
            variant=variant.name,
            status=called.status,
            output=called.output,
            error=called.validation_error,
            model=called.model,
            human_says_right=case.human_says_right,
        )
        if case.expected is not None:
            result.exact = exact_match(called.output, case.expected)
            result.fields = field_matches(called.output, case.expected)
        if self.judge_on:
            result.judge, judge_cost = await self._judge(f"{key}:j", case, called.output)
            cost += judge_cost
            if case.judged_output is not None and case.human_label is not None:
                result.judge_of_labelled, judge_cost = await self._judge(
                    f"{key}:jl", case, case.judged_output
                )
                cost += judge_cost
        result.cost_usd = round(cost, 8)
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    async def _judge(
        self, key: str, case: EvalCase, output: dict[str, Any] | None
    ) -> tuple[EvalVerdict | None, float]:
        if output is None:
            return EvalVerdict(verdict="fail", score=0.0, reason="no valid output"), 0.0
        try:
            called = await self._call(
                key, f"{self.step.name}.judge", self._judge_prompt,
                judge_variables(case.input, output, case.expected), {}, JUDGE_OUTPUT_MODEL,
                self._judge_model, "strong", 300,
            )  # fmt: skip
        except Exception:
            return None, 0.0
        if called is None or called.output is None:
            return None, called.cost_usd if called else 0.0
        return EvalVerdict.model_validate(called.output), called.cost_usd

    async def _call(
        self,
        key: str,
        step_name: str,
        prompt: PromptTemplate,
        variables: dict[str, str],
        refs: dict[str, str],
        output_model: str,
        model: str | None,
        tier: Any,
        max_output_tokens: int,
    ) -> LlmStepResult | None:
        input_chars = sum(len(v) for v in variables.values()) + len(prompt.system + prompt.user)
        checked = await self._env.run(
            self._activities.checked_llm_step,
            CheckedStepInput(
                checkpoint=CheckpointInput(
                    run_id=key,
                    workflow=self.workflow,
                    step=step_name,
                    tenant=EVAL_TENANT,
                    tier=tier,
                    model=model,
                    input_chars=input_chars,
                    max_output_tokens=max_output_tokens,
                    reservation_key=key,
                ),
                step=LlmStepInput(
                    run_id=key,
                    workflow=self.workflow,
                    step=step_name,
                    tenant=EVAL_TENANT,
                    prompt=prompt,
                    variables=variables,
                    text_refs=refs,
                    output_model=output_model,
                    tier=tier,
                    idempotency_key=key,
                    max_output_tokens=max_output_tokens,
                    # An evaluation measures the model: never an answer from the step cache
                    # (a variant's answers would otherwise come back as the baseline's).
                    side_effecting=True,
                ),
            ),
        )
        return checked.step
