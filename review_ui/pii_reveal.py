"""What a reviewer sees of an item's personal data: placeholders, unless one of their roles is
in the workflow's ``pii.reveal_to_roles``; then the originals from the run's PII vault.

Only what is shown changes: the stored item, its digest and the edit form keep placeholders, so
a decision names the output the run holds and an edit sends no value back into the run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from policies.effective import pii_settings
from policies.models import Reviewer, TetherPolicy
from policies.pii import restore, restore_value
from tether.core.settings import Settings
from tether.store.engine import Session
from tether.store.pii_vault import pii_sealer, run_originals
from tether.store.reviews import ReviewPublic

__all__ = ["ShownItem", "may_reveal", "shown_item"]


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
