"""Alembic's environment: runs the store's revisions.

Called by ``tether.store.migrations.upgrade`` with a connection that already holds the schema
lock, or by the ``alembic`` command (``[tool.alembic]`` in pyproject.toml) for a developer making a
revision, against ``TETHER_DATABASE_URL`` (default: the local SQLite store).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import tether.store.tables  # noqa: F401  (registers every table on SQLModel.metadata)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # SQLite alters a table by copying it; batch mode writes revisions that do so.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_from_command_line() -> None:
    from tether.core.settings import Settings
    from tether.store.engine import schema_connection

    with schema_connection(Settings.from_env().resolved_database_url) as connection:
        run_migrations(connection)


handed_over = context.config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("tether: the store's migrations run against a database, not as SQL text")
elif handed_over is not None:
    run_migrations(handed_over)
else:
    run_from_command_line()
