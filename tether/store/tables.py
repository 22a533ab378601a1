"""Imports every table module so that ``SQLModel.metadata`` knows them all."""

from tether.store import (  # noqa: F401
    audit,
    budget_alerts,
    cache,
    examples,
    ledger,
    limits,
    logins,
    pii_vault,
    provider_health,
    reviews,
    run_ids,
    slack_replay,
    step_events,
    texts,
)
