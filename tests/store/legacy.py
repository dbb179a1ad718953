"""The store as the release before migrations made it: raw DDL, to test upgrading in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS packs (
    id              TEXT PRIMARY KEY,
    reference       TEXT,
    classification  TEXT NOT NULL,
    contact         TEXT NOT NULL,
    lift_at         TEXT NOT NULL,
    lift_seq        INTEGER NOT NULL DEFAULT 1,
    list_keys       TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    state           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    needs_clearance INTEGER NOT NULL DEFAULT 0,
    cleared_at      TEXT,
    cleared_by      TEXT,
    cancelled_at    TEXT,
    cancelled_by    TEXT,
    cancel_reason   TEXT,
    purged_at       TEXT
);
CREATE TABLE IF NOT EXISTS pack_versions (
    pack_id        TEXT NOT NULL REFERENCES packs(id),
    version        INTEGER NOT NULL,
    title          TEXT NOT NULL,
    url            TEXT NOT NULL,
    pdf_name       TEXT NOT NULL,
    changed        TEXT NOT NULL,
    note           TEXT,
    changed_by     TEXT NOT NULL,
    changed_at     TEXT NOT NULL,
    pdf_sealed     BLOB NOT NULL,
    release_sealed BLOB NOT NULL,
    social_sealed  BLOB,
    PRIMARY KEY (pack_id, version)
);
CREATE TABLE IF NOT EXISTS stages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    pack_id       TEXT NOT NULL REFERENCES packs(id),
    kind          TEXT NOT NULL,
    wave          INTEGER,
    list_keys     TEXT NOT NULL DEFAULT '',
    due_at        TEXT NOT NULL,
    state         TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    detail        TEXT,
    owner         TEXT,
    lease_until   TEXT,
    expanded      INTEGER NOT NULL DEFAULT 0,
    base_lift_seq INTEGER,
    base_version  INTEGER,
    old_lift_at   TEXT,
    test_address  TEXT,
    test_of       TEXT NOT NULL DEFAULT '',
    report_of     INTEGER REFERENCES stages(id)
);
CREATE INDEX IF NOT EXISTS stages_by_pack ON stages(pack_id);
CREATE INDEX IF NOT EXISTS stages_by_state ON stages(state, due_at);
CREATE TABLE IF NOT EXISTS deliveries (
    stage_id   INTEGER NOT NULL REFERENCES stages(id),
    pack_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    email      TEXT NOT NULL,
    name       TEXT,
    list_key   TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL,
    reply      TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER,
    lift_seq   INTEGER,
    next_attempt_at TEXT,
    certificate     TEXT,
    PRIMARY KEY (stage_id, email)
);
CREATE INDEX IF NOT EXISTS deliveries_by_pack ON deliveries(pack_id, state);
CREATE TABLE IF NOT EXISTS attempts (
    stage_id INTEGER NOT NULL,
    email    TEXT NOT NULL,
    number   INTEGER NOT NULL,
    at       TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    code     INTEGER,
    reply    TEXT NOT NULL,
    PRIMARY KEY (stage_id, email, number),
    FOREIGN KEY (stage_id, email) REFERENCES deliveries(stage_id, email)
);
CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    pack_id TEXT,
    detail  TEXT NOT NULL,
    mac     TEXT NOT NULL
);
"""

TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)


def make_legacy_store(path: Path, *, schema: str = "2") -> None:
    """What that release's ``Store.open`` left on disk, with one pack in it."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(SCHEMA)
        for trigger in TRIGGERS:
            connection.execute(trigger)
        connection.execute("INSERT INTO meta (name, value) VALUES ('schema', ?)", (schema,))
        connection.execute(
            "INSERT INTO packs (id, reference, classification, contact, lift_at, list_keys, "
            "state, created_at, created_by) VALUES ('old-pack', NULL, 'OFFICIAL', "
            "'ocu@example.org', '2026-03-02T11:00:00.000000Z', 'alpha', 'active', "
            "'2026-03-02T09:00:00.000000Z', 'alice')"
        )
        connection.execute(
            "INSERT INTO pack_versions (pack_id, version, title, url, pdf_name, changed, "
            "changed_by, changed_at, pdf_sealed, release_sealed) VALUES ('old-pack', 1, "
            "'Old title', 'https://www.gov.example/old', 'old.pdf', '', 'alice', "
            "'2026-03-02T09:00:00.000000Z', X'01', X'02')"
        )
    finally:
        connection.close()


def table_shapes(path: Path) -> dict[str, object]:
    """Every table's columns (name, type, not null, default, key), indexes and triggers."""
    connection = sqlite3.connect(path)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT IN ('alembic_version', 'sqlite_sequence') ORDER BY name"
            )
        ]
        shapes: dict[str, object] = {}
        for name in names:
            columns = [row[1:] for row in connection.execute(f"PRAGMA table_info({name})")]
            keys = sorted(
                (row[2], row[3], row[4])
                for row in connection.execute(f"PRAGMA foreign_key_list({name})")
            )
            indexes = sorted(
                (row[1], row[2])
                for row in connection.execute(f"PRAGMA index_list({name})")
                if not row[1].startswith("sqlite_autoindex")
            )
            shapes[name] = (columns, keys, indexes)
        shapes["triggers"] = sorted(
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        )
        shapes["autoincrement"] = "AUTOINCREMENT" in str(
            connection.execute("SELECT sql FROM sqlite_master WHERE name = 'stages'").fetchone()[0]
        )
        return shapes
    finally:
        connection.close()
