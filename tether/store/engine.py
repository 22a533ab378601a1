"""Database engine and sessions. SQLite by default, PostgreSQL in production; same code.

The first use of a database in a process brings its schema to the newest migration
(``tether.store.migrations``), under a lock, so workers and the UI starting together agree.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

_engines: dict[str, Engine] = {}
_lock = threading.Lock()

# Any fixed number: the key of PostgreSQL's advisory lock held while the schema is upgraded.
SCHEMA_LOCK_KEY = 7423011


def get_engine(url: str) -> Engine:
    """Return the process-wide engine for ``url``, migrating its schema on first use."""
    engine = _engines.get(url)
    if engine is None:
        with _lock:  # activities open sessions from many threads at once
            engine = _engines.get(url)
            if engine is None:
                engine = _create(url)
                migrate(engine)
                _engines[url] = engine
    return engine


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def _set_wal(cursor: Any) -> None:
    """WAL mode. Switching a fresh file to it needs the file to itself: processes starting
    together on a new store can see "database is locked" at once, without the busy timeout, so
    the switch is retried for up to 30 s."""
    deadline = time.monotonic() + 30
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _create(url: str) -> Engine:
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets the UI read while a worker writes; several processes share the file.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        _set_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other process upgrading the schema can share.

    Workers and the UI start together in production: one upgrades, the others wait and then
    find the schema current. The transaction commits when the block ends without an error.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        elif engine.dialect.name == "sqlite":
            # Takes SQLite's write lock now rather than at the first write, so the whole upgrade
            # (DDL included: pysqlite does not commit before it) is one transaction.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection
        connection.commit()


def migrate(engine: Engine) -> None:
    """Bring ``engine``'s database to the newest revision (a no-op when it is there), then
    build the running spend totals of a store written before they existed."""
    from tether.store import migrations
    from tether.store.ledger import ensure_spend_totals

    with _schema_lock(engine) as connection:
        migrations.upgrade(connection)
        with Session(bind=connection) as session:
            ensure_spend_totals(session)


def upgrade_database(url: str) -> str:
    """Migrate ``url``'s store (``tether db upgrade``); returns the revision it is now at."""
    from tether.store import migrations

    engine = _create(url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            revision = migrations.current_revision(connection)
    finally:
        engine.dispose()
    assert revision is not None, "a migrated store has a revision"
    return revision


@contextmanager
def schema_connection(url: str) -> Iterator[Connection]:
    """A locked connection to ``url`` without migrating it first: for the ``alembic`` command."""
    engine = _create(url)
    try:
        with _schema_lock(engine) as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def ping(session: Session) -> None:
    """Ask the database a trivial question; raises when the store cannot answer."""
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
