"""Changing a queued pack: reschedule the lift, amend the material.

Partners who already hold the notice are told automatically: each change
adds a follow-up stage ("changed" or "updated") in the same transaction, and
the service sends it at once to exactly those who hold the older word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from embargo_bot.app import App
from embargo_bot.domain.errors import InputError
from embargo_bot.domain.packs import NewStage, Pack, PackContent, PackVersion, StageKind, StageState
from embargo_bot.domain.times import describe, parse_when
from embargo_bot.officials.fields import read_named_files
from embargo_bot.officials.guards import require_not_yet_live
from embargo_bot.officials.intake import (
    AmendRequest,
    CheckedAmend,
    check_amend,
    check_wave_times,
    parse_wave,
)
from embargo_bot.officials.sealing import seal
from embargo_bot.officials.waves import plan_wave_changes

_RACE = "changed while you were changing it; check `embargo-bot show` and try again"


def reschedule_pack(
    app: App, pack_id: str, *, lift: str, waves: tuple[str, ...] = (), by: str
) -> Pack:
    """Move the lift, and with ``waves`` the named lists' notice waves not yet started.

    Waves not named keep their time (``officials.waves`` says what naming does).
    """
    pack = app.store.get_pack(pack_id)
    require_not_yet_live(app.store, pack, "rescheduled")
    now, zone = app.clock(), app.settings.zone
    problems: list[str] = []
    lift_at: datetime | None = parse_when(lift, zone, field="--lift")
    if lift_at is not None and lift_at <= now:
        problems.append(f"--lift: {describe(lift_at, zone)} is in the past")
        lift_at = None
    notice_stages = [s for s in app.store.stages(pack_id) if s.kind is StageKind.NOTICE]
    still_to_go = {
        s.id
        for s in notice_stages
        if s.state is StageState.SCHEDULED and not app.store.is_expanded(s.id)
    }
    parsed = [parse_wave(text, now=now, zone=zone, problems=problems) for text in waves]
    planned = [wave for wave in parsed if wave is not None]
    check_wave_times(planned, lift_at, zone=zone, problems=problems)
    changes = plan_wave_changes(
        notice_stages, still_to_go, planned, lift_at=lift_at, zone=zone, problems=problems
    )
    if problems or lift_at is None:
        raise InputError("cannot reschedule:\n" + "\n".join(f"  {p}" for p in problems))

    first_new = max((s.wave or 0 for s in notice_stages), default=0) + 1
    with app.store.transaction():
        done = app.store.reschedule(
            pack,
            lift_at=lift_at,
            moved_waves=changes.moved,
            new_waves=[
                NewStage(StageKind.NOTICE, wave.at, list_keys=wave.list_keys, wave=number)
                for number, wave in enumerate(
                    sorted(changes.split_off, key=lambda w: w.at), start=first_new
                )
            ],
            follow_up=NewStage(
                StageKind.CHANGED, now, base_lift_seq=pack.lift_seq, old_lift_at=pack.lift_at
            ),
        )
        if not done:
            raise InputError(f"pack {pack_id} {_RACE}")
        app.audit(
            "rescheduled",
            pack_id,
            actor=by,
            old_lift=pack.lift_at,
            new_lift=lift_at,
            new_waves=[{"lists": list(w.list_keys), "at": w.at} for w in planned],
        )
    return app.store.get_pack(pack_id)


def amend_pack(
    app: App,
    pack_id: str,
    request: AmendRequest,
    *,
    by: str,
    on_warning: Callable[[str], None] | None = None,
) -> Pack:
    """Store a new version; holders of the notice get an "updated" email with it."""
    pack = app.store.get_pack(pack_id)
    require_not_yet_live(app.store, pack, "amended")
    checked = check_amend(
        request,
        read_named_files(
            pdf=request.pdf,
            release=request.release,
            social=request.social,
            max_pdf_mb=app.settings.max_pdf_mb,
        ),
        live_url=pack.url,
        live_domains=app.settings.live_domain_list,
    )
    if on_warning is not None:
        for warning in checked.warnings:
            on_warning(warning)
    current = app.messages.content(pack)
    checked = _drop_unchanged(checked, pack, current)
    if not checked.changed:
        raise InputError(
            f"nothing to amend: everything given is the same as version {pack.version} of "
            f"{pack_id}, so partners are not sent an update"
        )
    content = PackContent(
        pdf=checked.pdf if checked.pdf is not None else current.pdf,
        release=checked.release if checked.release is not None else current.release,
        social=checked.social if checked.social is not None else current.social,
    )
    amended = replace(
        pack,
        version=pack.version + 1,
        title=checked.title or pack.title,
        url=checked.url or pack.url,
        pdf_name=checked.pdf_name or pack.pdf_name,
    )
    app.messages.render_every_kind(amended, content)
    version = PackVersion(
        pack_id=pack.id,
        version=amended.version,
        title=amended.title,
        url=amended.url,
        pdf_name=amended.pdf_name,
        changed=checked.changed,
        note=checked.note,
        changed_by=by,
        changed_at=app.clock(),
    )
    follow_up = NewStage(StageKind.UPDATED, app.clock(), base_version=pack.version)
    sealed = seal(app.vault, content)
    with app.store.transaction():
        if not app.store.amend(pack, version, sealed, follow_up):
            raise InputError(f"pack {pack_id} {_RACE}")
        app.audit(
            "amended",
            pack_id,
            actor=by,
            version=version.version,
            changed=list(version.changed),
            note=version.note,
            pdf_sha256=hashlib.sha256(content.pdf).hexdigest(),
        )
    return app.store.get_pack(pack_id)


def _drop_unchanged(checked: CheckedAmend, pack: Pack, current: PackContent) -> CheckedAmend:
    """Only what differs from the current version: the rest is not a change partners hear of."""
    same_pdf = checked.pdf == current.pdf and checked.pdf_name in (None, pack.pdf_name)
    return replace(
        checked,
        title=None if checked.title == pack.title else checked.title,
        url=None if checked.url == pack.url else checked.url,
        pdf=None if same_pdf else checked.pdf,
        pdf_name=None if same_pdf else checked.pdf_name,
        release=None if checked.release == current.release else checked.release,
        social=None if checked.social == current.social else checked.social,
    )
