"""The audit log: every action, who and when, each entry chained to the last by HMAC.

An entry's MAC covers its fields and the previous entry's MAC, under a key
kept in the store sealed by the at-rest key; the head (the last sequence
number and MAC) is MACed too. So without the key nobody can edit, delete,
reorder or append an entry, or cut entries off the end, unseen.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from embargo_bot.domain.times import from_storage, to_storage

GENESIS = "0" * 64


class Auditor(Protocol):
    """Records an action in the audit log, for whoever is acting."""

    def __call__(self, action: str, pack_id: str | None, **detail: object) -> None: ...


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    pack_id: str | None
    detail: Mapping[str, object]
    mac: str


def canonical(
    seq: int, at: datetime, actor: str, action: str, pack_id: str | None, detail: object
) -> bytes:
    """The bytes an entry's MAC covers: stable JSON of every field."""
    fields = {
        "seq": seq,
        "at": to_storage(at),
        "actor": actor,
        "action": action,
        "pack": pack_id,
        "detail": detail,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_mac(key: bytes, previous_mac: str, body: bytes) -> str:
    return hmac.new(key, previous_mac.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, mac: str) -> str:
    return hmac.new(key, f"head\n{seq}\n{mac}".encode(), hashlib.sha256).hexdigest()


def verify(entries: Sequence[AuditEntry], key: bytes, head: str | None) -> list[str]:
    """Every way the log differs from what was written; empty when intact."""
    problems: list[str] = []
    previous = GENESIS
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(
                f"entry {entry.seq}: expected entry {expected_seq} here: "
                "entries were deleted or reordered"
            )
        body = canonical(
            entry.seq, entry.at, entry.actor, entry.action, entry.pack_id, dict(entry.detail)
        )
        if not hmac.compare_digest(entry_mac(key, previous, body), entry.mac):
            problems.append(
                f"entry {entry.seq} ({entry.action}, {to_storage(entry.at)}): its MAC does not "
                "match: it was edited, or an entry before it was removed or moved"
            )
        previous = entry.mac
        expected_seq = entry.seq + 1
    last_seq = entries[-1].seq if entries else 0
    if head is None:
        if entries:
            problems.append("the log's head record is missing")
    elif not hmac.compare_digest(head_mac(key, last_seq, previous), head):
        problems.append(
            f"the log ends at entry {last_seq}, but its head record says otherwise: "
            "entries were removed from the end or the head was altered"
        )
    return problems


def to_json(entries: Iterable[AuditEntry]) -> str:
    rows = [
        {**asdict(entry), "at": to_storage(entry.at), "detail": dict(entry.detail)}
        for entry in entries
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False, default=str)


def to_csv(entries: Iterable[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "actor", "action", "pack", "detail", "mac"])
    for entry in entries:
        writer.writerow(
            [
                entry.seq,
                to_storage(entry.at),
                entry.actor,
                entry.action,
                entry.pack_id or "",
                json.dumps(dict(entry.detail), sort_keys=True, default=str),
                entry.mac,
            ]
        )
    return out.getvalue()


def from_row(row: tuple[object, ...]) -> AuditEntry:
    seq, at, actor, action, pack_id, detail, mac = row
    return AuditEntry(
        seq=int(str(seq)),
        at=from_storage(str(at)),
        actor=str(actor),
        action=str(action),
        pack_id=None if pack_id is None else str(pack_id),
        detail=json.loads(str(detail)),
        mac=str(mac),
    )
