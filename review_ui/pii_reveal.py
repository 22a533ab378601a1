"""What a reviewer sees of an item's personal data, and what their decision sends back.

A reviewer sees placeholders, unless one of their roles is in the workflow's
``pii.reveal_to_roles``; then the originals from the run's PII vault. Only what is shown
changes: the stored item, its digest and the edit form keep placeholders, so a decision names
the output the run holds. Personal data a reviewer types into an edit, a reason or feedback is
redacted with the run's placeholders before the decision reaches the run (and its history).
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel

from activities.pii_presidio import pii_detectors
from policies.effective import pii_settings
from policies.models import Reviewer, TetherPolicy
from policies.pii import JsonValue, Redactor, restore, restore_value
from tether.contracts import ReviewDecision
from tether.core.settings import Settings
from tether.store.engine import Session, session_scope
from tether.store.pii_vault import pii_sealer, run_originals
from tether.store.reviews import ReviewPublic
from tether.store.run_pii import keep_redaction, run_redactor

__all__ = ["ShownItem", "may_reveal", "redacted_decision", "shown_item"]


class ShownItem(BaseModel):
    input_preview: dict[str, Any]
    output: dict[str, Any] | None
    raw_output: str | None
    decided_output: dict[str, Any] | None
    has_pii: bool
    """The run's input or prompts had personal data redacted."""
    revealed: bool
    """The values are shown, not the placeholders."""


def may_reveal(policy: TetherPolicy, reviewer: Reviewer, workflow: str) -> bool:
    return not pii_settings(policy, workflow).reveal_to_roles.isdisjoint(reviewer.roles)


def shown_item(
    session: Session,
    settings: Settings,
    policy: TetherPolicy,
    reviewer: Reviewer,
    item: ReviewPublic,
) -> ShownItem:
    originals = run_originals(session, pii_sealer(settings), item.run_id)
    reveal = bool(originals) and may_reveal(policy, reviewer, item.workflow)
    mapping = originals if reveal else {}

    def _json(value: dict[str, Any] | None) -> Any:
        return None if value is None else restore_value(value, mapping)

    return ShownItem(
        input_preview=_json(item.input_preview) or {},
        output=_json(item.output),
        raw_output=restore(item.raw_output, mapping) if item.raw_output else item.raw_output,
        decided_output=_json(item.decided_output),
        has_pii=bool(originals),
        revealed=reveal,
    )


def redacted_decision(
    database_url: str,
    settings: Settings,
    policy: TetherPolicy,
    item: ReviewPublic,
    decision: ReviewDecision,
) -> ReviewDecision:
    """``decision`` with personal values in its edit, reason and feedback replaced by the run's
    placeholders (new values join the run's vault). Blocking: call it off the event loop."""
    pii = pii_settings(policy, item.workflow)
    edited = cast(JsonValue, decision.edited_output)
    texts = (decision.reason or "", decision.feedback or "")
    detectors = pii_detectors(pii)
    probe = Redactor(pii, detectors)
    probe.redact_value([edited, *texts])
    if not probe.counts:
        return decision
    with session_scope(database_url) as session:
        sealer = pii_sealer(settings)
        redactor, known = run_redactor(session, sealer, item.run_id, pii, detectors)
        output = redactor.redact_value(edited)
        reason, feedback = (redactor.redact(text) or None for text in texts)
        keep_redaction(
            session, sealer, redactor, run_id=item.run_id, tenant=item.tenant,
            where=f"decision:{decision.review_id}:{len(known)}", known=known,
        )  # fmt: skip
    update = {"edited_output": output, "reason": reason, "feedback": feedback}
    return decision.model_copy(update=update)
