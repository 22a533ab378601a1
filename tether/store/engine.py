"""Database engine and sessions. SQLite by default, PostgreSQL in production; same code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """Return the process-wide engine for ``url``, creating tables on first use."""
    engine = _engines.get(url)
    if engine is None:
        with _lock:  # activities open sessions from many threads at once
            engine = _engines.get(url)
            if engine is None:
                engine = _create(url)
                _engines[url] = engine
    return engine


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def _create(url: str) -> Engine:
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the UI read while a worker writes; several processes share the file.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    import tether.store.tables  # noqa: F401  (registers every table on SQLModel.metadata)
    from tether.store.ledger import ensure_spend_totals

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Workers and the UI start together in production; one creates, the others wait.
            conn.execute(text("SELECT pg_advisory_xact_lock(7423011)"))
        SQLModel.metadata.create_all(conn)
        with Session(bind=conn) as session:
            ensure_spend_totals(session)
    return engine


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
