"""Alembic environment for taskgraph's own tables (``tg_*``), beside Optuna's in one database.

Two ways in:

* programmatically (``taskgraph db upgrade``, the repository opener): ``taskgraph.storage.migrate``
  builds the Config in code and hands over an open connection in
  ``config.attributes["connection"]``, already inside a transaction that holds the migration
  lock, so the revisions run inside it;
* the ``alembic`` command line with ``db/alembic.ini``: the URL comes from ``-x url=...``,
  else ``TASKGRAPH_STORAGE``, else ``sqlalchemy.url`` in the ini file.

Our version table is ``tg_alembic_version`` (Optuna keeps ``alembic_version``), and
``include_name``/``include_object`` hide every non-``tg_`` table from autogenerate, so neither
tool ever touches the other's tables.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from taskgraph.storage.engine import create_storage_engine
from taskgraph.storage.migrate import VERSION_TABLE, include_name, include_object
from taskgraph.storage.schema import Base
from taskgraph.storage.urls import STORAGE_ENV, parse_storage_url

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    # Run from the alembic command line: use the logging set up in db/alembic.ini.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(STORAGE_ENV)
    return url or config.get_main_option("sqlalchemy.url") or "sqlite:///taskgraph.db"


def _configure(connection: Connection | None = None, **kwargs: object) -> None:
    dialect = connection.dialect.name if connection is not None else None
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        include_object=include_object,
        compare_type=True,
        # SQLite cannot ALTER most things: future revisions use batch ("move and copy") mode.
        render_as_batch=dialect == "sqlite",
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations (``alembic upgrade head --sql``)."""
    _configure(url=parse_storage_url(_url()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection we were given, or on a new one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_storage_engine(parse_storage_url(_url()))
    try:
        with engine.connect() as new_connection:
            _configure(new_connection, transactional_ddl=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
