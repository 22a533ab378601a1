"""Who may start which runs, for which tenant, and which logins may serve outside dev.

Pure rules over the policy: the web layer and the CLI apply them to the authenticated caller
(or the configured service identity), never to names taken from a request's input.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from policies.models import ALL_TENANTS, Reviewer, TetherPolicy
from policies.passwords import password_matches
from tether.core.errors import AccessRefusedError

__all__ = [
    "as_service",
    "production_login_problem",
    "run_identity",
    "same_person",
    "start_problem",
    "starter_roles",
]

_P = TypeVar("_P", bound=BaseModel)

# The dev logins' passwords, published in the README and policies/default.yaml: a login whose
# hash verifies against one of them (however it was re-hashed) may not serve outside dev.
PUBLISHED_DEV_PASSWORDS = ("alice-dev", "bob-dev", "carol-dev")


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two login names are the same person: compared casefolded, as logins are."""
    if a is None or b is None:
        return False
    return a.strip().casefold() == b.strip().casefold()


def starter_roles(policy: TetherPolicy, workflow: str) -> list[str]:
    """The roles that may start ``workflow``: its own ``starters``, else the top-level list."""
    section = policy.workflows.get(workflow)
    if section is not None and section.starters is not None:
        return section.starters
    return policy.starters


def start_problem(policy: TetherPolicy, caller: Reviewer, workflow: str) -> str | None:
    """Why ``caller`` may not start ``workflow``, or None when they may."""
    allowed = starter_roles(policy, workflow)
    if set(caller.roles) & set(allowed):
        return None
    needs = ", ".join(sorted(allowed)) or "none is configured (policy: starters)"
    return f"{caller.name} may not start {workflow} runs: needs one of the roles {needs}"


def run_identity(payload: _P, caller: Reviewer) -> _P:
    """``payload`` with the requester set to ``caller`` and its tenant checked against theirs.

    The requester is the caller, never the input: an input naming someone else is refused. A
    tenant must be one of the caller's; left out, it is the caller's only tenant.

    Raises:
        AccessRefusedError: 422 for a requester other than the caller; 403 for a tenant not theirs,
            or a caller with several tenants who names none.
    """
    fields = type(payload).model_fields
    update: dict[str, object] = {}
    if "requester" in fields:
        named = getattr(payload, "requester", None)
        if named is not None and not same_person(named, caller.name):
            raise AccessRefusedError(
                "requester is the authenticated caller; leave it out of the input", status=422
            )
        update["requester"] = caller.name
    if "tenant" in fields:
        tenant = getattr(payload, "tenant", None)
        if tenant is None:
            if len(caller.tenants) != 1 or caller.tenants[0] == ALL_TENANTS:
                if not caller.sees_tenant("default"):
                    raise AccessRefusedError(
                        f"{caller.name} works for several tenants: name one in the input's tenant"
                    )
                tenant = "default"
            else:
                tenant = caller.tenants[0]
        if not caller.sees_tenant(tenant):
            raise AccessRefusedError(f"{caller.name} may not start runs for tenant {tenant!r}")
        update["tenant"] = tenant
    return payload.model_copy(update=update) if update else payload


def as_service(payload: _P, identity: str) -> _P:
    """``payload`` with the requester set to the CLI's service identity, never the input's.

    Raises:
        AccessRefusedError: the input names another requester.
    """
    if "requester" not in type(payload).model_fields:
        return payload
    named = getattr(payload, "requester", None)
    if named is not None and not same_person(named, identity):
        raise AccessRefusedError(
            f"requester is the service identity ({identity}, TETHER_SERVICE_IDENTITY); "
            "leave it out of the input",
            status=422,
        )
    return payload.model_copy(update={"requester": identity})


def production_login_problem(policy: TetherPolicy, embedded: TetherPolicy) -> str | None:
    """Why ``policy``'s logins may not serve outside ``TETHER_ENV=dev``, or None.

    Refused: a plaintext password, a login whose hash is one of the embedded dev policy's, or a
    hash that verifies against a published dev password (a re-hash has a new salt, the same
    password).
    """
    dev_hashes = {r.password_hash for r in embedded.reviewers if r.password_hash is not None}
    for reviewer in policy.reviewers:
        if reviewer.password is not None:
            return (
                f"reviewer {reviewer.name!r} has a plaintext password: outside TETHER_ENV=dev "
                "give password_hash (make one with `tether hash-password`)"
            )
        if reviewer.password_hash in dev_hashes or any(
            password_matches(dev, reviewer.password_hash) for dev in PUBLISHED_DEV_PASSWORDS
        ):
            return (
                f"reviewer {reviewer.name!r} uses a published dev login: outside TETHER_ENV=dev "
                "set TETHER_POLICY_FILE to a policy with your own logins"
            )
    return None
