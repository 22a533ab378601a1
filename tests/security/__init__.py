"""Attacker-style tests: each trust hole of issue 9, tried and shown closed."""
