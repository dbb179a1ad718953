"""The store as the release before migrations made it (meta schema 2).

A store that release made has these tables already and is only stamped with
this revision; a new store is created by it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
_POSTGRESQL_TRIGGERS = (
    "CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only()",
    "CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only()",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    text, integer, blob = sa.Text, sa.Integer, sa.LargeBinary
    # The release's tables said PRIMARY KEY without NOT NULL on single keys; SQLite
    # keeps that difference, so revision 0001 repeats it there to be that schema exactly.
    single_key_nullable = dialect == "sqlite"
    op.create_table(
        "meta",
        sa.Column("name", text, primary_key=True, nullable=single_key_nullable),
        sa.Column("value", blob, nullable=False),
    )
    op.create_table(
        "packs",
        sa.Column("id", text, primary_key=True, nullable=single_key_nullable),
        sa.Column("reference", text),
        sa.Column("classification", text, nullable=False),
        sa.Column("contact", text, nullable=False),
        sa.Column("lift_at", text, nullable=False),
        sa.Column("lift_seq", integer, nullable=False, server_default=sa.text("1")),
        sa.Column("list_keys", text, nullable=False),
        sa.Column("version", integer, nullable=False, server_default=sa.text("1")),
        sa.Column("state", text, nullable=False),
        sa.Column("created_at", text, nullable=False),
        sa.Column("created_by", text, nullable=False),
        sa.Column("needs_clearance", integer, nullable=False, server_default=sa.text("0")),
        sa.Column("cleared_at", text),
        sa.Column("cleared_by", text),
        sa.Column("cancelled_at", text),
        sa.Column("cancelled_by", text),
        sa.Column("cancel_reason", text),
        sa.Column("purged_at", text),
    )
    op.create_table(
        "pack_versions",
        sa.Column("pack_id", text, sa.ForeignKey("packs.id"), nullable=False),
        sa.Column("version", integer, nullable=False),
        sa.Column("title", text, nullable=False),
        sa.Column("url", text, nullable=False),
        sa.Column("pdf_name", text, nullable=False),
        sa.Column("changed", text, nullable=False),
        sa.Column("note", text),
        sa.Column("changed_by", text, nullable=False),
        sa.Column("changed_at", text, nullable=False),
        sa.Column("pdf_sealed", blob, nullable=False),
        sa.Column("release_sealed", blob, nullable=False),
        sa.Column("social_sealed", blob),
        sa.PrimaryKeyConstraint("pack_id", "version"),
    )
    op.create_table(
        "stages",
        sa.Column(
            "id", integer, primary_key=True, autoincrement=True, nullable=single_key_nullable
        ),
        sa.Column("pack_id", text, sa.ForeignKey("packs.id"), nullable=False),
        sa.Column("kind", text, nullable=False),
        sa.Column("wave", integer),
        sa.Column("list_keys", text, nullable=False, server_default=sa.text("''")),
        sa.Column("due_at", text, nullable=False),
        sa.Column("state", text, nullable=False),
        sa.Column("started_at", text),
        sa.Column("finished_at", text),
        sa.Column("detail", text),
        sa.Column("owner", text),
        sa.Column("lease_until", text),
        sa.Column("expanded", integer, nullable=False, server_default=sa.text("0")),
        sa.Column("base_lift_seq", integer),
        sa.Column("base_version", integer),
        sa.Column("old_lift_at", text),
        sa.Column("test_address", text),
        sa.Column("test_of", text, nullable=False, server_default=sa.text("''")),
        sa.Column("report_of", integer, sa.ForeignKey("stages.id")),
        sqlite_autoincrement=True,
    )
    op.create_index("stages_by_pack", "stages", ["pack_id"])
    op.create_index("stages_by_state", "stages", ["state", "due_at"])
    # SQLite keeps insertion order in rowid; PostgreSQL needs a column for it.
    order = (
        [sa.Column("row_order", sa.BigInteger, sa.Identity(), nullable=False, unique=True)]
        if dialect == "postgresql"
        else []
    )
    op.create_table(
        "deliveries",
        sa.Column("stage_id", integer, sa.ForeignKey("stages.id"), nullable=False),
        sa.Column("pack_id", text, nullable=False),
        sa.Column("kind", text, nullable=False),
        sa.Column("email", text, nullable=False),
        sa.Column("name", text),
        sa.Column("list_key", text, nullable=False),
        sa.Column("message_id", text, nullable=False, unique=True),
        sa.Column("state", text, nullable=False),
        sa.Column("reply", text),
        sa.Column("attempts", integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", text, nullable=False),
        sa.Column("updated_at", text, nullable=False),
        sa.Column("version", integer),
        sa.Column("lift_seq", integer),
        sa.Column("next_attempt_at", text),
        sa.Column("certificate", text),
        *order,
        sa.PrimaryKeyConstraint("stage_id", "email"),
    )
    op.create_index("deliveries_by_pack", "deliveries", ["pack_id", "state"])
    op.create_table(
        "attempts",
        sa.Column("stage_id", integer, nullable=False),
        sa.Column("email", text, nullable=False),
        sa.Column("number", integer, nullable=False),
        sa.Column("at", text, nullable=False),
        sa.Column("outcome", text, nullable=False),
        sa.Column("code", integer),
        sa.Column("reply", text, nullable=False),
        sa.PrimaryKeyConstraint("stage_id", "email", "number"),
        sa.ForeignKeyConstraint(["stage_id", "email"], ["deliveries.stage_id", "deliveries.email"]),
    )
    op.create_table(
        "audit",
        sa.Column(
            "seq", integer, primary_key=True, autoincrement=False, nullable=single_key_nullable
        ),
        sa.Column("at", text, nullable=False),
        sa.Column("actor", text, nullable=False),
        sa.Column("action", text, nullable=False),
        sa.Column("pack_id", text),
        sa.Column("detail", text, nullable=False),
        sa.Column("mac", text, nullable=False),
    )
    # Defence in depth: the HMAC chain is what proves the log intact, but the
    # store itself also refuses to change or remove an entry.
    for statement in _POSTGRESQL_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)
    op.execute(sa.text("INSERT INTO meta (name, value) VALUES ('schema', :v)").bindparams(v=b"2"))


def downgrade() -> None:
    for table in ("audit", "attempts", "deliveries", "stages", "pack_versions", "packs", "meta"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_is_append_only()")
