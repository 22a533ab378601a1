"""The append-only audit log of model calls, budget actions and decisions: keyed and headed.

Each row's ``hash`` is an HMAC-SHA256, under a key kept outside the database (``AuditSigner``),
over the previous row's hash and the row itself, so nobody with only write access to the
database can edit, delete, insert or reorder rows and recompute the chain. The chain's head
(last seq and hash) is kept in the ``audit_head`` row, updated in the transaction that appends,
and, after each commit, in a head file outside the database: deleting the tail shows too.

Appending takes the head row's lock first (one ``UPDATE ... RETURNING``), so concurrent writers
line up on one linear chain. ``tether.store.audit_verify`` checks all of it.

Which key signs a store's rows is registered per database URL by ``use_audit_signer`` (see
``tether.store.audit_key.configure_audit``, called where settings open a store); a store with no
signer refuses to append rather than write an unkeyed row.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, event, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tether.core.errors import ConfigurationError
from tether.store.audit_chain import (
    GENESIS,
    HEAD_ID,
    KEYED_PREFIX,
    AuditEvent,
    AuditHead,
    AuditSigner,
    canonical_row,
)
from tether.store.audit_head_file import advance_head_file
from tether.store.audit_rechain import rechain, refuse_rechain_of_keyed_log
from tether.store.audit_verify import verify_log

__all__ = [
    "GENESIS",
    "KEYED_PREFIX",
    "AuditEvent",
    "AuditHead",
    "AuditSigner",
    "append_event",
    "canonical_row",
    "events_for",
    "signer_for",
    "use_audit_signer",
    "verify_chain",
]

# --- which key signs which store ------------------------------------------------------------

_signers: dict[str, AuditSigner] = {}
_signers_lock = threading.Lock()


def _store_id(url: str | URL) -> str:
    return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=False)


def use_audit_signer(database_url: str, signer: AuditSigner) -> None:
    """Sign the audit rows of ``database_url``'s store with ``signer`` (in this process)."""
    with _signers_lock:
        _signers[_store_id(database_url)] = signer


def signer_for(session: Session) -> AuditSigner:
    """The signer registered for the session's store.

    Raises:
        ConfigurationError: none is (the process opened the store without its settings).
    """
    signer = _signers.get(_store_id(session.get_bind().engine.url))
    if signer is None:
        raise ConfigurationError(
            "the audit log has no key for this store: configure it with TETHER_AUDIT_KEY "
            "(tether.store.audit_key.configure_audit)"
        )
    return signer


# --- appending ------------------------------------------------------------------------------

_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
# Takes the head row's lock and the next position in one statement: concurrent appenders wait
# here, so the chain stays linear without retries.
_TAKE_NEXT = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(seq=_HEAD.c.seq + 1)
    .returning(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.keyed)
)
_SET_HASH = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(hash=bindparam("new_hash"), mac=bindparam("new_mac"), updated_at=bindparam("now"))
)
_PENDING_HEADS = "tether.audit.pending_heads"


def append_event(
    session: Session,
    *,
    key: str,
    kind: str,
    actor: str,
    run_id: str | None = None,
    review_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event (or return the existing one with this key).

    Raises:
        ConfigurationError: the store has no audit key, or no head (not migrated).
    """
    signer = signer_for(session)
    # Stored as JSON: hash exactly what the column will give back.
    detail = json.loads(json.dumps(detail or {}, default=str))
    for _ in range(5):
        existing = session.exec(select(AuditEvent).where(AuditEvent.key == key)).first()
        if existing is not None:
            return existing
        try:
            with session.begin_nested():
                taken = session.execute(_TAKE_NEXT).first()
                if taken is None:
                    raise ConfigurationError("the audit log has no head row: run tether db upgrade")
                seq, prev, keyed = taken
                if not keyed:
                    refuse_rechain_of_keyed_log(session, signer)
                    seq, prev = rechain(session, signer)
                event = AuditEvent(
                    seq=seq,
                    key=key,
                    at=datetime.now(UTC).replace(microsecond=0),
                    kind=kind,
                    actor=actor,
                    run_id=run_id,
                    review_id=review_id,
                    detail=detail,
                    prev_hash=prev,
                    hash="",
                )
                event.hash = signer.row_hash(prev, event)
                session.add(event)
                session.flush()
                session.execute(
                    _SET_HASH,
                    {
                        "new_hash": event.hash,
                        "new_mac": signer.head_mac(event.seq, event.hash),
                        "now": datetime.now(UTC),
                    },
                )
        except IntegrityError:
            continue  # the same key appended meanwhile: the loop returns it
        note_head(session, signer, event.seq, event.hash)
        return event
    raise ConfigurationError("the audit log could not append; retry the operation")


def note_head(session: Session, signer: AuditSigner, seq: int, head_hash: str) -> None:
    """Remember the head to write to ``signer.head_file`` once the transaction commits."""
    if signer.head_file is not None:
        session.info.setdefault(_PENDING_HEADS, {})[signer.head_file] = (seq, head_hash)


@event.listens_for(Session, "after_commit")
def _write_pending_heads(session: Session) -> None:
    for path, (seq, head_hash) in session.info.pop(_PENDING_HEADS, {}).items():
        advance_head_file(path, seq, head_hash)


@event.listens_for(Session, "after_rollback")
def _forget_pending_heads(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(_PENDING_HEADS, None)


def events_for(
    session: Session, *, run_id: str | None = None, review_id: str | None = None
) -> list[AuditEvent]:
    query = select(AuditEvent)
    if run_id is not None:
        query = query.where(AuditEvent.run_id == run_id)
    if review_id is not None:
        query = query.where(AuditEvent.review_id == review_id)
    return list(session.exec(query.order_by(col(AuditEvent.seq))).all())


def verify_chain(session: Session) -> int | None:
    """The seq of the first bad row (0 when the fault is not one row), or None when the log,
    its head row and head file all hold. ``tether.store.audit_verify.verify_log`` says more."""
    verdict = verify_log(session, signer_for(session))
    return None if verdict.ok else (verdict.first_bad_seq or 0)
