"""What officials do from the command line: queue, approve, cancel, and look.

Each function checks everything first and changes the store last, in one
conditional transaction, so a refused command changes nothing.
Rescheduling and amending are in ``changes``, previews in ``previews``, and
where a pack stands in ``status``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from embargo_bot.app import App
from embargo_bot.delivery.outgoing import expected_messages
from embargo_bot.domain.errors import InputError, ListError, StoreError
from embargo_bot.domain.packs import (
    NewStage,
    Pack,
    PackContent,
    PackState,
    PackVersion,
    StageKind,
)
from embargo_bot.domain.reports import estimate
from embargo_bot.domain.text_safety import text_problem
from embargo_bot.domain.times import describe_span
from embargo_bot.lists.catalogue import ListCatalogue, load_lists, select_lists, unique_recipients
from embargo_bot.officials.guards import require_not_yet_live
from embargo_bot.officials.identity import current_user
from embargo_bot.officials.intake import QueueRequest, check_request, new_pack_id, read_files
from embargo_bot.officials.sealing import seal

MAX_REASON = 1000


def queue_pack(
    app: App,
    request: QueueRequest,
    *,
    created_by: str,
    on_warning: Callable[[str], None] | None = None,
) -> Pack:
    """Check everything, then store the pack; ``on_warning`` hears what is allowed but odd."""
    return queue_pack_counted(app, request, created_by=created_by, on_warning=on_warning)[0]


def queue_pack_counted(
    app: App,
    request: QueueRequest,
    *,
    created_by: str,
    on_warning: Callable[[str], None] | None = None,
) -> tuple[Pack, ListCatalogue]:
    """Queue a pack; with the lists it was checked against, so nothing reads them again."""
    now = app.clock()
    checked = check_request(
        request,
        read_files(request, max_pdf_mb=app.settings.max_pdf_mb),
        now=now,
        zone=app.settings.zone,
        default_contact=app.sender.address,
        live_domains=app.settings.live_domain_list,
    )
    # Only the lists the pack names: a big list it does not use costs nothing.
    catalogue = load_lists(app.settings.recipients_dir, only=checked.list_keys)
    for wave in checked.waves:
        select_lists(catalogue, wave.list_keys, checked.classification, option=wave.lists_option)
    lists = select_lists(catalogue, checked.list_keys, checked.classification)
    if not unique_recipients(lists):
        raise ListError("the lists named have no recipients between them")
    _check_contact_is_ours(checked.contact, app.sender.domain, catalogue)

    if on_warning is not None:
        for warning in checked.warnings:
            on_warning(warning)
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
            expect_text=checked.expect_text,
            link_check=checked.link_check,
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
        sealed = seal(app.vault, content)
        with app.store.transaction():
            if app.store.add_pack(pack, version, sealed, stages):
                app.audit(
                    "queued",
                    pack.id,
                    actor=created_by,
                    title=pack.title,
                    lift=pack.lift_at,
                    waves=[{"lists": list(w.list_keys), "at": w.at} for w in checked.waves],
                    classification=pack.classification.value,
                    pdf_sha256=hashlib.sha256(content.pdf).hexdigest(),
                )
                return pack, catalogue
    raise StoreError("could not find a free pack id after 5 tries; try again")


def _check_contact_is_ours(contact: str, home_domain: str, catalogue: ListCatalogue) -> None:
    """The contact gets delivery reports naming every partner: keep them in-house.

    It must be at the From address's domain (or below it), or on a valid list.
    """
    domain = contact.rsplit("@", 1)[1].lower()
    home = home_domain.lower()
    if domain == home or domain.endswith("." + home):
        return
    if catalogue.unread:
        catalogue = load_lists(catalogue.directory)  # rare: a contact outside the organisation
    listed = {r.email.casefold() for lst in catalogue.lists.values() for r in lst.recipients}
    if contact.casefold() not in listed:
        raise InputError(
            f"--contact: {contact} gets the delivery reports, which name every partner, so it "
            f"must be at {home_domain} (the From address's domain) or on a recipient list"
        )


def live_warning(app: App, pack: Pack, catalogue: ListCatalogue | None = None) -> str | None:
    """A warning if, at the relay's rate, the live email cannot reach everyone in time."""
    rate = app.settings.smtp_rate
    if rate is None:
        return None  # no limit: nothing to estimate, and no list to read
    if catalogue is None:
        catalogue = load_lists(app.settings.recipients_dir, only=pack.list_keys)
    lists = select_lists(catalogue, pack.list_keys, pack.classification)
    chosen = unique_recipients(lists)
    most = app.settings.smtp_max_recipients
    messages = expected_messages(
        StageKind.LIVE, [(r.email, r.list_key, r.certificate is not None) for r in chosen], most
    )
    takes = estimate(messages, rate)
    if takes is None or takes <= app.settings.live_within:
        return None
    carried = "" if messages == len(chosen) else f" in {messages} messages"
    return (
        f"at {rate} a minute (EMBARGO_BOT_SMTP_RATE), the live email to {len(chosen)} "
        f"recipients{carried} takes {describe_span(takes)}: the last partner hears "
        f"{describe_span(takes)} after the lift, more than EMBARGO_BOT_LIVE_WITHIN "
        f"({describe_span(app.settings.live_within)}). If the relay caps messages, not "
        f"recipients, send up to 50 recipients a message with "
        f"EMBARGO_BOT_SMTP_MAX_RECIPIENTS (now {most})"
    )


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
    with app.store.transaction():
        if not app.store.approve(pack_id, approver, app.clock()):
            raise InputError(f"pack {pack_id} changed while clearing it; check `embargo-bot show`")
        app.audit("approved", pack_id, actor=approver)
    return app.store.get_pack(pack_id)


def cancel_pack(
    app: App, pack_id: str, *, reason: str | None = None, by: str | None = None
) -> Pack:
    """Withdraw a pack: nothing more goes, except a withdrawal to those who hold the notice."""
    pack = app.store.get_pack(pack_id)
    require_not_yet_live(app.store, pack, "withdrawn")
    reason = _check_reason(reason)
    if reason is None and app.store.may_hold_notice(pack_id):
        raise InputError(
            f"partners already hold the notice for {pack_id}: give --reason, which the "
            "withdrawal email tells them"
        )
    follow_up = NewStage(kind=StageKind.WITHDRAWN, due_at=app.clock())
    actor = by or current_user()
    with app.store.transaction():
        if not app.store.withdraw(
            pack, by=actor, reason=reason, now=app.clock(), follow_up=follow_up
        ):
            raise InputError(
                f"pack {pack_id} changed meanwhile; check `embargo-bot show` and retry"
            )
        app.audit("withdrawn", pack_id, actor=actor, reason=reason)
    return app.store.get_pack(pack_id)


def _check_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    cleaned = reason.strip()
    if (problem := text_problem(cleaned, multiline=True)) is not None:
        raise InputError(f"--reason: {problem}")
    if len(cleaned) > MAX_REASON:
        raise InputError(f"--reason: {len(cleaned)} characters is too long (at most {MAX_REASON})")
    return cleaned
