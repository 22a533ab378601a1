"""support_triage's three steps called directly in one process, without Temporal: the baseline
that orchestration overhead is measured against."""

from __future__ import annotations

import time
from string import Formatter
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.checkpoint import CheckpointActivities
from activities.deps import ActivityDeps
from activities.llm_step import LlmStepActivities
from activities.providers.http import create_http_client
from activities.providers.registry import ProviderRegistry
from policies.loader import load_policy
from tether.contracts import CheckpointInput, LlmStepInput, LlmStepResult
from tether.core.settings import Settings
from tether.store.audit_key import configure_audit
from workflows.steps import LlmStep
from workflows.support_triage_steps import CLASSIFY, DRAFT_REPLY, EXTRACT, Ticket

WORKFLOW = "support_triage"


class DirectSteps:
    """The cost checkpoint and LLM step activities of each step, called as the workflow calls
    them, in an ``ActivityEnvironment`` (which gives them ``activity.info()`` and heartbeats).

    Args:
        settings: The same settings the worker gets (store, policy file, simulated provider).
    """

    def __init__(self, settings: Settings) -> None:
        self._http = create_http_client(settings)
        policy = load_policy(settings.policy_file)
        configure_audit(settings)
        deps = ActivityDeps(settings, policy, ProviderRegistry(settings, self._http))
        self._checkpoint = CheckpointActivities(deps).cost_checkpoint
        self._llm = LlmStepActivities(deps).llm_step
        self._env = ActivityEnvironment()

    async def run(self, run_id: str, t: Ticket) -> float:
        """Run classify, extract and draft_reply on ``t``; return the seconds taken."""
        text = {"subject": t.subject, "body": t.body}
        started = time.perf_counter()
        classified = await self._step(run_id, t, CLASSIFY, text)
        facts = await self._step(run_id, t, EXTRACT, text)
        known = text | {k: str(v) for k, v in (classified.output or {}).items()}
        known["asks"] = "; ".join((facts.output or {}).get("customer_asks") or []) or "(not stated)"
        # Only the variables the template names, as the workflow passes them.
        wanted = {name for _, name, _, _ in Formatter().parse(DRAFT_REPLY.prompt.user) if name}
        await self._step(run_id, t, DRAFT_REPLY, {k: v for k, v in known.items() if k in wanted})
        return time.perf_counter() - started

    async def close(self) -> None:
        await self._http.aclose()

    async def _step(
        self, run_id: str, t: Ticket, step: LlmStep[Any], variables: dict[str, str]
    ) -> LlmStepResult:
        key = f"{run_id}/{step.name}/1"
        input_chars = sum(len(v) for v in variables.values())
        input_chars += len(step.prompt.system) + len(step.prompt.user)
        checkpoint = await self._env.run(
            self._checkpoint,
            CheckpointInput(
                run_id=run_id,
                workflow=WORKFLOW,
                step=step.name,
                tenant=t.tenant or "default",
                end_user=t.customer_id,
                tier=step.tier,
                input_chars=input_chars,
                max_output_tokens=step.max_output_tokens,
                reservation_key=key,
            ),
        )
        return await self._env.run(
            self._llm,
            LlmStepInput(
                run_id=run_id,
                workflow=WORKFLOW,
                step=step.name,
                tenant=t.tenant or "default",
                end_user=t.customer_id,
                prompt=step.prompt,
                variables=variables,
                output_model=step.output_path,
                tier=step.tier,
                model=checkpoint.route[0],
                idempotency_key=f"{key}/m0",
                max_output_tokens=step.max_output_tokens,
                reservation_key=checkpoint.reservation_key,
            ),
        )
