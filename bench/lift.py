"""Lift latency: how soon after the lift instant the live email reaches 1,000 partners."""

from __future__ import annotations

from datetime import timedelta

from errors import BenchError
from figures import Figure
from inprocess import serve_until_closed, stage_of
from postfix_tools import SmtpSink
from workspace import workspace

from embargo_bot.app import open_app
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.domain.times import utc_now

PART = "lift latency"
TARGET_FIRST_MS = 20.0
TARGET_LAST_MS = 1000.0
# The live stage's recipients must first hold the notice, so the notice wave
# (a small PDF here) has to finish before the lift; this leaves room for it.
DEFAULT_LEAD = 6.0


def measure(*, recipients: int = 1000, lead: float = DEFAULT_LEAD) -> list[Figure]:
    with SmtpSink() as sink, workspace(sink.port, recipients=recipients) as space:
        with open_app(space.settings()) as app:
            pack = space.queue(app, pdf_size=0, lift_at=utc_now() + timedelta(seconds=lead))
            serve_until_closed(app, pack.id, StageKind.LIVE, within=lead + 120)
            notice = stage_of(app, pack.id, StageKind.NOTICE)
            live = stage_of(app, pack.id, StageKind.LIVE)
            deliveries = app.store.deliveries(pack.id)
        # The sink's own count just before the lift, less every other message
        # (the notices, a stage report) the service had handed over by then.
        others_before = sum(
            d.kind is not StageKind.LIVE
            and d.state is DeliveryState.SENT
            and d.updated_at < pack.lift_at
            for d in deliveries
        )
        sink_early = sink.messages_before(pack.lift_at.timestamp()) - others_before

    if notice.finished_at is None or notice.finished_at >= pack.lift_at:
        raise BenchError(
            f"the notice wave was still sending at the lift ({notice.state}); "
            f"give a longer --lift-lead than {lead:g} s"
        )
    sent = [d for d in deliveries if d.kind is StageKind.LIVE and d.state is DeliveryState.SENT]
    if not sent:
        raise BenchError(f"the live stage sent nothing ({live.state}: {live.detail})")
    # Delivery.updated_at is stamped when the sink's 250 reply reaches the service.
    after_ms = sorted((d.updated_at - pack.lift_at).total_seconds() * 1000 for d in sent)
    early = sum(ms < 0 for ms in after_ms)
    started_ms = (
        float("nan")
        if live.started_at is None
        else (live.started_at - pack.lift_at).total_seconds() * 1000
    )
    complete = len(sent) == recipients
    return [
        Figure(PART, "live emails accepted / sent to", len(sent), f"/ {recipients:,}"),
        Figure(PART, "live stage claimed after the lift", started_ms, "ms", 1),
        Figure(
            PART,
            "first accepted after the lift",
            after_ms[0],
            "ms",
            1,
            target=f"<= {TARGET_FIRST_MS:g} ms",
            met=0 <= after_ms[0] <= TARGET_FIRST_MS,
        ),
        Figure(
            PART,
            "last accepted after the lift",
            after_ms[-1],
            "ms",
            1,
            target=f"<= {TARGET_LAST_MS:g} ms",
            met=complete and after_ms[-1] <= TARGET_LAST_MS,
        ),
        Figure(PART, "accepted before the lift", early, "", target="0", met=early == 0),
        Figure(
            PART,
            "live counted by the sink before the lift",
            sink_early,
            "",
            target="0",
            met=sink_early == 0,
        ),
    ]
