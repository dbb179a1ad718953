"""The store's tables. Bump ``SCHEMA_VERSION`` with any change to them."""

from __future__ import annotations

SCHEMA_VERSION = 2

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

# Defence in depth: the HMAC chain is what proves the log intact, but the
# store itself also refuses to change or remove an entry.
TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)

AUDIT_COLUMNS = "seq, at, actor, action, pack_id, detail, mac"

PACK_COLUMNS = (
    "p.id, v.title, p.reference, v.url, p.classification, p.contact, p.lift_at, p.list_keys, "
    "v.pdf_name, p.state, p.created_at, p.created_by, p.version, p.lift_seq, "
    "p.needs_clearance, p.cleared_at, p.cleared_by, p.cancelled_at, p.cancelled_by, "
    "p.cancel_reason, p.purged_at"
)
PACK_FROM = "packs p JOIN pack_versions v ON v.pack_id = p.id AND v.version = p.version"

ATTEMPT_COLUMNS = "stage_id, email, number, at, outcome, code, reply"

VERSION_COLUMNS = "pack_id, version, title, url, pdf_name, changed, note, changed_by, changed_at"

STAGE_COLUMNS = (
    "id, pack_id, kind, due_at, state, started_at, finished_at, detail, owner, lease_until, "
    "list_keys, wave, base_lift_seq, base_version, old_lift_at, test_address, test_of, report_of"
)

DELIVERY_COLUMNS = (
    "stage_id, pack_id, kind, email, name, list_key, message_id, state, reply, attempts, "
    "created_at, updated_at, version, lift_seq, next_attempt_at, certificate"
)
