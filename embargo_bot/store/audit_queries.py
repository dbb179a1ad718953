"""The audit log's table: append an entry (chained), and read the log back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from embargo_bot.domain.times import to_storage
from embargo_bot.security.audit import GENESIS, AuditEntry, canonical, entry_mac, from_row, head_mac
from embargo_bot.store.core import Connection
from embargo_bot.store.schema import AUDIT_COLUMNS

HEAD = "audit_head"


class AuditQueries(Connection):
    def append_audit(
        self,
        key: bytes,
        *,
        at: datetime,
        actor: str,
        action: str,
        pack_id: str | None,
        detail: Mapping[str, object],
    ) -> AuditEntry:
        """Add an entry after the last one, in the caller's transaction if there is one."""
        with self._write():
            last = self._db.execute(
                "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, previous = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
            plain = json.loads(json.dumps(dict(detail), default=str))
            mac = entry_mac(key, previous, canonical(seq, at, actor, action, pack_id, plain))
            self._db.execute(
                f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, to_storage(at), actor, action, pack_id, json.dumps(plain), mac),
            )
            self.set_meta(HEAD, head_mac(key, seq, mac).encode())
        return AuditEntry(seq, at, actor, action, pack_id, plain, mac)

    def audit_entries(self) -> list[AuditEntry]:
        rows = self._db.execute(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY rowid")
        return [from_row(row) for row in rows]

    def audit_head(self) -> str | None:
        value = self.meta(HEAD)
        return None if value is None else value.decode()
