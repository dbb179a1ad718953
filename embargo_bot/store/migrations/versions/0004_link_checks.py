"""Link checks: what a pack's live page must show, the checks seen, and `release`.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both dialects: a batch would copy the table, which its
    # foreign keys refuse.
    op.add_column("packs", sa.Column("expect_text", sa.Text))
    op.add_column(
        "packs", sa.Column("link_check", sa.Integer, nullable=False, server_default=sa.text("1"))
    )
    op.add_column("packs", sa.Column("released_by", sa.Text))
    op.add_column("packs", sa.Column("released_at", sa.Text))
    op.create_table(
        "link_watches",
        sa.Column("pack_id", sa.Text, sa.ForeignKey("packs.id"), primary_key=True),
        sa.Column("watch", sa.Text, primary_key=True),
        sa.Column("checked_at", sa.Text, nullable=False),
        sa.Column("seen", sa.Text, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("live", sa.Integer, nullable=False),
        sa.Column("checks", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("alerts", sa.Text, nullable=False, server_default=sa.text("''")),
    )


def downgrade() -> None:
    op.drop_table("link_watches")
    with op.batch_alter_table("packs") as batch:
        for name in ("released_at", "released_by", "link_check", "expect_text"):
            batch.drop_column(name)
