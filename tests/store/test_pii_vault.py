"""The PII vault on SQLite and PostgreSQL: values come back only under their key and row."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.store.test_migrations import empty_db  # noqa: F401  (SQLite and PostgreSQL)
from tether.core.errors import ConfigurationError
from tether.core.settings import Settings
from tether.store.engine import session_scope
from tether.store.pii_vault import (
    KEY_FILE,
    PiiSealer,
    PiiVaultEntry,
    keep_originals,
    pii_sealer,
    run_originals,
)

KEY = PiiSealer(b"k" * 40)
MAPPING = {"[EMAIL_1]": "jane.doe@example.com", "[CARD_1]": "4111 1111 1111 1111"}


def test_originals_are_kept_sealed_and_come_back_for_their_run(empty_db: str) -> None:  # noqa: F811
    with session_scope(empty_db) as session:
        assert keep_originals(session, KEY, "run-1", "acme", MAPPING) == 2
        # Kept once: a retried activity keeping the same placeholder changes nothing.
        assert keep_originals(session, KEY, "run-1", "acme", {"[EMAIL_1]": "other@x.org"}) == 0
    with session_scope(empty_db) as session:
        stored = " ".join(row.sealed for row in session.execute(select(PiiVaultEntry)).scalars())
        assert run_originals(session, KEY, "run-1") == MAPPING
        assert run_originals(session, KEY, "run-2") == {}
    assert "jane" not in stored and "4111" not in stored


def test_another_key_or_a_value_moved_to_another_run_does_not_open(empty_db: str) -> None:  # noqa: F811
    with session_scope(empty_db) as session:
        keep_originals(session, KEY, "run-1", "acme", MAPPING)
        keep_originals(session, KEY, "run-2", "acme", {"[EMAIL_1]": "bob@example.org"})
    with session_scope(empty_db) as session, pytest.raises(ConfigurationError, match="run-1"):
        run_originals(session, PiiSealer(b"x" * 40), "run-1")
    with session_scope(empty_db) as session:
        sealed = (
            session.execute(select(PiiVaultEntry.sealed).where(PiiVaultEntry.run_id == "run-1"))
            .scalars()
            .first()
        )
        session.execute(
            update(PiiVaultEntry).where(PiiVaultEntry.run_id == "run-2").values(sealed=sealed)
        )
    with session_scope(empty_db) as session, pytest.raises(ConfigurationError):
        run_originals(session, KEY, "run-2")


def test_the_key_comes_from_the_environment_outside_dev(tmp_path: Path) -> None:
    dev = Settings.from_env({"TETHER_HOME": str(tmp_path)})
    production = dev.model_copy(update={"env": "production"})
    with pytest.raises(ConfigurationError, match="TETHER_PII_KEY must be set"):
        pii_sealer(production)
    short = Settings.from_env({"TETHER_HOME": str(tmp_path), "TETHER_PII_KEY": "short"})
    with pytest.raises(ConfigurationError, match="at least 32"):
        pii_sealer(short)
    sealed = pii_sealer(dev).seal("v", run_id="r", tenant="t", placeholder="[EMAIL_1]")
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert pii_sealer(dev).open(sealed, run_id="r", tenant="t", placeholder="[EMAIL_1]") == "v"
