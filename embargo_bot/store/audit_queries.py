"""The audit log's table: append an entry (chained), and read the log back.

One chain, whoever writes: on PostgreSQL an advisory lock held to the end of
the writer's transaction makes appends take turns (SQLite's write lock does
that already), so no two entries can follow the same head.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select, text

from embargo_bot.domain.times import to_storage
from embargo_bot.security.audit import GENESIS, AuditEntry, canonical, entry_mac, from_row, head_mac
from embargo_bot.store.core import StoreCore
from embargo_bot.store.tables import AUDIT_COLUMNS, audit

HEAD = "audit_head"
_CHAIN_LOCK = 0x61756469  # any constant: names "the audit chain" among advisory locks


class AuditQueries(StoreCore):
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
        with self._write() as connection:
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
            last = connection.execute(
                select(audit.c.seq, audit.c.mac).order_by(audit.c.seq.desc()).limit(1)
            ).first()
            seq, previous = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
            plain = json.loads(json.dumps(dict(detail), default=str))
            mac = entry_mac(key, previous, canonical(seq, at, actor, action, pack_id, plain))
            connection.execute(
                audit.insert().values(
                    seq=seq,
                    at=to_storage(at),
                    actor=actor,
                    action=action,
                    pack_id=pack_id,
                    detail=json.dumps(plain),
                    mac=mac,
                )
            )
            self.set_meta(HEAD, head_mac(key, seq, mac).encode())
        return AuditEntry(seq, at, actor, action, pack_id, plain, mac)

    def audit_entries(self) -> list[AuditEntry]:
        found = self._rows(select(*AUDIT_COLUMNS).order_by(audit.c.seq))
        return [from_row(tuple(row)) for row in found]

    def audit_head(self) -> str | None:
        value = self.meta(HEAD)
        return None if value is None else value.decode()
