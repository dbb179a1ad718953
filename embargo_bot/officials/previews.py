"""Letting an official see what partners will get: as files, or mailed to a checker."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from embargo_bot.app import App
from embargo_bot.delivery.batches import PendingRecipient, split_into_batches
from embargo_bot.delivery.outgoing import BATCHED_KINDS, plan_messages
from embargo_bot.delivery.rules import message_date
from embargo_bot.domain.errors import InputError
from embargo_bot.domain.packs import (
    OPEN_STAGE_STATES,
    Delivery,
    NewStage,
    Pack,
    PackState,
    Stage,
    StageKind,
)
from embargo_bot.lists.audience import audience, test_recipient
from embargo_bot.lists.catalogue import load_lists
from embargo_bot.lists.parse import Recipient
from embargo_bot.messages.mime import new_message_id

# How long `preview --send-to` waits for a service that took its test send.
TEST_SEND_WAIT = 60.0


@dataclass(frozen=True)
class PreviewFile:
    path: Path
    recipient: str
    stage: str


# Emails to the official, not to partners.
NOT_PREVIEWED = (StageKind.TEST, StageKind.REPORT, StageKind.ALERT)


def preview(app: App, pack_id: str, kinds: list[StageKind], out_dir: Path) -> list[PreviewFile]:
    """Write, for each stage of these kinds, the message each recipient would get now."""
    pack = app.store.get_pack(pack_id)
    written: list[PreviewFile] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for stage in app.store.stages(pack_id):
        if stage.kind not in kinds or stage.kind in NOT_PREVIEWED:
            continue
        built = app.messages.build(pack, stage)
        addressees = _addressees(app, pack, stage)
        shared = _shared_messages(app, stage, addressees)
        for number, (recipient, message_id, date) in enumerate(addressees, start=1):
            message_id, group = shared.get(recipient.email, (message_id, None))
            data = built.copies.personalise(
                to_address=recipient.email,
                to_name=recipient.name,
                message_id=message_id,
                date=message_date(stage.kind, pack, date),
                to_group=group,
            )
            name = f"{pack.id}-{stage.label.replace(' ', '-')}-{number:03d}-"
            path = out_dir / f"{name}{_file_safe(recipient.email)}.eml"
            path.write_bytes(data)
            written.append(PreviewFile(path=path, recipient=recipient.email, stage=stage.label))
    return written


def _addressees(app: App, pack: Pack, stage: Stage) -> list[tuple[Recipient, str, datetime]]:
    """Who a stage goes to: its fixed recipients once started, else who it would be now."""
    fixed = app.store.deliveries(pack.id, stage_id=stage.id)
    if fixed or app.store.is_expanded(stage.id):
        return [(_recipient(d), d.message_id, d.created_at) for d in fixed]
    recipients = audience(
        pack,
        stage,
        catalogue=load_lists(app.settings.recipients_dir),
        holders=app.store.holders(pack.id),
        earlier_waves=_earlier_wave_addresses(app, pack, stage),
    ).recipients
    now = app.clock()
    return [(r, new_message_id(pack.id, stage.kind, app.sender), now) for r in recipients]


def _shared_messages(
    app: App, stage: Stage, addressees: list[tuple[Recipient, str, datetime]]
) -> dict[str, tuple[str, str | None]]:
    """With EMBARGO_BOT_SMTP_MAX_RECIPIENTS above 1: for each address, the Message-ID and
    group To: of the message it goes in, so each file is byte for byte what that partner gets."""
    most = app.settings.smtp_max_recipients
    if most == 1 or stage.kind not in BATCHED_KINDS or not addressees:
        return {}
    catalogue = load_lists(app.settings.recipients_dir)
    names = {key: found.name for key, found in catalogue.lists.items()}
    fixed = app.store.deliveries(stage.pack_id, stage_id=stage.id)
    if fixed:
        messages = plan_messages(fixed, stage.kind, most, names)
        return {d.email: (m.message_id, m.to_group) for m in messages for d in m.deliveries}
    ids = {recipient.email: message_id for recipient, message_id, _ in addressees}
    pending = [
        PendingRecipient(
            r.email, r.list_key, names.get(r.list_key) or r.list_key, r.certificate is not None
        )
        for r, _, _ in addressees
    ]
    return {
        recipient.address: (ids[batch.recipients[0].address], batch.to_group)
        for batch in split_into_batches(pending, most)
        for recipient in batch.recipients
    }


def _earlier_wave_addresses(app: App, pack: Pack, stage: Stage) -> set[str]:
    if stage.kind is not StageKind.NOTICE:
        return set()
    catalogue = load_lists(app.settings.recipients_dir)
    found = app.store.notice_addresses(pack.id, other_than=stage.id)
    for other in app.store.stages(pack.id):
        before = (other.due_at, other.id) < (stage.due_at, stage.id)
        if other.kind is StageKind.NOTICE and before and not app.store.is_expanded(other.id):
            wave = audience(pack, other, catalogue=catalogue, holders=[], earlier_waves=set())
            found |= {r.email.casefold() for r in wave.recipients}
    return found


def _recipient(delivery: Delivery) -> Recipient:
    return Recipient(email=delivery.email, name=delivery.name, list_key=delivery.list_key)


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", text)


async def send_test(
    app: App, pack_id: str, address: str, kinds: list[StageKind], *, by: str
) -> Delivery:
    """Mail the exact messages to one checker on a list, now, and record it.

    The live email is left out before the lift: it carries the public link.
    """
    pack = app.store.get_pack(pack_id)
    if pack.state is not PackState.ACTIVE:
        raise InputError(f"pack {pack_id} is {pack.state}: there is nothing to check")
    recipient = test_recipient(pack, address, load_lists(app.settings.recipients_dir))
    test_of = tuple(kind for kind in kinds if kind in (StageKind.NOTICE, StageKind.LIVE))
    if not test_of:
        raise InputError("--send-to checks the notice and live emails: use --stage notice|live")
    with app.store.transaction():
        stage_id = app.store.add_stage(
            pack_id,
            NewStage(
                kind=StageKind.TEST,
                due_at=app.clock(),
                test_address=recipient.email,
                test_of=test_of,
            ),
        )
        app.audit(
            "test send",
            pack_id,
            actor=by,
            to=recipient.email,
            of=[kind.value for kind in test_of],
        )
    # Sent from here so the official need not wait for the service.
    runner = app.runner()
    try:
        await runner.run(stage_id, asyncio.Event())
    finally:
        await runner.close()  # its store connections and thread, as the service's at a stop
    await _wait_until_closed(app, stage_id)
    deliveries = app.store.deliveries(pack_id, stage_id=stage_id)
    if not deliveries:
        stage = app.store.stage(stage_id)
        raise InputError(f"the test send did not start: {stage.detail or stage.state}")
    return deliveries[0]


async def _wait_until_closed(app: App, stage_id: int) -> None:
    """If a running service claimed the test send first, wait for it to finish."""
    polls = int(TEST_SEND_WAIT / 0.2)
    for _ in range(polls):
        if app.store.stage(stage_id).state not in OPEN_STAGE_STATES:
            return
        await asyncio.sleep(0.2)  # the service is another process: poll the store
