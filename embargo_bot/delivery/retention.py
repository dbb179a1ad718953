"""Deleting embargoed material once it is long public: EMBARGO_BOT_RETAIN_DAYS.

The pack, its versions' titles and every delivery record stay (they are the
record an FOI request asks for); the PDF, release and social text go.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from embargo_bot.security.audit import Auditor
from embargo_bot.store import Store


def purge_expired(store: Store, *, now: datetime, retain: timedelta, audit: Auditor) -> list[str]:
    purged = []
    for pack_id in store.purgeable_packs(now - retain):
        with store.transaction():
            if store.purge_pack(pack_id, now):
                audit("material deleted", pack_id, retain_days=retain.days)
                purged.append(pack_id)
    return purged
