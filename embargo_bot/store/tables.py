"""The store's tables, as SQLAlchemy Core metadata: what the queries are written against.

The migrations under ``migrations/versions`` create them; change a table here
only together with a new revision there.

Times are UTC ISO 8601 text (``times.to_storage``), which sorts as it reads,
so both dialects compare them as text. Insertion order, which the service
sends in and the holders are listed in, is ``rowid`` on SQLite and an
identity column ``row_order`` on PostgreSQL (see ``insertion_order``): the
queries never name it as a column, so the tables stay the same for both.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    literal_column,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

# What the release before migrations wrote in ``meta`` and reads: a store
# saying so is at revision 0001. Later revisions say 3, which it refuses.
LEGACY_SCHEMA = 2

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

packs = Table(
    "packs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("reference", Text),
    Column("classification", Text, nullable=False),
    Column("contact", Text, nullable=False),
    Column("lift_at", Text, nullable=False),
    Column("lift_seq", Integer, nullable=False, server_default=text("1")),
    Column("list_keys", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("state", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("needs_clearance", Integer, nullable=False, server_default=text("0")),
    Column("cleared_at", Text),
    Column("cleared_by", Text),
    Column("cancelled_at", Text),
    Column("cancelled_by", Text),
    Column("cancel_reason", Text),
    Column("purged_at", Text),
    Column("expect_text", Text),
    Column("link_check", Integer, nullable=False, server_default=text("1")),
    Column("released_by", Text),
    Column("released_at", Text),
)

# The latest check of a pack's live URL per watch ("early": before the lift; "live": the
# wait after it), and which alerts went: what `show` tells and what a restart resumes from.
link_watches = Table(
    "link_watches",
    metadata,
    Column("pack_id", Text, ForeignKey("packs.id"), primary_key=True),
    Column("watch", Text, primary_key=True),
    Column("checked_at", Text, nullable=False),
    Column("seen", Text, nullable=False),
    Column("status", Integer),
    Column("live", Integer, nullable=False),
    Column("checks", Integer, nullable=False, server_default=text("0")),
    Column("alerts", Text, nullable=False, server_default=text("''")),
)

pack_versions = Table(
    "pack_versions",
    metadata,
    Column("pack_id", Text, ForeignKey("packs.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("pdf_name", Text, nullable=False),
    Column("changed", Text, nullable=False),
    Column("note", Text),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", Text, nullable=False),
    Column("pdf_sealed", LargeBinary, nullable=False),
    Column("release_sealed", LargeBinary, nullable=False),
    Column("social_sealed", LargeBinary),
)

stages = Table(
    "stages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pack_id", Text, ForeignKey("packs.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("wave", Integer),
    Column("list_keys", Text, nullable=False, server_default=text("''")),
    Column("due_at", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("started_at", Text),
    Column("finished_at", Text),
    Column("detail", Text),
    Column("owner", Text),
    Column("lease_until", Text),
    Column("expanded", Integer, nullable=False, server_default=text("0")),
    Column("base_lift_seq", Integer),
    Column("base_version", Integer),
    Column("old_lift_at", Text),
    Column("test_address", Text),
    Column("test_of", Text, nullable=False, server_default=text("''")),
    Column("report_of", Integer, ForeignKey("stages.id")),
    Index("stages_by_pack", "pack_id"),
    Index("stages_by_state", "state", "due_at"),
    sqlite_autoincrement=True,
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("stage_id", Integer, ForeignKey("stages.id"), primary_key=True),
    Column("pack_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("email", Text, primary_key=True),
    Column("name", Text),
    Column("list_key", Text, nullable=False),
    # Shared by the deliveries one message carried (EMBARGO_BOT_SMTP_MAX_RECIPIENTS > 1).
    Column("message_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("reply", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("version", Integer),
    Column("lift_seq", Integer),
    Column("next_attempt_at", Text),
    Column("certificate", Text),
    Column("verp_token", Text),
    Column("bounce_status", Text),
    Column("bounce_diagnostic", Text),
    Column("bounced_at", Text),
    Column("delay_status", Text),
    Column("delay_diagnostic", Text),
    Column("delayed_at", Text),
    Index("deliveries_by_pack", "pack_id", "state"),
    Index("deliveries_by_verp_token", "verp_token", unique=True),
    Index("deliveries_by_email", "email", "pack_id"),
    Index("deliveries_by_message", "message_id"),
)

bounce_notifications = Table(
    "bounce_notifications",
    metadata,
    Column("key", Text, primary_key=True),
    Column("applied_at", Text, nullable=False),
    Column("instance", Text),
    Column("deliveries", Integer, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("stage_id", Integer, primary_key=True),
    Column("email", Text, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("code", Integer),
    Column("reply", Text, nullable=False),
    ForeignKeyConstraint(["stage_id", "email"], ["deliveries.stage_id", "deliveries.email"]),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("pack_id", Text),
    Column("detail", Text, nullable=False),
    Column("mac", Text, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("heartbeat_at", Text, nullable=False),
    Column("stopped_at", Text),
    Index("instances_by_heartbeat", "heartbeat_at"),
)

# One row per shared rate limit: the next send slot, in seconds since the epoch,
# taken and advanced in one short transaction by whichever instance sends next.
rate_slots = Table(
    "rate_slots",
    metadata,
    Column("name", Text, primary_key=True),
    Column("next_at", Float, nullable=False),
)

PACK_COLUMNS = (
    packs.c.id,
    pack_versions.c.title,
    packs.c.reference,
    pack_versions.c.url,
    packs.c.classification,
    packs.c.contact,
    packs.c.lift_at,
    packs.c.list_keys,
    pack_versions.c.pdf_name,
    packs.c.state,
    packs.c.created_at,
    packs.c.created_by,
    packs.c.version,
    packs.c.lift_seq,
    packs.c.needs_clearance,
    packs.c.cleared_at,
    packs.c.cleared_by,
    packs.c.cancelled_at,
    packs.c.cancelled_by,
    packs.c.cancel_reason,
    packs.c.purged_at,
    packs.c.expect_text,
    packs.c.link_check,
    packs.c.released_by,
    packs.c.released_at,
)
PACK_FROM = packs.join(
    pack_versions,
    (pack_versions.c.pack_id == packs.c.id) & (pack_versions.c.version == packs.c.version),
)

VERSION_COLUMNS = tuple(
    pack_versions.c[name]
    for name in (
        "pack_id", "version", "title", "url", "pdf_name", "changed", "note", "changed_by",
        "changed_at",
    )
)  # fmt: skip

STAGE_COLUMNS = tuple(
    stages.c[name]
    for name in (
        "id", "pack_id", "kind", "due_at", "state", "started_at", "finished_at", "detail",
        "owner", "lease_until", "list_keys", "wave", "base_lift_seq", "base_version",
        "old_lift_at", "test_address", "test_of", "report_of",
    )
)  # fmt: skip

DELIVERY_COLUMNS = tuple(
    deliveries.c[name]
    for name in (
        "stage_id", "pack_id", "kind", "email", "name", "list_key", "message_id", "state",
        "reply", "attempts", "created_at", "updated_at", "version", "lift_seq",
        "next_attempt_at", "certificate", "verp_token", "bounce_status", "bounce_diagnostic",
        "bounced_at", "delay_status", "delay_diagnostic", "delayed_at",
    )
)  # fmt: skip

ATTEMPT_COLUMNS = tuple(
    attempts.c[name] for name in ("stage_id", "email", "number", "at", "outcome", "code", "reply")
)

AUDIT_COLUMNS = tuple(
    audit.c[name] for name in ("seq", "at", "actor", "action", "pack_id", "detail", "mac")
)


def insertion_order(dialect: str) -> ColumnElement[int]:
    """The order deliveries were added in: SQLite's rowid, or PostgreSQL's identity column."""
    return literal_column("deliveries.rowid" if dialect == "sqlite" else "deliveries.row_order")
