"""Pruning dead store rows in bounded batches (the retention job; ``activities.retention`` runs
it in every worker, ``tether prune`` once).

Each batch is its own short transaction of at most ``batch_rows`` rows, so a prune never holds
a long lock on PostgreSQL (nor SQLite's single writer); a prune stops after ``max_batches``
batches per table and leaves the rest to the next one.

What goes:
- ``cache_entries`` that are dead (expired or evicted) and carry no reviewer verdict with an
  embedding. Dead rows with a verdict and an embedding feed the learned routing rule
  (``verdict_vectors`` reads the newest 5,000 per workflow step and embedder): they go only
  beyond the newest ``keep_verdicts`` of their step and embedder, or once older than
  ``verdict_max_age``. A live entry (servable, or held for a reviewer) never goes.
- ``limit_counters`` and ``limit_charges`` whose window ended over ``limit_window_grace`` ago.

Never pruned: the audit log, the ledger, reviews, step events (a run's page reads them for as
long as the run is listed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlmodel import Session

from policies.retention_settings import RetentionPolicy
from tether.store.cache import CacheEntry
from tether.store.engine import session_scope
from tether.store.limits import LimitCharge, LimitCounter

__all__ = [
    "PruneCounts",
    "prune_cache_batch",
    "prune_charges_batch",
    "prune_counters_batch",
    "prune_store",
]

log = logging.getLogger(__name__)

_CACHE = CacheEntry.__table__  # type: ignore[attr-defined]
_COUNTERS = LimitCounter.__table__  # type: ignore[attr-defined]
_CHARGES = LimitCharge.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PruneCounts:
    """Rows one prune deleted, per table."""

    cache_entries: int = 0
    limit_counters: int = 0
    limit_charges: int = 0

    def line(self) -> str:
        return (
            f"pruned {self.cache_entries} cache entries, {self.limit_counters} rate-limit "
            f"counters, {self.limit_charges} rate-limit charges"
        )


def prune_cache_batch(
    session: Session, now: datetime, keep_verdicts: int, verdict_max_age: timedelta, limit: int
) -> int:
    """Deletes up to ``limit`` dead cache entries the learned routing rule does not need."""
    dead = or_(_CACHE.c.expires_at <= now, _CACHE.c.evicted_at.is_not(None))
    unjudged = or_(_CACHE.c.verdict.is_(None), _CACHE.c.embedding.is_(None))
    ids = [
        row[0]
        for row in session.execute(
            select(_CACHE.c.id).where(dead, unjudged).order_by(_CACHE.c.id).limit(limit)
        )
    ]
    if len(ids) < limit:
        ids += _surplus_verdicts(session, now, keep_verdicts, verdict_max_age, limit - len(ids))
    return _delete_ids(session, _CACHE.c.id, ids)


def _surplus_verdicts(
    session: Session, now: datetime, keep: int, max_age: timedelta, limit: int
) -> list[int]:
    """Dead entries with a verdict and an embedding beyond the newest ``keep`` of their step
    and embedder (ranked among all its verdict rows, live ones too, as ``verdict_vectors``
    reads them), or older than ``max_age``."""
    rank = (
        func.row_number()
        .over(partition_by=(_CACHE.c.route_scope, _CACHE.c.embedder), order_by=_CACHE.c.id.desc())
        .label("rank")
    )
    ranked = (
        select(_CACHE.c.id, _CACHE.c.created_at, _CACHE.c.expires_at, _CACHE.c.evicted_at, rank)
        .where(_CACHE.c.verdict.is_not(None), _CACHE.c.embedding.is_not(None))
        .subquery()
    )
    query = (
        select(ranked.c.id)
        .where(or_(ranked.c.expires_at <= now, ranked.c.evicted_at.is_not(None)))
        .where(or_(ranked.c.rank > keep, ranked.c.created_at < now - max_age))
        .order_by(ranked.c.id)
        .limit(limit)
    )
    return [row[0] for row in session.execute(query)]


def prune_counters_batch(session: Session, ended_before: int, limit: int) -> int:
    """Deletes up to ``limit`` rate-limit counters of windows that ended before
    ``ended_before`` (seconds since the epoch)."""
    keys = select(_COUNTERS.c.key).where(_COUNTERS.c.ends_at < ended_before).limit(limit)
    return _delete_ids(session, _COUNTERS.c.key, [row[0] for row in session.execute(keys)])


def prune_charges_batch(session: Session, ended_before: int, limit: int) -> int:
    """Deletes up to ``limit`` rate-limit charges whose last window ended before
    ``ended_before``; first dates up to ``limit`` charges made before they carried their end."""
    _date_legacy_charges(session, limit)
    keys = select(_CHARGES.c.key).where(_CHARGES.c.ends_at < ended_before).limit(limit)
    return _delete_ids(session, _CHARGES.c.key, [row[0] for row in session.execute(keys)])


def _date_legacy_charges(session: Session, limit: int) -> None:
    legacy = select(_CHARGES.c.key, _CHARGES.c.counters).where(_CHARGES.c.ends_at.is_(None))
    for key, counters in session.execute(legacy.limit(limit)).all():
        session.execute(
            update(_CHARGES).where(_CHARGES.c.key == key).values(ends_at=_charge_end(counters))
        )


def _charge_end(counters: str) -> int:
    """When the last window a charge names ends: a counter key is the JSON list
    ``[scope, *parts, window seconds, window start]``. 0 when it names none (never counted)."""
    ends = [0]
    try:
        for counter_key, _scope in json.loads(counters):
            parts = json.loads(counter_key)
            ends.append(int(parts[-1]) + int(parts[-2]))
    except (ValueError, TypeError, IndexError):
        return 0
    return max(ends)


def _delete_ids(session: Session, column: Any, ids: list[Any]) -> int:
    if not ids:
        return 0
    result = session.execute(delete(column.table).where(column.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_store(
    database_url: str, policy: RetentionPolicy, now: datetime | None = None
) -> PruneCounts:
    """One prune of every table, in batches of ``policy.batch_rows`` rows, each committed on
    its own. Logs one count line."""
    now = now or datetime.now(UTC)
    size = policy.batch_rows
    ended_before = int((now - policy.limit_window_grace).timestamp())
    counts = PruneCounts(
        cache_entries=_in_batches(
            database_url,
            policy,
            lambda s: prune_cache_batch(s, now, policy.keep_verdicts, policy.verdict_max_age, size),
        ),
        limit_counters=_in_batches(
            database_url, policy, lambda s: prune_counters_batch(s, ended_before, size)
        ),
        limit_charges=_in_batches(
            database_url, policy, lambda s: prune_charges_batch(s, ended_before, size)
        ),
    )
    log.info("retention: %s", counts.line())
    return counts


def _in_batches(database_url: str, policy: RetentionPolicy, batch: Callable[[Session], int]) -> int:
    total = 0
    for _ in range(policy.max_batches):
        with session_scope(database_url) as session:
            deleted = batch(session)
        total += deleted
        if deleted < policy.batch_rows:
            break
    return total
