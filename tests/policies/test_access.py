"""Who may start which workflow, as whom and for which tenant; which logins may serve in
production; argon2 password hashes."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from policies.access import (
    as_service,
    production_login_problem,
    run_identity,
    same_person,
    start_problem,
    starter_roles,
)
from policies.loader import load_policy
from policies.models import Reviewer
from policies.passwords import hash_password, password_matches
from tether.core.errors import AccessRefusedError


class Ticket(BaseModel):
    subject: str = "s"
    tenant: str | None = None
    requester: str | None = None


def login(name: str = "alice", tenants: list[str] | None = None, **extra: object) -> Reviewer:
    fields: dict[str, object] = {"name": name, "password": "x", "roles": ["support"]} | extra
    if tenants is not None:
        fields["tenants"] = tenants
    return Reviewer.model_validate(fields)


def test_names_are_the_same_person_casefolded() -> None:
    assert same_person("Alice ", "alice") and same_person("STRASSE", "straße")
    assert not same_person("alice", "bob") and not same_person(None, "alice")


def test_a_workflows_starters_override_the_top_level_ones() -> None:
    policy = load_policy()
    assert starter_roles(policy, "document_summary") == ["reviewer", "support", "lead"]
    section = policy.workflows["support_triage"].model_copy(update={"starters": ["lead"]})
    policy = policy.model_copy(update={"workflows": policy.workflows | {"support_triage": section}})
    assert start_problem(policy, login(roles=["lead"]), "support_triage") is None
    refused = start_problem(policy, login(roles=["support"]), "support_triage")
    assert refused == "alice may not start support_triage runs: needs one of the roles lead"


def test_the_requester_is_the_caller_and_another_one_is_refused() -> None:
    assert run_identity(Ticket(), login()).requester == "alice"
    assert run_identity(Ticket(requester="ALICE"), login()).requester == "alice"
    with pytest.raises(AccessRefusedError) as refused:
        run_identity(Ticket(requester="bob"), login())
    assert refused.value.status == 422


def test_the_tenant_is_one_of_the_callers() -> None:
    assert run_identity(Ticket(), login(tenants=["acme"])).tenant == "acme"
    assert run_identity(Ticket(), login()).tenant == "default"
    assert run_identity(Ticket(tenant="b"), login(tenants=["a", "b"])).tenant == "b"
    assert run_identity(Ticket(tenant="any"), login(tenants=["*"])).tenant == "any"
    for ticket, tenants in [(Ticket(tenant="b"), ["a"]), (Ticket(), ["a", "b"])]:
        with pytest.raises(AccessRefusedError) as refused:
            run_identity(ticket, login(tenants=tenants))
        assert refused.value.status == 403


def test_the_service_identity_is_the_clis_requester() -> None:
    assert as_service(Ticket(), "ops-bot").requester == "ops-bot"
    with pytest.raises(AccessRefusedError):
        as_service(Ticket(requester="alice"), "ops-bot")


def test_production_refuses_plaintext_and_the_published_dev_logins() -> None:
    embedded = load_policy()
    assert production_login_problem(embedded, embedded) is not None
    plain = embedded.model_copy(update={"reviewers": [login()]})
    assert "plaintext password" in (production_login_problem(plain, embedded) or "")
    own = login(password=None, password_hash=hash_password("private"))
    assert (
        production_login_problem(embedded.model_copy(update={"reviewers": [own]}), embedded) is None
    )


def test_a_login_has_exactly_one_password_form() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        login(password=None)
    with pytest.raises(ValidationError, match="exactly one"):
        login(password_hash=hash_password("x"))
    with pytest.raises(ValidationError):
        login(password=None, password_hash="sha256:not-argon2")


def test_password_hashes_are_salted_argon2id_and_verify() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first.startswith("$argon2id$") and first != second
    assert password_matches("pw", first) and not password_matches("PW", first)
    assert not password_matches("pw", None) and not password_matches("pw", "$argon2id$broken")
