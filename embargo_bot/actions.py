"""What officials do from the command line: queue, cancel, preview, and look.

Each function checks everything first and changes the store last, in one
transaction, so a refused command changes nothing.
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from embargo_bot.app import App
from embargo_bot.compose import new_message_id, personalise
from embargo_bot.errors import InputError, ListError, StoreError
from embargo_bot.intake import QueueRequest, check_request, new_pack_id, read_files
from embargo_bot.packs import Delivery, Pack, PackContent, PackState, Stage, StageKind
from embargo_bot.recipients import Recipient, load_lists, select_lists, unique_recipients
from embargo_bot.rendering import check_notice_hides_link
from embargo_bot.store import SealedContent, StageSummary


def current_user() -> str:
    """The OS account running this command: from the process's user id, not the environment."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()


def queue_pack(app: App, request: QueueRequest, *, created_by: str) -> Pack:
    now = app.clock()
    files = read_files(request)
    checked = check_request(
        request,
        files,
        now=now,
        zone=app.settings.zone,
        default_contact=app.sender.address,
    )
    lists = select_lists(
        load_lists(app.settings.recipients_dir), checked.list_keys, checked.classification
    )
    if not unique_recipients(lists):
        raise ListError("the lists named have no recipients between them")

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
        )
        content = PackContent(pdf=checked.pdf, release=checked.release, social=checked.social)
        _render_every_stage(app, pack, content)
        vault = (
            app.vault
        )  # after every check: a refused pack writes nothing, not even the key check
        sealed = SealedContent(
            pdf=vault.seal(content.pdf),
            release=vault.seal(content.release.encode("utf-8")),
            social=None if content.social is None else vault.seal(content.social.encode("utf-8")),
        )
        stages = [(StageKind.NOTICE, checked.notice_at), (StageKind.LIVE, checked.lift_at)]
        if app.store.add_pack(pack, sealed, stages):
            return pack
    raise StoreError("could not find a free pack id after 5 tries; try again")


def _render_every_stage(app: App, pack: Pack, content: PackContent) -> None:
    """Render now what will be sent later, so template and content errors surface at queue."""
    for kind in StageKind:
        context = app.renderer.context(
            pack, content, kind, zone=app.settings.zone, sender_name=app.sender.display_name
        )
        rendered = app.renderer.render(kind, context)
        if kind is StageKind.NOTICE:
            check_notice_hides_link(rendered, pack.url)


def cancel_pack(app: App, pack_id: str) -> Pack:
    pack = app.store.get_pack(pack_id)
    if not app.store.cancel_pack(pack_id, app.clock()):
        raise InputError(f"pack {pack_id} is {pack.state}, so it cannot be cancelled")
    return app.store.get_pack(pack_id)


@dataclass(frozen=True)
class PreviewFile:
    path: Path
    recipient: str


def preview(app: App, pack_id: str, kinds: list[StageKind], out_dir: Path) -> list[PreviewFile]:
    """Write the exact messages each recipient would get, one .eml file each."""
    pack = app.store.get_pack(pack_id)
    runner = app.runner()
    written: list[PreviewFile] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        message = runner.prepare_message(pack, kind)
        for number, (recipient, message_id, date) in enumerate(
            _addressees(app, pack, kind), start=1
        ):
            data = personalise(
                message,
                to_address=recipient.email,
                to_name=recipient.name,
                message_id=message_id,
                date=date,
            )
            path = out_dir / f"{pack.id}-{kind}-{number:03d}-{_file_safe(recipient.email)}.eml"
            path.write_bytes(data)
            written.append(PreviewFile(path=path, recipient=recipient.email))
    return written


def _addressees(app: App, pack: Pack, kind: StageKind) -> list[tuple[Recipient, str, datetime]]:
    """Who a stage goes to: its fixed recipients if it has started, else the lists now."""
    fixed = app.store.deliveries(pack.id, kind)
    if fixed:
        return [(Recipient(d.email, d.name, d.list_key), d.message_id, d.created_at) for d in fixed]
    lists = select_lists(
        load_lists(app.settings.recipients_dir), pack.list_keys, pack.classification
    )
    now = app.clock()
    return [
        (recipient, new_message_id(pack.id, kind, app.sender), now)
        for recipient in unique_recipients(lists)
    ]


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", text)


@dataclass(frozen=True)
class StageStatus:
    stage: Stage
    summary: StageSummary


@dataclass(frozen=True)
class PackStatus:
    pack: Pack
    stages: list[StageStatus]
    deliveries: list[Delivery]

    def next_send(self) -> Stage | None:
        waiting = [s.stage for s in self.stages if s.stage.state.value == "scheduled"]
        return min(waiting, key=lambda stage: stage.due_at, default=None)


def pack_status(app: App, pack_id: str) -> PackStatus:
    store = app.store
    pack = store.get_pack(pack_id)
    stages = [StageStatus(s, store.stage_summary(pack_id, s.kind)) for s in store.stages(pack_id)]
    return PackStatus(pack=pack, stages=stages, deliveries=store.deliveries(pack_id))


def all_statuses(app: App) -> list[PackStatus]:
    return [pack_status(app, pack.id) for pack in app.store.packs()]
