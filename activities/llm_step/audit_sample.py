"""Calibration audits: a share of a step's auto-accepted outputs goes to the review queue.

Sampled here, in the activity that scored the output, and never in the workflow: the run does
not wait for (or even learn of) an audit, so no workflow command changes. The choice is a hash
of the run and the step's key (``audit_sampled``), so a retried activity makes the same choice
and writes the same item once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import sha256

from activities.deps import ActivityDeps
from activities.llm_step.prompting import output_schema, resolve_output_model
from policies.effective import effective_for
from tether.contracts import LlmStepInput, LlmStepResult
from tether.store.audit_samples import AUDIT_SAMPLE, audit_sampled, open_audit_sample
from tether.store.reviews import ReviewItem

EVAL_RUN_PREFIX = "eval:"
"""Run ids of ``tether eval`` calls: charged like any call, never audited."""


async def sample_for_audit(
    deps: ActivityDeps, inp: LlmStepInput, result: LlmStepResult, *, cache_entry: int | None = None
) -> bool:
    """Queue ``result`` for an audit when it was auto-accepted and the policy's share picks it.
    An answer served from the cache (``cache_entry``) is audited once however many runs reuse
    it: a second sample of it opens nothing. Returns True when the step was sampled."""
    if result.status != "valid" or result.output is None or result.confidence.outcome != "accept":
        return False
    if inp.run_id.startswith(EVAL_RUN_PREFIX):
        return False
    rate = deps.policy.eval.for_step(inp.workflow, inp.step).audit_sample_rate
    if not audit_sampled(inp.run_id, inp.idempotency_key, rate):
        return False
    review = effective_for(deps.policy, inp.workflow).review
    now = datetime.now(UTC)
    step_input = dict(inp.variables) | {f"ref:{k}": v for k, v in inp.text_refs.items()}
    item = ReviewItem(
        # Unique per step execution (its key), with no "/" so it fits in a URL path.
        review_id=(
            f"{inp.run_id}:{inp.step}:audit-{sha256(inp.idempotency_key.encode()).hexdigest()[:16]}"
            if cache_entry is None
            else f"cache-entry-{cache_entry}:audit"
        ),
        run_id=inp.run_id,
        workflow=inp.workflow,
        step=inp.step,
        tenant=inp.tenant,
        requester=None,
        reason=AUDIT_SAMPLE,
        summary=f"{inp.step}: audit of an auto-accepted output (confidence "
        f"{result.confidence.score:.2f}); the run did not wait",
        input_preview={k: v[:2000] for k, v in inp.variables.items()},
        output=result.output,
        raw_output=result.raw_output,
        output_schema=output_schema(resolve_output_model(inp.output_model)),
        output_model=inp.output_model,
        output_digest=result.output_digest,
        confidence=result.confidence.model_dump(mode="json"),
        confidence_score=result.confidence.score,
        cost_usd=result.cost_usd,
        allowed_roles=list(review.roles),
        opened_at=now,
        due_at=now + review.expires_after,
        expires_at=now + review.expires_after,
        prompt_version=inp.prompt.version,
        model=result.model,
        step_input=step_input,
    )
    await deps.in_session(lambda session: open_audit_sample(session, item))
    return True
