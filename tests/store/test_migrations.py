"""The store's schema comes from Alembic revisions: a new store, a store written before
migrations (kept row for row), concurrent start-ups, ``tether db upgrade``, and a check that the
models and the revisions agree, so a schema change without a revision fails here."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, select, text
from sqlmodel import Session, SQLModel

import tether.store.tables
from tests.store.conftest import fresh_store_url
from tether.cli import main
from tether.store import migrations
from tether.store.engine import dispose_all, get_engine, session_scope, upgrade_database
from tether.store.ledger import run_spend
from tether.store.reviews import get_review
from tether.store.spend import SpendScope, spend_by_scope
from tether.store.texts import put_text

FIXTURES = Path(__file__).parent / "fixtures"
PRE_MIGRATION_TABLES = {
    "audit_events",
    "budget_reservations",
    "decision_intents",
    "ledger_entries",
    "review_items",
    "spend_totals",
    "stored_texts",
}
"""The tables of a store made before migrations."""
ADDED_TABLES = {
    "audit_head",
    "failed_logins",
    "web_sessions",
    "slack_requests",
    "run_ids",
    "labelled_examples",
    "step_events",
    "provider_health",
    "limit_counters",
    "limit_charges",
    "pii_vault",
    "budget_alerts",
    "cache_entries",
}
"""Tables later revisions added."""
Rows = dict[str, list[tuple[Any, ...]]]


def _but_the_head(rows: Rows) -> Rows:
    return {table: found for table, found in rows.items() if table != "audit_head"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it (a fresh PostgreSQL database per test)."""
    with fresh_store_url(request.param, tmp_path, "tether_migrations") as url:
        yield url


def _pre_migration_store(url: str) -> None:
    """Write into ``url`` the store that Tether's create_all made (see fixtures/)."""
    if url.startswith("sqlite:///"):
        shutil.copy(FIXTURES / "pre_migration.db", url.removeprefix("sqlite:///"))
        return
    dump = (FIXTURES / "pre_migration_postgres.sql").read_text()
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql(dump)
        connection.commit()
    engine.dispose()


def _as_migrated(before: Rows) -> Rows:
    """The rows of a pre-migration store once migrated: the same, plus what later revisions
    added (an empty run registry; holds made before it name no model); the audit head, which
    says the old rows are not keyed yet, is compared apart (``_but_the_head``)."""
    after = dict(before) | {table: [] for table in ADDED_TABLES - {"audit_head"}}
    after["budget_reservations"] = [(*row, None) for row in before["budget_reservations"]]
    # Items from before kept no prompt version, model or step input.
    after["review_items"] = [(*row, None, None, None) for row in before["review_items"]]
    return after


def _rows(url: str) -> Rows:
    """Every row of every table but Alembic's, in primary-key order."""
    engine = create_engine(url)
    schema = MetaData()
    with engine.connect() as connection:
        schema.reflect(connection)
        rows = {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in schema.sorted_tables
            if table.name != "alembic_version"
        }
    engine.dispose()
    return rows


def _schema_drift(url: str) -> list[Any]:
    """What autogenerate would write into a new revision for ``url``: nothing when they agree."""
    with get_engine(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _revision(url: str) -> str | None:
    with get_engine(url).connect() as connection:
        return migrations.current_revision(connection)


def test_a_new_store_is_made_by_the_migrations_and_matches_the_models(empty_db: str) -> None:
    assert _schema_drift(empty_db) == []
    assert _revision(empty_db) == migrations.head_revision()
    assert set(_rows(empty_db)) == PRE_MIGRATION_TABLES | ADDED_TABLES
    with session_scope(empty_db) as session:
        key = put_text(session, "hello")
    dispose_all()
    with session_scope(empty_db) as session:  # a second start-up finds it current
        assert tether.store.texts.get_text(session, key) == "hello"
    assert _revision(empty_db) == migrations.head_revision()


def test_a_store_made_before_migrations_is_adopted_with_every_row(empty_db: str) -> None:
    _pre_migration_store(empty_db)
    before = _rows(empty_db)
    assert set(before) == PRE_MIGRATION_TABLES
    assert all(before[table] for table in before), "the fixture has rows in every table"

    assert _revision(empty_db) == migrations.head_revision()  # first use upgrades it
    assert _but_the_head(_rows(empty_db)) == _as_migrated(before)
    assert _schema_drift(empty_db) == []
    with Session(get_engine(empty_db)) as session:  # and today's code reads it
        assert run_spend(session, "run-2") == (pytest.approx(0.003), pytest.approx(0.01))
        item = get_review(session, "run-1/classify/review-1")
        assert item is not None
        assert item.output == {"category": "billing"}


def test_a_store_older_than_running_totals_gets_them_from_the_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _pre_migration_store(url)
    totals = _rows(url)["spend_totals"]
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE spend_totals"))
    engine.dispose()

    assert _rows(upgraded := url)["ledger_entries"]
    assert _revision(upgraded) == migrations.head_revision()
    assert _rows(url)["spend_totals"] == totals
    with Session(get_engine(url)) as session:
        assert spend_by_scope(session, [SpendScope.run("run-1")]) == [
            (pytest.approx(0.002), pytest.approx(0.01))
        ]
    dispose_all()


def test_processes_starting_together_upgrade_once(empty_db: str) -> None:
    errors: list[BaseException] = []

    def start_up() -> None:
        try:
            upgrade_database(empty_db)  # an engine of its own, as another process would have
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _revision(empty_db) == migrations.head_revision()
    assert _schema_drift(empty_db) == []


def test_tether_db_upgrade_migrates_the_configured_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _pre_migration_store(url)
    before = _rows(url)
    monkeypatch.setenv("TETHER_DATABASE_URL", url)

    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"store at revision {migrations.head_revision()}\n"
    assert _but_the_head(_rows(url)) == _as_migrated(before)
    assert main(["db", "upgrade"]) == 0  # and again: nothing to do
    assert _revision(url) == migrations.head_revision()
    dispose_all()


def test_migrations_ship_inside_the_package() -> None:
    shipped = migrations.SCRIPT_LOCATION
    assert shipped.parent == Path(tether.store.__file__).parent
    assert (shipped / "env.py").is_file()
    assert (shipped / "script.py.mako").is_file()
    assert any((shipped / "versions").glob("*.py"))
