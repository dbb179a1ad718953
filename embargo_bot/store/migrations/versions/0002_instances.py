"""Instances: each running service's heartbeat, so another can take over its stages.

Also sets ``meta`` schema to 3, so that a release from before migrations,
which checks only that number, refuses this store instead of misreading it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("heartbeat_at", sa.Text, nullable=False),
        sa.Column("stopped_at", sa.Text),
    )
    op.create_index("instances_by_heartbeat", "instances", ["heartbeat_at"])
    op.execute(sa.text("UPDATE meta SET value = :v WHERE name = 'schema'").bindparams(v=b"3"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE meta SET value = :v WHERE name = 'schema'").bindparams(v=b"2"))
    op.drop_index("instances_by_heartbeat", "instances")
    op.drop_table("instances")
