"""The rate-limit part of a step's checkpoint: the user's, tenant's and provider's windows.

Checked before the cost checkpoint and counted in the same transaction once the cost is held,
so a step refused on budget counts no request, and a step over a limit holds no budget. The
workflow acts on what comes back (``RateLimited``): it waits on a timer, ends the run, or asks
a reviewer; guard logic never runs in workflow code.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from activities.checkpoint import judge_model_for
from activities.deps import ActivityDeps
from activities.llm_step.call_log import hold_for_attempt
from activities.run_events import step_waiting
from policies.effective import effective_for, step_confidence
from policies.limits import LimitBreach, first_breach
from policies.pricing import estimate_tokens
from tether.contracts import (
    CheckedStepInput,
    CheckpointInput,
    CheckpointResult,
    LlmStepResult,
    RateLimited,
)
from tether.store.audit import append_event
from tether.store.limits import (
    LimitSubject,
    charge_windows,
    is_charged,
    lock_windows,
    settle_charge,
)
from tether.store.step_events import record_step_event

__all__ = ["hold_within_limits", "limit_keys", "limit_subjects", "settle_limits", "step_tokens"]

RESET_MARGIN_S = 0.25
"""Waits end this long after the window does, so the asking again lands in the next window."""


def limit_subjects(deps: ActivityDeps, inp: CheckpointInput, model: str) -> list[LimitSubject]:
    """Every scope a step on ``model`` counts against: its user, its tenant, its provider."""
    top = deps.policy.limits
    if not top.enabled:
        return []
    limits = effective_for(deps.policy, inp.workflow).limits
    subjects: list[LimitSubject] = []
    if limits.enabled and inp.end_user and limits.per_user:
        parts = (inp.tenant, inp.end_user)
        subjects.append(LimitSubject("user", inp.end_user, limits.per_user, parts))
    if limits.enabled and limits.per_tenant:
        subjects.append(LimitSubject("tenant", inp.tenant, limits.per_tenant, (inp.tenant,)))
    provider = _provider(model)
    cap = top.providers.get(provider)
    window = cap.window() if cap is not None else None
    if window is not None:
        subjects.append(LimitSubject("provider", provider, [window], (provider,)))
    return subjects


def planned_calls(deps: ActivityDeps, inp: CheckpointInput, model: str) -> int:
    """The calls a step makes to ``model``'s provider when all goes well: its samples, and
    the judge when the judge's model is on the same provider (repairs are settled after)."""
    confidence = step_confidence(deps.policy, inp.workflow, inp.step)
    judge = confidence.judge and _provider(judge_model_for(deps)) == _provider(model)
    return confidence.samples + (1 if judge else 0)


def _provider(model: str) -> str:
    return model.split("/", 1)[0]


def step_tokens(inp: CheckpointInput) -> int:
    """The tokens a step is counted for at its checkpoint: its input and its longest answer."""
    return estimate_tokens(inp.input_chars) + inp.max_output_tokens


def hold_within_limits(
    deps: ActivityDeps, session: Session, inp: CheckedStepInput, model: str, attempt: int
) -> tuple[CheckpointResult | None, RateLimited | None]:
    """The step's rate limits, then its cost checkpoint, in one transaction.

    Returns ``(None, limited)`` when a window is full (nothing counted, nothing held), else the
    checkpoint; a checkpoint that held the cost counts the step against every window. The user
    and tenant count a step once per attempt scope (``quota_key``: a retried activity, a wait
    and a fallback to the next model are the same request); the provider counts every activity
    attempt (``cap_key``), whose calls it really serves again.
    """
    now = datetime.now(UTC)
    checkpoint = inp.checkpoint
    subjects = limit_subjects(deps, checkpoint, model)
    if not subjects:
        return hold_for_attempt(deps, session, inp, model, attempt), None
    quota = [s for s in subjects if s.scope != "provider"]
    caps = [s for s in subjects if s.scope == "provider"]
    quota_key, cap_key = limit_keys(inp, attempt)
    calls = planned_calls(deps, checkpoint, model)
    tokens = step_tokens(checkpoint) * calls
    counts = lock_windows(session, subjects, now.timestamp())  # first: takes the write lock
    held_to = []
    if quota and not checkpoint.limits_waived and not is_charged(session, quota_key):
        held_to += [c for c in counts if c.scope != "provider"]
    if caps and not is_charged(session, cap_key):
        held_to += [c for c in counts if c.scope == "provider"]
    breach = first_breach(held_to, tokens, calls)
    if breach is not None:
        limited = _limited(deps, checkpoint, breach, now)
        if limited.action == "wait":  # the run page and `tether status --follow` show the wait
            record_step_event(session, step_waiting(inp.step, checkpoint.tenant, limited))
        _record(session, checkpoint, cap_key, limited)
        return None, limited
    result = hold_for_attempt(deps, session, inp, model, attempt)
    if result.reservation_key is not None:
        if quota:
            charge_windows(session, quota_key, quota, now.timestamp(), tokens)
        if caps:
            charge_windows(session, cap_key, caps, now.timestamp(), tokens, calls)
    return result, None


def limit_keys(inp: CheckedStepInput, attempt: int) -> tuple[str, str]:
    """(the key the user and tenant count a step under, the key its provider counts it under)."""
    return inp.checkpoint.reservation_key, f"{inp.step.idempotency_key}/a{attempt}"


def settle_limits(
    session: Session, inp: CheckedStepInput, attempt: int, result: LlmStepResult
) -> None:
    """Count what the step really used in place of its estimate: its tokens, and the calls its
    provider served (repairs beyond what was counted, a sample that was not made)."""
    provider = _provider(result.model)
    calls = sum(1 for a in result.attempts if _provider(a.model) == provider and not a.embedding)
    used = result.usage.input_tokens + result.usage.output_tokens
    for key in limit_keys(inp, attempt):
        settle_charge(session, key, used, calls)


def _limited(
    deps: ActivityDeps, inp: CheckpointInput, breach: LimitBreach, now: datetime
) -> RateLimited:
    resets_at = datetime.fromtimestamp(breach.resets_at, UTC)
    provider = breach.scope == "provider"  # the account's cap: only waiting helps
    return RateLimited(
        guard="provider_cap" if provider else "rate_limit",
        action="wait" if provider else effective_for(deps.policy, inp.workflow).limits.on_exceed,
        limit=breach.describe(),
        retry_after_s=round(max((resets_at - now).total_seconds(), 0.0) + RESET_MARGIN_S, 3),
        resets_at=resets_at,
    )


def _record(session: Session, inp: CheckpointInput, key: str, limited: RateLimited) -> None:
    """The audit event of a step held back (once per step activity)."""
    append_event(
        session,
        key=f"{limited.guard}:{key}",
        kind=limited.guard,
        actor="tether",
        run_id=inp.run_id,
        detail={
            "step": inp.step,
            "action": limited.action,
            "limit": limited.limit,
            "retry_after_s": limited.retry_after_s,
            "resets_at": limited.resets_at.isoformat(),
            "tenant": inp.tenant,
        },
    )
