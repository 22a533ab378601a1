"""Where the store tests find PostgreSQL: ``make test`` starts one (scripts/test-services.sh)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tether.store.engine import dispose_all


def postgres_url() -> str:
    url = os.environ.get("TETHER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TETHER_TEST_POSTGRES_URL is not set: run the suite through `make test`")
        pytest.skip("no PostgreSQL: run through `make test` (scripts/test-services.sh starts one)")
    return url


@contextmanager
def fresh_store_url(kind: str, tmp_path: Path, prefix: str = "tether_test") -> Iterator[str]:
    """The URL of an empty store: a SQLite file under ``tmp_path``, or a PostgreSQL database made
    for this test and dropped after it (``kind`` "sqlite" or "postgres")."""
    if kind == "sqlite":
        try:
            yield f"sqlite:///{tmp_path / 'store.db'}"
        finally:
            dispose_all()
        return
    server = make_url(postgres_url())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_all()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
