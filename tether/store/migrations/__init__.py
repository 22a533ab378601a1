"""The store's schema history: Alembic revisions shipped inside the package.

``upgrade`` brings a database to the newest revision on a connection the caller holds (the engine
takes the schema lock first, see ``tether.store.engine.migrate``). A new schema change is a new
revision: ``alembic revision --autogenerate -m "..."`` from the repository root, then edit it.
"""

from __future__ import annotations

import logging

# Alembic announces each of its plugins at INFO on every start-up (when it is first imported,
# so this comes before the imports); what a revision does stays.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

SCRIPT_LOCATION = Path(__file__).resolve().parent
_MIGRATION_LOG = logging.getLogger("alembic.runtime.migration")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the store, without an ini file (so an installed tether has
    everything it needs). With ``connection``, revisions run on it, inside its transaction."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection) -> None:
    """Run every revision the database lacks, inside ``connection``'s transaction.

    A database made before migrations (tables from ``create_all``, no ``alembic_version``) is
    adopted by the first revision, which keeps the tables it finds with their rows.
    """
    if current_revision(connection) == head_revision():
        return  # the usual start-up: one SELECT, without loading Alembic's environment
    command.upgrade(alembic_config(connection), "head")


@cache
def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the store has at least one revision"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision ``connection``'s database is at; None before any migration."""
    # Reading the revision is every process's start-up: Alembic's INFO lines about its dialect
    # would land on stderr of every CLI command that touches the store.
    level = _MIGRATION_LOG.level
    _MIGRATION_LOG.setLevel(logging.WARNING)
    try:
        return MigrationContext.configure(connection).get_current_revision()
    finally:
        _MIGRATION_LOG.setLevel(level)
