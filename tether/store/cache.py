"""The step cache: answers of past model calls, shared by every worker through the store.

An entry belongs to a partition (tenant + workflow + step + prompt id@version + model, hashed
into ``partition``); it is found by the exact digest of the rendered messages or, through the
worker's in-process index (``activities.step_cache``), by the cosine of its input's embedding.
An answer the confidence gate did not accept is kept ``held``: it is not served until a reviewer
approves it. Before an answer nobody approved is reused the first time, the judge grades it for
the input reusing it: it is then ``verified``, or evicted with the verdict ``doubted``. A reviewer's approval marks an entry ``approved`` (preferred on a semantic hit); a
reject or an edit evicts it: ``evicted_at`` is set and the row stays, with its embedding and the
verdict, for the learned routing rule. An edit also keeps what the reviewer wrote, approved, as
the answer to the input the reviewed run asked about.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, update
from sqlmodel import Field, Session, SQLModel, col, select

from tether.core.digests import output_digest as digest_of
from tether.store.audit import append_event
from tether.store.reviews import ReviewItem

__all__ = [
    "CacheEntry",
    "Verdict",
    "doubt_entry",
    "entries_by_id",
    "exact_entry",
    "insert_entry",
    "judge_entries",
    "live_vectors_since",
    "mark_verified",
    "record_review_verdict",
    "record_verdict",
    "route_scope",
    "scope_digest",
    "verdict_vectors",
]

Verdict = str
"""``approved``, ``rejected`` or ``edited``: what a reviewer decided about an entry's answer;
``doubted``: the judge graded it poorly when it was first reused."""

REVIEWER_VERDICTS = ("approved", "rejected", "edited")
DOUBTED = "doubted"


def _now() -> datetime:
    return datetime.now(UTC)


class CacheEntry(SQLModel, table=True):
    __tablename__ = "cache_entries"
    __table_args__ = (
        Index("ix_cache_entries_exact", "partition", "input_digest"),
        Index("ix_cache_entries_partition_id", "partition", "id"),
        Index("ix_cache_entries_verdicts", "route_scope", "verdict"),
        Index("ix_cache_entries_answer", "route_scope", "output_digest"),
        Index("ix_cache_entries_expires", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partition: str = Field(max_length=80)
    """Digest of tenant, workflow, step, prompt id@version and model."""
    route_scope: str = Field(max_length=80)
    """Digest of tenant, workflow and step: where reviewers' verdicts are looked up."""
    tenant: str = Field(max_length=200)
    workflow: str = Field(max_length=100)
    step: str = Field(max_length=100)
    prompt_version: str = Field(max_length=200)
    model: str = Field(max_length=200)
    input_digest: str = Field(max_length=80)
    embedder: str | None = Field(default=None, max_length=200)
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """float32 unit vector of the input, as the embedder ``embedder`` made it."""
    output: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    raw_output: str
    output_digest: str = Field(max_length=80)
    confidence: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    provider: str = Field(max_length=100)
    source_run_id: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime
    approved: bool = False
    held: bool = False
    """The gate did not accept the answer: it is served only once a reviewer approves it."""
    verified: bool = False
    """The judge graded the answer well for an input that reused it (checked once)."""
    verdict: str | None = Field(default=None, max_length=20)
    evicted_at: datetime | None = None


def _live(now: datetime) -> Any:
    return (col(CacheEntry.evicted_at).is_(None)) & (col(CacheEntry.expires_at) > now)


def insert_entry(session: Session, entry: CacheEntry) -> CacheEntry:
    """Keep ``entry``, once: the live entry with the same answer to the same input is returned
    instead of a duplicate. Held when the judge doubted that same answer for that same input
    before (offered again, it would be checked and doubted again) until a reviewer approves it
    or the doubted entry's time is up."""
    now = _now()
    earlier = session.exec(
        select(CacheEntry)
        .where(
            CacheEntry.partition == entry.partition,
            CacheEntry.input_digest == entry.input_digest,
            CacheEntry.output_digest == entry.output_digest,
            col(CacheEntry.expires_at) > now,
        )
        .where(col(CacheEntry.evicted_at).is_(None) | (col(CacheEntry.verdict) == DOUBTED))
    ).all()
    kept = next((e for e in earlier if e.evicted_at is None), None)
    if kept is not None:
        return kept
    if earlier:  # only doubted ones: the judge doubted this very answer to this input
        entry.held = True
    session.add(entry)
    session.flush()
    return entry


