"""A pack's recipients in `show`: a summary per stage, or (`--recipients`) every one."""

from __future__ import annotations

from rich.text import Text

from embargo_bot.cli.records import Field, Records
from embargo_bot.domain.packs import DeliveryState
from embargo_bot.domain.reports import describe_offset, lateness
from embargo_bot.officials.status import PackStatus

_STATE_STYLES = {
    DeliveryState.PENDING: "cyan",
    DeliveryState.SENT: "green",
    DeliveryState.FAILED: "bold red",
    DeliveryState.CANCELLED: "red",
}

# Failures named per stage in the summary; `show --recipients` lists every one.
FAILURES_SHOWN = 5


def recipient_table(status: PackStatus) -> Records:
    """Every recipient of every stage: long for big lists, so only on request."""
    table = Records(
        "Recipients",
        [
            Field("Recipient"),
            Field("Stage"),
            Field("State"),
            Field("Tries"),
            Field("Late by"),
            Field("Server's reply", wraps=True),
        ],
    )
    stages = {item.stage.id: item.stage for item in status.stages}
    for delivery in status.deliveries:
        stage = stages[delivery.stage_id]
        table.add_row(
            delivery.email,
            stage.label,
            Text(delivery.state.value, style=_STATE_STYLES.get(delivery.state, "")),
            str(delivery.attempts),
            describe_offset(lateness(delivery, stage)),
            delivery.reply or "",
        )
    return table


def recipient_summary(status: PackStatus) -> Records:
    """Per stage: how many in each state, the slowest accepted, and the first failures.

    A row per recipient takes rich seconds for a list of thousands.
    """
    table = Records(
        "Recipients (`show PACK --recipients` lists every one)",
        [
            Field("Stage"),
            Field("Recipients"),
            Field("Sent"),
            Field("Failed"),
            Field("Pending"),
            Field("Slowest", wraps=True),
            Field("Failures", wraps=True),
        ],
    )
    for item in status.stages:
        report = item.report
        if not report.recipients:
            continue
        failures = [f"{f.email}: {f.reply}" for f in report.failures[:FAILURES_SHOWN]]
        if len(report.failures) > FAILURES_SHOWN:
            failures.append(f"and {len(report.failures) - FAILURES_SHOWN} more")
        table.add_row(
            item.stage.label,
            str(report.recipients),
            str(report.sent),
            str(report.failed),
            str(report.pending),
            "-"
            if report.slowest is None
            else f"{report.slowest} {describe_offset(report.last_after)}",
            "; ".join(failures) or "-",
        )
    return table
