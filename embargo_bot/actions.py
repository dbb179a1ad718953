"""What officials do from the command line: queue, approve, cancel, and look.

Each function checks everything first and changes the store last, in one
conditional transaction, so a refused command changes nothing.
Rescheduling and amending are in ``changes.py``; previews in ``previews.py``.
"""

from __future__ import annotations

import getpass
import os
import pwd
from dataclasses import dataclass

from embargo_bot.app import App
from embargo_bot.errors import InputError, ListError, StoreError
from embargo_bot.intake import QueueRequest, check_request, new_pack_id, read_files
from embargo_bot.packs import (
    Delivery,
    NewStage,
    Pack,
    PackContent,
    PackState,
    PackVersion,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.recipients import load_lists, select_lists, unique_recipients
from embargo_bot.store import SealedContent, StageSummary

MAX_REASON = 1000


def current_user() -> str:
    """The OS account running this command: from the process's user id, not the environment."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()


def seal(app: App, content: PackContent) -> SealedContent:
    vault = app.vault
    return SealedContent(
        pdf=vault.seal(content.pdf),
        release=vault.seal(content.release.encode("utf-8")),
        social=None if content.social is None else vault.seal(content.social.encode("utf-8")),
    )


def queue_pack(app: App, request: QueueRequest, *, created_by: str) -> Pack:
    now = app.clock()
    checked = check_request(
        request,
        read_files(request),
        now=now,
        zone=app.settings.zone,
        default_contact=app.sender.address,
    )
    catalogue = load_lists(app.settings.recipients_dir)
    for wave in checked.waves:
        select_lists(catalogue, wave.list_keys, checked.classification)
    lists = select_lists(catalogue, checked.list_keys, checked.classification)
    if not unique_recipients(lists):
        raise ListError("the lists named have no recipients between them")

    content = PackContent(pdf=checked.pdf, release=checked.release, social=checked.social)
    stages = [
        NewStage(kind=StageKind.NOTICE, due_at=wave.at, list_keys=wave.list_keys, wave=number)
        for number, wave in enumerate(checked.waves, start=1)
    ]
    stages.append(NewStage(kind=StageKind.LIVE, due_at=checked.lift_at))
    for _attempt in range(5):
        pack = Pack(
            id=new_pack_id(checked.title),
            title=checked.title,
            reference=checked.reference,
            url=checked.url,
            classification=checked.classification,
            contact=checked.contact,
            lift_at=checked.lift_at,
            list_keys=checked.list_keys,
            pdf_name=checked.pdf_name,
            state=PackState.ACTIVE,
            created_at=now,
            created_by=created_by,
            needs_clearance=app.settings.require_clearance,
        )
        app.messages.render_every_kind(pack, content)
        version = PackVersion(
            pack_id=pack.id,
            version=1,
            title=pack.title,
            url=pack.url,
            pdf_name=pack.pdf_name,
            changed=(),
            note=None,
            changed_by=created_by,
            changed_at=now,
        )
        # The vault is touched only after every check: a refused pack writes nothing.
        if app.store.add_pack(pack, version, seal(app, content), stages):
            return pack
    raise StoreError("could not find a free pack id after 5 tries; try again")


def approve_pack(app: App, pack_id: str, *, approver: str) -> Pack:
    pack = app.store.get_pack(pack_id)
    if pack.state is not PackState.ACTIVE:
        raise InputError(f"pack {pack_id} is {pack.state}: there is nothing to clear")
    if not pack.needs_clearance:
        raise InputError(f"pack {pack_id} was queued without needing clearance")
    if pack.cleared_at is not None:
        raise InputError(f"pack {pack_id} was already cleared by {pack.cleared_by}")
    if approver == pack.created_by:
        raise InputError(
            f"pack {pack_id} was queued by {approver}: clearance must come from a different "
            "person, signed in as themselves"
        )
    if not app.store.approve(pack_id, approver, app.clock()):
        raise InputError(f"pack {pack_id} changed while clearing it; check `embargo-bot show`")
    return app.store.get_pack(pack_id)


def cancel_pack(
    app: App, pack_id: str, *, reason: str | None = None, by: str | None = None
) -> Pack:
    """Withdraw a pack: nothing more goes, except a withdrawal to those who hold the notice."""
    pack = app.store.get_pack(pack_id)
    require_not_yet_live(app, pack, "withdrawn")
    reason = _check_reason(reason)
    if reason is None and app.store.may_hold_notice(pack_id):
        raise InputError(
            f"partners already hold the notice for {pack_id}: give --reason, which the "
            "withdrawal email tells them"
        )
    follow_up = NewStage(kind=StageKind.WITHDRAWN, due_at=app.clock())
    done = app.store.withdraw(
        pack, by=by or current_user(), reason=reason, now=app.clock(), follow_up=follow_up
    )
    if not done:
        raise InputError(f"pack {pack_id} changed meanwhile; check `embargo-bot show` and retry")
    return app.store.get_pack(pack_id)


def require_not_yet_live(app: App, pack: Pack, what: str) -> None:
    """Refuse a change to a pack that is withdrawn, finished, or already going live."""
    if pack.state is not PackState.ACTIVE:
        raise InputError(f"pack {pack.id} is {pack.state}, so it cannot be {what}")
    live = app.store.stage_of(pack.id, StageKind.LIVE)
    if live.state is not StageState.SCHEDULED:
        raise InputError(
            f"pack {pack.id}'s live email is {live.state}: it is public, so it cannot be {what}"
        )


def _check_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    cleaned = reason.strip()
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in cleaned):
        raise InputError("--reason: must not contain control characters")
    if len(cleaned) > MAX_REASON:
        raise InputError(f"--reason: {len(cleaned)} characters is too long (at most {MAX_REASON})")
    return cleaned


@dataclass(frozen=True)
class StageStatus:
    stage: Stage
    summary: StageSummary


@dataclass(frozen=True)
class PackStatus:
    pack: Pack
    stages: list[StageStatus]
    deliveries: list[Delivery]
    versions: list[PackVersion]

    def next_send(self) -> Stage | None:
        waiting = [s.stage for s in self.stages if s.stage.state is StageState.SCHEDULED]
        return min(waiting, key=lambda stage: stage.due_at, default=None)


def pack_status(app: App, pack_id: str) -> PackStatus:
    store = app.store
    pack = store.get_pack(pack_id)
    stages = [StageStatus(s, store.stage_summary(s.id)) for s in store.stages(pack_id)]
    return PackStatus(
        pack=pack,
        stages=stages,
        deliveries=store.deliveries(pack_id),
        versions=store.versions(pack_id),
    )


def all_statuses(app: App) -> list[PackStatus]:
    return [pack_status(app, pack.id) for pack in app.store.packs()]
