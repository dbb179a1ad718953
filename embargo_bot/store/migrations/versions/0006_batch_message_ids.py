"""Batched messages: several deliveries can share one Message-ID.

With EMBARGO_BOT_SMTP_MAX_RECIPIENTS above 1 one message carries up to that
many recipients, and each delivery records the Message-ID of the message it
went in, so ``deliveries.message_id`` is no longer unique; it is indexed, so a
bounce or a reply is still matched to its deliveries at once.

SQLite cannot drop a constraint: batch mode copies the table. The UNIQUE was
unnamed there, so reflection names it by the convention below to drop it. The
copy drops the old table, which ``attempts`` refers to, and foreign keys are on
(and cannot be turned off inside the upgrade's transaction): the attempts are
set aside for the copy and put back after, in their order.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CONVENTION = {"uq": "%(table_name)s_%(column_0_name)s_key"}  # PostgreSQL's own naming
_UNIQUE = "deliveries_message_id_key"
_INDEX = "deliveries_by_message"


def upgrade() -> None:
    with (
        _attempts_set_aside(),
        op.batch_alter_table("deliveries", naming_convention=_CONVENTION) as batch,
    ):
        batch.drop_constraint(_UNIQUE, type_="unique")
        batch.create_index(_INDEX, ["message_id"])


def downgrade() -> None:
    with (
        _attempts_set_aside(),
        op.batch_alter_table("deliveries", naming_convention=_CONVENTION) as batch,
    ):
        batch.drop_index(_INDEX)
        batch.create_unique_constraint(_UNIQUE, ["message_id"])


@contextmanager
def _attempts_set_aside() -> Iterator[None]:
    if op.get_bind().dialect.name != "sqlite":  # PostgreSQL alters the table in place
        yield
        return
    op.execute("CREATE TEMP TABLE attempts_kept AS SELECT * FROM attempts ORDER BY rowid")
    op.execute("DELETE FROM attempts")
    yield
    op.execute("INSERT INTO attempts SELECT * FROM attempts_kept ORDER BY rowid")
    op.execute("DROP TABLE attempts_kept")
