"""Rate-limit counters: requests and tokens per fixed window, shared by every worker.

A step's checkpoint locks the counters of its windows (user, tenant, provider), decides on
their figures (``policies.limits.first_breach``) and, when it goes ahead, adds one request and
its estimated tokens to each, all in one transaction: two workers racing for the last request of
a window are serialised by the row locks (PostgreSQL ``FOR UPDATE``; SQLite's single writer,
taken by the first statement), so only one gets it. What a step counted is remembered under the
step's idempotency key, so a retried activity counts nothing again, and is settled once with the
tokens and calls the step really used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from policies.limits import LimitScope, LimitWindow, WindowCount, window_start

__all__ = [
    "LimitCharge",
    "LimitCounter",
    "LimitSubject",
    "charge_windows",
    "drop_expired_counters",
    "is_charged",
    "lock_windows",
    "settle_charge",
]


class LimitCounter(SQLModel, table=True):
    """What one window of one scope has counted."""

    __tablename__ = "limit_counters"

    key: str = Field(primary_key=True, max_length=600)
    requests: int = Field(default=0, sa_type=BigInteger)
    tokens: int = Field(default=0, sa_type=BigInteger)
    ends_at: int = Field(default=0, sa_type=BigInteger, index=True)
    """The window's end (seconds since the epoch): rows past it are only history."""


class LimitCharge(SQLModel, table=True):
    """What one step counted against its windows, under the step's idempotency key."""

    __tablename__ = "limit_charges"

    key: str = Field(primary_key=True, max_length=600)
    counters: str
    """JSON list of ``[counter key, scope]`` the step counted against."""
    tokens: int = Field(sa_type=BigInteger)
    """The tokens counted at the checkpoint (the estimate until settled)."""
    provider_calls: int = 1
    """The requests counted against the provider's windows at the checkpoint."""
    settled: bool = False
    ends_at: int | None = Field(default=None, sa_type=BigInteger, index=True)
    """When the last window it counted against ends (seconds since the epoch); NULL on charges
    made before retention existed. The retention job deletes charges long past it."""


@dataclass(frozen=True)
class LimitSubject:
    """One scope's windows for one step: a user of a tenant, a tenant, a provider."""

    scope: LimitScope
    subject: str
    windows: Sequence[LimitWindow]
    parts: tuple[str, ...]
    """What keys the scope apart (the tenant as well as the user, for a user)."""


@dataclass(frozen=True)
class _Slot:
    subject: LimitSubject
    window: LimitWindow
    key: str
    started_at: float


_COUNTERS = LimitCounter.__table__  # type: ignore[attr-defined]
_CHARGES = LimitCharge.__table__  # type: ignore[attr-defined]
# Built once: hot statements as Core constructs with bound parameters, compiled once and cached.
_ADD = (
    update(_COUNTERS)
    .where(_COUNTERS.c.key.in_(bindparam("keys", expanding=True)))
    .values(
        requests=_COUNTERS.c.requests + bindparam("add_requests", type_=BigInteger),
        tokens=_COUNTERS.c.tokens + bindparam("add_tokens", type_=BigInteger),
    )
)
_SETTLE = (
    update(_CHARGES)
    .where(_CHARGES.c.key == bindparam("charge"), _CHARGES.c.settled.is_(False))
    .values(settled=True)
    .returning(_CHARGES.c.counters, _CHARGES.c.tokens, _CHARGES.c.provider_calls)
)
_CHARGED = select(_CHARGES.c.key).where(_CHARGES.c.key == bindparam("charge"))
_LOCK = (
    select(_COUNTERS.c.key, _COUNTERS.c.requests, _COUNTERS.c.tokens)
    .where(_COUNTERS.c.key.in_(bindparam("keys", expanding=True)))
    .order_by(_COUNTERS.c.key)
    .with_for_update()
)


def lock_windows(
    session: Session, subjects: Sequence[LimitSubject], now: float
) -> list[WindowCount]:
    """The current count of every window of ``subjects``, each counter row locked until the
    transaction ends (created when missing, locked in key order so checkpoints never deadlock).

    Call it first in its transaction: on SQLite its insert takes the write lock before anything
    is read, so the figures cannot go stale before the charge is written.
    """
    slots = _slots(subjects, now)
    if not slots:
        return []
    rows = sorted(
        {
            s.key: {
                "key": s.key,
                "requests": 0,
                "tokens": 0,
                "ends_at": int(s.started_at) + s.window.seconds,
            }
            for s in slots
        }.values(),
        key=lambda row: str(row["key"]),
    )
    session.execute(_ensure_statement(session.get_bind().dialect.name), rows)
    found = {
        key: (requests, tokens)
        for key, requests, tokens in session.execute(_LOCK, {"keys": [r["key"] for r in rows]})
    }
    return [
        WindowCount(
            scope=s.subject.scope,
            subject=s.subject.subject,
            window=s.window,
            started_at=s.started_at,
            requests=found.get(s.key, (0, 0))[0],
            tokens=found.get(s.key, (0, 0))[1],
        )
        for s in slots
    ]


