"""Imports every table module so that ``SQLModel.metadata`` knows them all."""

from tether.store import audit, ledger, reviews, run_ids, texts  # noqa: F401
