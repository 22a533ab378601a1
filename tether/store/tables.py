"""Imports every table module so that ``SQLModel.metadata`` knows them all."""

from tether.store import audit, ledger, logins, reviews, run_ids, slack_replay, texts  # noqa: F401
