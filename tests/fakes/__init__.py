"""Faithful local fakes of external HTTP APIs (model providers, Slack) for tests."""
