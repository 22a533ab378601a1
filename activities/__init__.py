"""Temporal activities: every side effect of a run (model calls, ledger, reviews, notifications)."""
