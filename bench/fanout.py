"""Capped-relay fan-out: 150 partners behind a relay that takes 30 messages a minute.

Issue 12's target: with ``EMBARGO_BOT_SMTP_MAX_RECIPIENTS=50`` and
``EMBARGO_BOT_SMTP_RATE=30`` every live email is accepted within 10 s of the
lift (one message per recipient takes about 5 minutes). The relay is aiosmtpd
on 127.0.0.1 keeping the cap itself: over 30 messages in a minute it answers
451 at MAIL FROM, as Microsoft 365 does, so a service that went faster would
show refusals, not a better figure.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from errors import BenchError
from figures import Figure
from inprocess import serve_until_closed, stage_of
from workspace import workspace

from embargo_bot.app import open_app
from embargo_bot.devtools.standin_relay import CapturingHandler, StandInRelay
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.domain.times import utc_now
from embargo_bot.settings import load_settings

PART = "capped-relay fan-out"
PARTNERS = 150
CAP_PER_MINUTE = 30
MAX_RECIPIENTS = 50
TARGET_LAST_S = 10.0
# The notice (3 messages, 2 s apart) and its report go first, through the same cap.
LEAD = 10.0


class CappedHandler(CapturingHandler):
    """Takes at most ``per_minute`` messages in any 60 s; over that, 451 at MAIL FROM."""

    def __init__(self, per_minute: int) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.refused = 0
        self._taken: list[float] = []
        self._cap = threading.Lock()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        now = time.monotonic()
        with self._cap:
            if sum(now - at < 60 for at in self._taken) >= self.per_minute:
                self.refused += 1
                return "451 4.7.0 SubmissionQuotaExceeded: too many messages a minute"
            self._taken.append(now)
        envelope.mail_from = address
        return "250 OK"


def measure() -> list[Figure]:
    handler = CappedHandler(CAP_PER_MINUTE)
    with StandInRelay(handler) as relay, workspace(relay.port, recipients=PARTNERS) as space:
        settings = load_settings(
            _env_file=None,
            **space.setting_values(),
            smtp_rate=str(CAP_PER_MINUTE),
            smtp_max_recipients=str(MAX_RECIPIENTS),
        )
        with open_app(settings) as app:
            pack = space.queue(app, pdf_size=0, lift_at=utc_now() + timedelta(seconds=LEAD))
            serve_until_closed(app, pack.id, StageKind.LIVE, within=LEAD + 60)
            live = stage_of(app, pack.id, StageKind.LIVE)
            sent = [
                d
                for d in app.store.deliveries(pack.id, stage_id=live.id)
                if d.state is DeliveryState.SENT
            ]
        received = [item for item in relay.received if b"X-Embargo-Stage: live" in item.data]

    if not received:
        raise BenchError(f"the live stage sent nothing ({live.state}: {live.detail})")
    # By the relay's clock: when it accepted each live message.
    after = sorted((item.received_at - pack.lift_at).total_seconds() for item in received)
    carried = sum(len(item.rcpt_tos) for item in received)
    complete = len(sent) == PARTNERS and carried == PARTNERS
    return [
        Figure(PART, "live emails accepted / partners", carried, f"/ {PARTNERS}"),
        Figure(PART, f"messages at up to {MAX_RECIPIENTS} recipients", len(received), ""),
        Figure(PART, "first live message accepted after the lift", after[0], "s", 3),
        Figure(
            PART,
            f"last live email accepted after the lift ({CAP_PER_MINUTE}/min relay)",
            after[-1],
            "s",
            2,
            target=f"<= {TARGET_LAST_S:g} s",
            met=complete and after[0] >= 0 and after[-1] <= TARGET_LAST_S,
        ),
        Figure(
            PART,
            "messages refused by the relay's cap",
            handler.refused,
            "",
            target="0",
            met=handler.refused == 0,
        ),
    ]
