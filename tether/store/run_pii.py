"""A run's redactions in the store: its originals in the vault, and the audit event that says
what was redacted (kinds and counts, never values).

Used at the boundaries where text enters a run: the client when it starts one (the run's input),
the step activity before a provider call, document intake before texts are stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from policies.guard_settings import PiiGuardSettings
from policies.pii import PiiDetector, Redactor, restore_value, summary
from tether.core.errors import InputError
from tether.core.settings import Settings
from tether.store.audit import append_event
from tether.store.engine import session_scope
from tether.store.pii_vault import PiiSealer, keep_originals, pii_sealer, run_originals

__all__ = [
    "IDENTITY_FIELDS",
    "RunRedaction",
    "keep_redaction",
    "redact_for_run",
    "redact_input",
    "restored_in_store",
    "run_redactor",
]


class RunRedaction:
    """What one redaction of a run added: new placeholders' values, and hits per kind."""

    def __init__(self, mapping: Mapping[str, str], counts: Mapping[str, int]) -> None:
        self.mapping = dict(mapping)
        self.counts = dict(counts)


def run_redactor(
    session: Session,
    sealer: PiiSealer,
    run_id: str,
    settings: PiiGuardSettings,
    detectors: Sequence[PiiDetector],
) -> tuple[Redactor, dict[str, str]]:
    """A redactor that continues the run's numbering (a value redacted earlier in the run gets
    the placeholder it got then), and the run's originals it starts from. ``detectors``: those
    the settings add to the built-in ones (``activities.pii_presidio.pii_detectors``)."""
    known = run_originals(session, sealer, run_id)
    return Redactor(settings, detectors, known=known), known


def redact_for_run(
    session: Session,
    sealer: PiiSealer,
    settings: PiiGuardSettings,
    texts: list[str],
    *,
    detectors: Sequence[PiiDetector],
    run_id: str,
    tenant: str,
    where: str,
) -> list[str]:
    """``texts`` redacted with the run's placeholders; new values kept in the vault."""
    if not settings.enabled:
        return texts
    redactor, known = run_redactor(session, sealer, run_id, settings, detectors)
    redacted = [redactor.redact(text) for text in texts]
    keep_redaction(
        session, sealer, redactor, run_id=run_id, tenant=tenant, where=where, known=known
    )
    return redacted


def keep_redaction(
    session: Session,
    sealer: PiiSealer,
    redactor: Redactor,
    *,
    run_id: str,
    tenant: str,
    where: str,
    actor: str = "tether",
    known: Mapping[str, str] = {},
) -> RunRedaction:
    """Keep the values ``redactor`` issued beyond ``known`` in the vault and, when it redacted
    anything, append a ``pii_redacted`` audit event keyed by ``where`` (once per key)."""
    added = {p: v for p, v in redactor.mapping.items() if p not in known}
    keep_originals(session, sealer, run_id, tenant, added)
    if redactor.counts:
        append_event(
            session,
            key=f"pii_redacted:{run_id}:{where}",
            kind="pii_redacted",
            actor=actor,
            run_id=run_id,
            detail={
                "where": where,
                "tenant": tenant,
                "redacted": summary(redactor.counts),
                "counts": dict(redactor.counts),
            },
        )
    return RunRedaction(added, redactor.counts)


IDENTITY_FIELDS = frozenset({"tenant", "requester", "customer_id"})
"""Input fields that name who runs it (authorization, budgets per end user): never redacted,
so they must not carry personal data beyond an identifier."""


def redact_input(
    payload: BaseModel, pii: PiiGuardSettings, detectors: Sequence[PiiDetector]
) -> tuple[BaseModel, Redactor]:
    """The input with personal values in its text replaced by placeholders, and the redactor
    holding their originals (none when the guard is off)."""
    redactor = Redactor(pii, detectors)
    if not pii.enabled:
        return payload, redactor
    data = payload.model_dump(mode="json")
    kept = {name: data.pop(name) for name in IDENTITY_FIELDS & data.keys()}
    redacted = redactor.redact_value(data)
    if not redactor.mapping:
        return payload, redactor
    assert isinstance(redacted, dict)
    try:
        return type(payload).model_validate(redacted | kept), redactor
    except ValidationError as exc:  # a placeholder longer than the value it replaced
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise InputError(f"input is invalid once personal data is redacted: {where}") from exc


def restored_in_store(settings: Settings, run_id: str, value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with the run's placeholders replaced by the originals in the PII vault."""
    with session_scope(settings.resolved_database_url) as session:
        originals = run_originals(session, pii_sealer(settings), run_id)
    restored = restore_value(value, originals)
    assert isinstance(restored, dict)
    return restored
