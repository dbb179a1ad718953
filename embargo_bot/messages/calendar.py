"""The iCalendar (RFC 5545) event for a pack's lift, that mail clients offer to add.

One event per pack (one UID); each change partners are told of raises its
SEQUENCE, and a withdrawal cancels it (RFC 5546 METHOD:CANCEL). The event
never carries the live link: that would put it in partners' hands early.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar

from embargo_bot.domain.packs import Pack

PRODUCT_ID = "-//embargo-bot//lift event//EN"
# A short block, so the lift shows in a day view without claiming anyone's time.
DURATION = timedelta(minutes=15)


def event_uid(pack: Pack, sender_domain: str) -> str:
    return f"embargo-{pack.id}@{sender_domain}"


def lift_event(
    pack: Pack,
    *,
    sender_domain: str,
    stamp: datetime,
    lift_words: str,
    cancelled: bool = False,
) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = icalendar.Event()
    event.add("uid", event_uid(pack, sender_domain))
    # A cancellation must carry a higher SEQUENCE than the event it cancels.
    event.add("sequence", pack.calendar_sequence + (1 if cancelled else 0))
    event.add("dtstamp", stamp)
    event.add("dtstart", pack.lift_at)
    event.add("duration", DURATION)
    event.add("summary", f"Embargo lifts: {pack.title}")
    event.add("description", _description(pack, lift_words, cancelled=cancelled))
    event.add("organizer", f"mailto:{pack.contact}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT")
    event.add("class", "CONFIDENTIAL")
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def _description(pack: Pack, lift_words: str, *, cancelled: bool) -> str:
    marking = pack.classification.value
    if cancelled:
        return (
            f"{marking}\n{pack.title} has been withdrawn. Do not publish it, and delete the "
            f"embargoed material.\nQuestions: {pack.contact}"
        )
    reference = f" ({pack.reference})" if pack.reference else ""
    return (
        f"{marking}\nThe embargo on {pack.title}{reference} lifts at {lift_words}. "
        "The public link will be emailed to you at that time.\n"
        f"Questions: {pack.contact}"
    )