def exact_entry(session: Session, partition: str, input_digest: str) -> CacheEntry | None:
    """The live entry with this exact input that may be served (not held), an approved one
    first, else the newest."""
    query = (
        select(CacheEntry)
        .where(CacheEntry.partition == partition, CacheEntry.input_digest == input_digest)
        .where(_live(_now()), col(CacheEntry.held).is_(False))
        .order_by(col(CacheEntry.approved).desc(), col(CacheEntry.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def entries_by_id(session: Session, ids: Sequence[int]) -> list[CacheEntry]:
    """The entries among ``ids`` that are still live (not evicted, not expired), held ones
    included: a held entry stays in the worker's index until a reviewer decides on it."""
    if not ids:
        return []
    query = select(CacheEntry).where(col(CacheEntry.id).in_(list(ids))).where(_live(_now()))
    return list(session.exec(query))


def live_vectors_since(
    session: Session, partition: str, embedder: str, after_id: int, limit: int = 20_000
) -> list[tuple[int, bytes]]:
    """(id, embedding) of the partition's live entries newer than ``after_id``, oldest first."""
    query = (
        select(CacheEntry.id, CacheEntry.embedding)
        .where(CacheEntry.partition == partition, CacheEntry.embedder == embedder)
        .where(col(CacheEntry.id) > after_id, col(CacheEntry.embedding).is_not(None))
        .where(_live(_now()))
        .order_by(col(CacheEntry.id))
        .limit(limit)
    )
    return [
        (int(row[0]), bytes(row[1] or b"")) for row in session.exec(query) if row[0] is not None
    ]


def verdict_vectors(
    session: Session, route_scope: str, embedder: str, limit: int = 5_000
) -> list[tuple[str, bytes]]:
    """(verdict, embedding) of the newest entries of a workflow step that reviewers judged."""
    query = (
        select(CacheEntry.verdict, CacheEntry.embedding)
        .where(CacheEntry.route_scope == route_scope, CacheEntry.embedder == embedder)
        .where(
            col(CacheEntry.verdict).in_(REVIEWER_VERDICTS), col(CacheEntry.embedding).is_not(None)
        )
        .order_by(col(CacheEntry.id).desc())
        .limit(limit)
    )
    return [(str(row[0]), bytes(row[1] or b"")) for row in session.exec(query)]


def mark_verified(session: Session, entry_id: int) -> bool:
    """The judge graded the entry's answer well for an input reusing it. False when, meanwhile,
    a reviewer or another worker evicted it (or it is held): it must not be served."""
    result = session.execute(
        update(CacheEntry)
        .where(col(CacheEntry.id) == entry_id, col(CacheEntry.evicted_at).is_(None))
        .where(col(CacheEntry.held).is_(False))
        .values(verified=True)
    )
    return bool(getattr(result, "rowcount", 0))


def doubt_entry(session: Session, entry_id: int, *, same_input: bool) -> bool:
    """The judge graded the entry's answer poorly for an input reusing it: evicted, unless a
    reviewer approved it meanwhile (a reviewer outranks the judge). The verdict is ``doubted``
    when the input was the entry's own (the same answer to that input is then kept held, see
    ``insert_entry``), ``doubted_similar`` for a paraphrase. Neither is a reviewer's: the
    learned routing rule does not read them. Returns whether it was evicted."""
    result = session.execute(
        update(CacheEntry)
        .where(col(CacheEntry.id) == entry_id, col(CacheEntry.evicted_at).is_(None))
        .where(col(CacheEntry.approved).is_(False))
        .values(verdict=DOUBTED if same_input else "doubted_similar", evicted_at=_now())
    )
    return bool(getattr(result, "rowcount", 0))


def judge_entries(
    session: Session,
    route_scope: str,
    output_digest: str,
    verdict: str,
    *,
    run_id: str | None = None,
    step: str | None = None,
) -> int:
    """Record a reviewer's verdict on the entries that gave the answer ``output_digest``.
    ``approved`` approves (and releases, if held) only the entry the reviewed run's own model
    call made for its input (``run_id``, ``step``): the same answer kept for other inputs was
    approved by nobody. ``rejected`` or ``edited`` evicts every live entry with that answer in
    the step's scope (kept, with the verdict, for the learned routing rule). Returns how many
    entries it changed."""
    query = (
        update(CacheEntry)
        .where(col(CacheEntry.route_scope) == route_scope)
        .where(col(CacheEntry.output_digest) == output_digest)
        .where(col(CacheEntry.evicted_at).is_(None))
    )
    if verdict == "approved":
        if run_id is None or step is None:
            return 0
        query = query.where(
            col(CacheEntry.source_run_id) == run_id, col(CacheEntry.step) == step
        ).values(verdict=verdict, approved=True, held=False)
    else:
        query = query.values(verdict=verdict, approved=False, evicted_at=_now())
    result = session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


def scope_digest(*parts: str) -> str:
    """A partition or route scope: a digest of its parts, so the index keys stay short."""
    joined = "\\x1f".join(parts)
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


def route_scope(tenant: str, workflow: str, step: str) -> str:
    return scope_digest("route", tenant, workflow, step)


def record_verdict(
    session: Session,
    tenant: str,
    workflow: str,
    step: str,
    output_digest: str,
    decision: str,
    *,
    run_id: str | None = None,
    edited_output: dict[str, Any] | None = None,
) -> int:
    """A reviewer's decision on an answer, applied to the cache entries that gave it: an
    approval prefers them; a reject, an edit or a retry (the reviewer asked for another answer,
    which an exact hit would otherwise give back at once) evicts them. Audited when it changed
    an entry."""
    verdict = {
        "approve": "approved",
        "reject": "rejected",
        "edit": "edited",
        "retry": "rejected",
    }.get(decision)
    if verdict is None:
        return 0
    scope = route_scope(tenant, workflow, step)
    changed = judge_entries(session, scope, output_digest, verdict, run_id=run_id, step=step)
    if verdict == "edited" and run_id and edited_output is not None:
        _keep_edit(session, scope, run_id, step, output_digest, edited_output)
    if changed and verdict != "approved":
        append_event(
            session,
            key=f"cache_evicted:{route_scope(tenant, workflow, step)}:{output_digest}",
            kind="cache_evicted",
            actor="tether",
            detail={
                "workflow": workflow,
                "step": step,
                "tenant": tenant,
                "verdict": verdict,
                "digest": output_digest,
                "entries": changed,
            },
        )
    return changed


def record_review_verdict(
    session: Session, item: ReviewItem, decision: str, edited_output: dict[str, Any] | None
) -> int:
    """``record_verdict`` for a decided review item (a run's review or an audit): its tenant,
    workflow, step, answer and run, and the edit when the decision is one."""
    return record_verdict(
        session,
        item.tenant,
        item.workflow,
        item.step,
        item.output_digest,
        decision,
        run_id=item.run_id,
        edited_output=edited_output if decision == "edit" else None,
    )


def _keep_edit(
    session: Session,
    scope: str,
    run_id: str,
    step: str,
    output_digest: str,
    edited_output: dict[str, Any],
) -> None:
    """The reviewer's edit as the approved answer to the reviewed run's own input: a copy of the
    entry that run's model call made (same partition, input digest and embedding; evicted or
    not, since the verdict has just evicted it), with the edited output. An answer the run got
    from the cache was made for another input: the edit evicts it but is not kept for that
    input. The copy expires when the entry would have."""
    query = (
        select(CacheEntry)
        .where(CacheEntry.route_scope == scope, CacheEntry.output_digest == output_digest)
        .where(CacheEntry.source_run_id == run_id, CacheEntry.step == step)
        .order_by(col(CacheEntry.id))
    )
    now = _now()
    inputs: set[tuple[str, str]] = set()
    for made in session.exec(query).all():
        if (made.partition, made.input_digest) in inputs:
            continue
        inputs.add((made.partition, made.input_digest))
        fields = made.model_dump(exclude={"id", "verdict", "evicted_at", "verified"})
        fields |= {
            "output": dict(edited_output),
            "raw_output": json.dumps(edited_output, separators=(",", ":"))[:20_000],
            "output_digest": digest_of(edited_output),
            "approved": True,
            "held": False,
            "created_at": now,
        }
        session.add(CacheEntry(**fields))
        session.flush()
