"""Deterministic Temporal workflows and the developer-facing step API (LLM step, checkpoint, gate)."""
