"""The words of the alerts the link check sends the pack's contact: pure, for any design.

Each alert is a headline (for the subject) and a body (plain text, paragraphs split by a
blank line). They travel in the alert stage's `detail` as "headline\\n\\nbody", so a resumed
service sends the words decided when the check was made. The live URL is never in them:
an alert before the lift must not carry the link, and what the checker saw can name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from embargo_bot.domain.times import describe, describe_span

_ADDRESS = re.compile(r"https?://\S+", re.IGNORECASE)


@dataclass(frozen=True)
class AlertWords:
    headline: str
    body: str

    @property
    def detail(self) -> str:
        return f"{self.headline}\n\n{self.body}"

    @classmethod
    def from_detail(cls, detail: str | None) -> AlertWords:
        headline, _, body = (detail or "").partition("\n\n")
        return cls(headline=headline.strip() or "Alert", body=body.strip())


def seen_at(seen: str, checked_at: datetime, zone: ZoneInfo) -> str:
    """'HTTP 404 at 11:00:00 GMT': what the check saw and when, to the second."""
    local = checked_at.astimezone(zone)
    return f"{_ADDRESS.sub('(address left out)', seen)} at {local:%H:%M:%S} {local.tzname()}"


def _expected(expect_text: str | None) -> str:
    if expect_text is None:
        return "answer 200"
    return f"answer 200 and contain {expect_text!r}"


def not_live_alert(
    *,
    seen: str,
    checked_at: datetime,
    lift_at: datetime,
    wait: timedelta,
    expect_text: str | None,
    pack_id: str,
    zone: ZoneInfo,
) -> AlertWords:
    return AlertWords(
        headline="the live page is not up; the live email is waiting",
        body="\n\n".join(
            [
                f"The embargo lifted at {describe(lift_at, zone)}, but the publication page "
                f"did not {_expected(expect_text)}: {seen_at(seen, checked_at, zone)}.",
                "Partners have NOT been sent the live link.",
                "The service checks the page every few seconds and sends the live email to "
                "every partner as soon as it answers, for up to "
                f"{describe_span(wait)} after the lift.",
                "If the page cannot be published, or is live but behind a login, send the "
                f"live email without the check: embargo-bot release {pack_id}",
            ]
        ),
    )


def ran_out_alert(
    *,
    seen: str,
    checked_at: datetime,
    lift_at: datetime,
    wait: timedelta,
    expect_text: str | None,
    pack_id: str,
    zone: ZoneInfo,
) -> AlertWords:
    return AlertWords(
        headline="the live page is still not up; the live email is held",
        body="\n\n".join(
            [
                f"The publication page still did not {_expected(expect_text)} "
                f"{describe_span(wait)} after the lift ({describe(lift_at, zone)}): "
                f"{seen_at(seen, checked_at, zone)}.",
                "Partners have NOT been sent the live link, and the service has stopped "
                "checking the page.",
                f"Once the page is up, send the live email: embargo-bot release {pack_id}",
            ]
        ),
    )


def early_alert(
    *,
    seen: str,
    checked_at: datetime,
    lift_at: datetime,
    expect_text: str | None,
    zone: ZoneInfo,
) -> AlertWords:
    shown = "answered 200" if expect_text is None else f"answered 200 with {expect_text!r}"
    return AlertWords(
        headline="the publication may be out before the embargo lifts",
        body="\n\n".join(
            [
                f"The publication page {shown} before the lift: "
                f"{seen_at(seen, checked_at, zone)}. The embargo lifts at "
                f"{describe(lift_at, zone)}.",
                "The material may be public early: check with the publishing team.",
                "Nothing else changes: partners get the live email at the lift, not before.",
            ]
        ),
    )
