"""What one attempt to hand a message to the relay came to: the record, with no SMTP in it.

Classifying aiosmtplib's errors into these is ``delivery.smtp_errors``; the
store and the reports need only the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# In a temporary outcome's text: the relay may have the message though it never said so.
AMBIGUOUS = "the relay may or may not have taken it"


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"  # 4xx, a dropped connection, a timeout: worth trying again
    PERMANENT = "permanent"  # 5xx: the relay will not take this message


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    code: int | None
    text: str
    # The relay as a whole failed (no connection, refused the session, stalled),
    # rather than this one message: every connection should wait, not only this one.
    relay_level: bool = False
    # The relay refused the login: a setting to put right, not a network fault.
    login_refused: bool = False

    @property
    def reply(self) -> str:
        """The server's words as recorded for the official."""
        return self.text if self.code is None else f"{self.code} {self.text}"


def accepted(code: int, text: str) -> Outcome:
    return Outcome(OutcomeKind.ACCEPTED, code, text)
