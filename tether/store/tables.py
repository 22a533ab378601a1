"""Imports every table module so that ``SQLModel.metadata`` knows them all."""

from tether.store import (  # noqa: F401
    audit,
    cache,
    ledger,
    logins,
    reviews,
    run_ids,
    slack_replay,
    texts,
)
