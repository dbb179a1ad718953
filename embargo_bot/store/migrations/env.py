"""Alembic's entry point, run by ``embargo_bot.store.migrate`` on a connection it opened.

No alembic.ini: the connection arrives in ``config.attributes``, already in the
transaction (BEGIN IMMEDIATE on SQLite, under an advisory lock on PostgreSQL)
that the whole upgrade commits or rolls back in.
"""

from __future__ import annotations

from alembic import context

from embargo_bot.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
