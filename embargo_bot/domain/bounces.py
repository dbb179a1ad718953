"""What a partner's server reported after the relay accepted a message.

Records only: the parsing and matching are in ``bounces``, the storing in
``store``. The alert text is here, pure, so the contact's alert email and the
stage's ``detail`` say the same thing.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime

VERP_TOKEN_BYTES = 10  # 80 bits: 16 characters of lower-case base32


@dataclass(frozen=True)
class ServerReport:
    """One partner server's words about one delivery: a bounce or a delay."""

    status: str  # RFC 3463, e.g. "5.1.1"
    diagnostic: str  # the server's words, one line; "" when it gave none
    at: datetime  # when embargo-bot read it

    @property
    def words(self) -> str:
        return f"{self.status} {self.diagnostic}".strip()


@dataclass(frozen=True)
class DeliveryRow:
    """The store's identity of one delivery, for matching a report to it."""

    order: int  # insertion order, unique in the store
    stage_id: int
    pack_id: str
    kind: str  # the StageKind value
    email: str


@dataclass(frozen=True)
class BounceNote:
    """What to record of one matched recipient of a notification."""

    stage_id: int
    email: str
    failed: bool  # False: delayed, recorded without changing the delivery's state
    status: str
    diagnostic: str


@dataclass(frozen=True)
class Bounced:
    """A delivery that became bounced by applying a notification: the contact is told."""

    pack_id: str
    stage_id: int
    kind: str
    email: str
    name: str | None
    list_key: str
    report: ServerReport


@dataclass(frozen=True)
class BouncedAddress:
    """``lists bounces``: an address that bounced, where it is listed, and how often."""

    email: str
    list_key: str
    last: ServerReport
    packs: int


def new_verp_token() -> str:
    """A fresh random token for one delivery (see ``bounces.verp``)."""
    return base64.b32encode(secrets.token_bytes(VERP_TOKEN_BYTES)).decode("ascii").lower()


_MESSAGE_WORDS = {
    "notice": "the embargoed notice",
    "live": "the live email",
    "changed": "the 'embargo changed' email",
    "updated": "the updated pack",
    "withdrawn": "the withdrawal",
}
# An alert stage's detail starts so when it is about a bounce (not a held wave).
BOUNCE_NOTE = "bounced: "


def alert_words(bounced: Bounced) -> str:
    """The alert's one line, also its stage's detail: who did not get which message,
    from which list, and the partner's server's words."""
    who = f"{bounced.name} <{bounced.email}>" if bounced.name else bounced.email
    what = _MESSAGE_WORDS.get(bounced.kind, f"the {bounced.kind} email")
    return (
        f"{BOUNCE_NOTE}{what} to {who} (list {bounced.list_key}) was refused by "
        f"their mail server: {bounced.report.words}"
    )


def is_bounce_alert(detail: str | None) -> bool:
    return detail is not None and detail.startswith(BOUNCE_NOTE)
