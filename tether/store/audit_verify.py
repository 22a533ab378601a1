"""Checking the audit log: every row's HMAC and link, its seqs without gaps, and its head.

``verify_log`` names the first bad row: an edited row (its HMAC no longer matches), a deleted
middle row (a gap in the seqs), a reordered row (its seq or link is not where the chain puts
it), a row appended without the head, a head row whose MAC does not match (rolled back without
the key), a deleted tail (the head row or the head file outside the database is ahead of the
last row), a missing head file once the log has rows, and a head reset to unkeyed over keyed rows. ``tether audit verify`` prints its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from tether.store.audit_chain import (
    GENESIS,
    HEAD_ID,
    KEYED_PREFIX,
    AuditEvent,
    AuditHead,
    AuditSigner,
)
from tether.store.audit_head_file import read_head_file


@dataclass(frozen=True)
class AuditVerdict:
    """What ``verify_log`` found: ``ok``, or the first bad row and what is wrong with it."""

    rows: int
    head_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_log(session: Session, signer: AuditSigner) -> AuditVerdict:
    """Check the whole log against ``signer``'s key, the head row and the head file."""
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        return AuditVerdict(0, 0, None, "the audit log has no head row: run tether db upgrade")
    if not head.keyed:
        keyed_row = session.exec(
            select(AuditEvent.seq).where(col(AuditEvent.hash).startswith(KEYED_PREFIX)).limit(1)
        ).first()
        if keyed_row is not None:
            return AuditVerdict(
                0,
                head.seq,
                keyed_row,
                f"seq {keyed_row}: carries a keyed hash, but the head row says the log is not "
                "keyed (audit_head.keyed was reset to have edits re-signed)",
            )
        return AuditVerdict(
            0, head.seq, 1, "the audit log is not keyed yet: it is re-chained at the next append"
        )
    prev, expected, rows = GENESIS, 1, 0
    rows_in_order = (
        select(AuditEvent).order_by(col(AuditEvent.seq)).execution_options(yield_per=1000)
    )
    for event in session.exec(rows_in_order):
        bad = _row_problem(signer, event, prev, expected)
        if bad is not None:
            return AuditVerdict(rows, head.seq, event.seq, f"seq {event.seq}: {bad}")
        prev, expected, rows = event.hash, event.seq + 1, rows + 1
    last = expected - 1
    if head.seq > last:
        return AuditVerdict(
            rows,
            head.seq,
            last + 1,
            f"seq {last + 1}: missing; the head row says the log ends at seq {head.seq}, "
            f"it ends at {last} (its tail was deleted)",
        )
    if head.seq < last or head.hash != prev:
        return AuditVerdict(
            rows,
            head.seq,
            head.seq + 1 if head.seq < last else last,
            f"seq {head.seq + 1 if head.seq < last else last}: the head row "
            f"(seq {head.seq}) does not match the log's last row",
        )
    verdict = _against_head_file(signer, session, rows, last)
    if not verdict.ok:
        return verdict
    if (head.seq, head.hash) != (0, GENESIS) and head.mac != signer.head_mac(head.seq, head.hash):
        return AuditVerdict(
            rows,
            head.seq,
            head.seq,
            f"seq {head.seq}: the head row's MAC does not match its seq and hash "
            "(the head was rolled back or rewritten without the key)",
        )
    return _head_file_present(signer, rows, last)


def _row_problem(signer: AuditSigner, event: AuditEvent, prev: str, expected: int) -> str | None:
    if event.seq > expected:
        missing = (
            f"seq {expected}" if event.seq == expected + 1 else f"seqs {expected}-{event.seq - 1}"
        )
        return f"{missing} before it missing (deleted)"
    if event.prev_hash != prev:
        return "does not link to the row before it (moved, inserted or its predecessor edited)"
    if event.hash != signer.row_hash(prev, event):
        return "its content does not match its HMAC (edited, moved or written without the key)"
    return None


def _against_head_file(signer: AuditSigner, session: Session, rows: int, last: int) -> AuditVerdict:
    if signer.head_file is None:
        return AuditVerdict(rows, last)
    mark = read_head_file(signer.head_file)
    if mark is None:
        return AuditVerdict(rows, last)
    where = f"the head file {signer.head_file}"
    if mark.seq > last:
        return AuditVerdict(
            rows,
            last,
            last + 1,
            f"seq {last + 1}: missing; {where} says the log reached seq {mark.seq}, "
            f"it ends at {last} (its tail was deleted)",
        )
    if mark.seq >= 1:
        at = session.exec(select(AuditEvent).where(AuditEvent.seq == mark.seq)).first()
        if at is None or at.hash != mark.hash:
            return AuditVerdict(
                rows, last, mark.seq, f"seq {mark.seq}: its hash differs from {where}"
            )
    elif mark.seq < 0:
        return AuditVerdict(rows, last, None, f"{where} is unreadable")
    return AuditVerdict(rows, last)


def _head_file_present(signer: AuditSigner, rows: int, last: int) -> AuditVerdict:
    """Once the log has rows, a missing head file is a failure: without it a deleted tail with
    its head row rolled back cannot be ruled out."""
    if signer.head_file is None or last == 0 or signer.head_file.exists():
        return AuditVerdict(rows, last)
    return AuditVerdict(
        rows,
        last,
        None,
        f"the head file {signer.head_file} is missing, so deletion of the log's tail "
        "cannot be ruled out (keep TETHER_HOME on a volume every worker and the UI share)",
    )