def is_charged(session: Session, key: str) -> bool:
    """Whether a step with this idempotency key has counted already (a retried activity)."""
    return session.execute(_CHARGED, {"charge": key}).first() is not None


def charge_windows(
    session: Session,
    key: str,
    subjects: Sequence[LimitSubject],
    now: float,
    tokens: int,
    provider_calls: int = 1,
) -> bool:
    """Count one request (``provider_calls`` against a provider's windows) and ``tokens``
    against every window of ``subjects``, once per ``key``.

    Returns False (and counts nothing) when ``key`` has counted already.
    """
    slots = _slots(subjects, now)
    inserted = session.execute(
        _charge_statement(session.get_bind().dialect.name),
        {
            "key": key,
            "counters": json.dumps([[s.key, s.subject.scope] for s in slots]),
            "tokens": tokens,
            "provider_calls": provider_calls,
            "settled": False,
            "ends_at": max([int(s.started_at) + s.window.seconds for s in slots], default=int(now)),
        },
    )
    if inserted.first() is None:  # the key has counted already
        return False
    # Normally locked already by ``lock_windows`` in this transaction; locked again (in key
    # order) so a caller that charges other windows than it locked cannot deadlock.
    session.execute(_LOCK, {"keys": sorted({s.key for s in slots})})
    providers = [s.key for s in slots if s.subject.scope == "provider"]
    others = [s.key for s in slots if s.subject.scope != "provider"]
    _add(session, others, requests=1, tokens=tokens)
    _add(session, providers, requests=provider_calls, tokens=tokens)
    return True


def settle_charge(session: Session, key: str, tokens_used: int, provider_calls: int) -> None:
    """Replace a step's estimated tokens with ``tokens_used``, and the provider calls it was
    counted for with ``provider_calls`` (repairs add some). Once per key."""
    row = session.execute(_SETTLE, {"charge": key}).first()
    if row is None:
        return
    counters: list[list[str]] = json.loads(row[0])
    # Lock the rows in key order first, as a checkpoint does: an UPDATE over several rows
    # takes them in whatever order PostgreSQL scans them, and could deadlock with one.
    session.execute(_LOCK, {"keys": sorted({k for k, _ in counters})})
    _add(session, [k for k, _ in counters], requests=0, tokens=tokens_used - int(row[1]))
    providers = [k for k, scope in counters if scope == "provider"]
    _add(session, providers, requests=provider_calls - int(row[2]), tokens=0)


def drop_expired_counters(session: Session, now: float) -> int:
    """Delete counters of windows that ended over a day before ``now``; the number deleted."""
    result = session.execute(delete(_COUNTERS).where(_COUNTERS.c.ends_at < int(now) - 86_400))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _slots(subjects: Sequence[LimitSubject], now: float) -> list[_Slot]:
    slots: list[_Slot] = []
    for subject in subjects:
        for window in subject.windows:
            started = window_start(now, window.seconds)
            # JSON keeps the parts apart whatever characters names hold.
            key = json.dumps(
                [subject.scope, *subject.parts, window.seconds, int(started)],
                separators=(",", ":"),
                ensure_ascii=False,
            )
            slots.append(_Slot(subject, window, key, started))
    return slots


def _add(session: Session, keys: Sequence[str], *, requests: int, tokens: int) -> None:
    if keys and (requests or tokens):
        session.execute(
            _ADD, {"keys": sorted(set(keys)), "add_requests": requests, "add_tokens": tokens}
        )


@lru_cache(maxsize=4)
def _ensure_statement(dialect: str) -> Any:
    insert: Any = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}[dialect]
    return insert(_COUNTERS).on_conflict_do_nothing()


@lru_cache(maxsize=4)
def _charge_statement(dialect: str) -> Any:
    insert: Any = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}[dialect]
    return insert(_CHARGES).on_conflict_do_nothing().returning(_CHARGES.c.key)
