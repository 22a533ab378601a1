"""Imports every table module so that ``SQLModel.metadata`` knows them all."""

from tether.store import (  # noqa: F401
    audit,
    budget_alerts,
    ledger,
    logins,
    reviews,
    run_ids,
    slack_replay,
    texts,
)
