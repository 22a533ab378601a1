"""What the authenticated caller may start and see, as the web layer applies it (rules in
``policies.access``): the roles that start each workflow, the requester set to the caller, the
tenant one of the caller's, and review items only of the caller's tenants (others are 404)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import HTTPException
from pydantic import BaseModel

from policies.access import run_identity, start_problem
from policies.models import ALL_TENANTS, Reviewer, TetherPolicy
from tether.core.errors import AccessRefusedError
from tether.store.engine import Session
from tether.store.reviews import ReviewItem, get_review

_P = TypeVar("_P", bound=BaseModel)


def check_may_start(policy: TetherPolicy, caller: Reviewer, workflow: str) -> None:
    """Raises HTTPException 403 when ``caller``'s roles may not start ``workflow``."""
    problem = start_problem(policy, caller, workflow)
    if problem is not None:
        raise HTTPException(403, problem)


def as_caller(payload: _P, caller: Reviewer) -> _P:
    """``payload`` as ``caller`` starts it: requester = caller, tenant one of theirs.

    Raises:
        HTTPException: 422 for an input naming another requester; 403 for a tenant not theirs.
    """
    try:
        return run_identity(payload, caller)
    except AccessRefusedError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def tenant_filter(caller: Reviewer) -> tuple[str, ...] | None:
    """The tenants whose items ``caller`` sees; None for every tenant (``"*"``)."""
    return None if ALL_TENANTS in caller.tenants else tuple(caller.tenants)


def visible_review(session: Session, review_id: str, caller: Reviewer) -> ReviewItem | None:
    """The review item when it exists and is of one of ``caller``'s tenants, else None (an
    item of another tenant is answered exactly like one that does not exist)."""
    item = get_review(session, review_id)
    if item is None or not caller.sees_tenant(item.tenant):
        return None
    return item


def review_or_404(session: Session, review_id: str, caller: Reviewer) -> ReviewItem:
    """The item ``caller`` may see; raises HTTPException 404 otherwise."""
    item = visible_review(session, review_id, caller)
    if item is None:
        raise HTTPException(404, f"no review item {review_id}")
    return item
