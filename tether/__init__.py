"""Tether: durable LLM workflows on Temporal with confidence gates, cost checkpoints and human review."""
