"""Bounces: a VERP token per delivery, what a partner's server reported, and the
notifications already applied, so any instance may read the bounce mailbox.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_DELIVERY_COLUMNS = (
    "verp_token",
    "bounce_status",
    "bounce_diagnostic",
    "bounced_at",
    "delay_status",
    "delay_diagnostic",
    "delayed_at",
)


def upgrade() -> None:
    for name in _DELIVERY_COLUMNS:
        op.add_column("deliveries", sa.Column(name, sa.Text))
    # Unique, and NULL for deliveries made before this revision (both
    # dialects allow many NULLs in a unique index).
    op.create_index("deliveries_by_verp_token", "deliveries", ["verp_token"], unique=True)
    op.create_index("deliveries_by_email", "deliveries", ["email", "pack_id"])
    op.create_table(
        "bounce_notifications",
        # The SHA-256 of the notification as fetched: never its bytes, which
        # may return the embargoed material.
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("applied_at", sa.Text, nullable=False),
        sa.Column("instance", sa.Text),
        sa.Column("deliveries", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bounce_notifications")
    op.drop_index("deliveries_by_email", "deliveries")
    op.drop_index("deliveries_by_verp_token", "deliveries")
    with op.batch_alter_table("deliveries") as batch:
        for name in _DELIVERY_COLUMNS:
            batch.drop_column(name)
