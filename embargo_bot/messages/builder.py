"""The message a stage sends: its pack's current content, rendered and composed once.

Used by the sender, by ``preview`` (so a preview is byte for byte what goes)
and by ``queue``/``amend``, which render every kind of email up front so that
a template or content problem is found before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from embargo_bot.domain.bounces import is_bounce_alert
from embargo_bot.domain.errors import StoreError
from embargo_bot.domain.packs import Pack, PackContent, PackVersion, Stage, StageKind
from embargo_bot.domain.reports import Failure, StageReport, summarise
from embargo_bot.domain.times import Clock
from embargo_bot.messages.calendar import lift_event
from embargo_bot.messages.link_alerts import early_alert
from embargo_bot.messages.mime import (
    Enclosure,
    MessageCopies,
    Sender,
    StageMessage,
    build_stage_message,
    new_message_id,
    personalise,
)
from embargo_bot.messages.rendering import (
    CALENDAR_KINDS,
    MATERIAL_KINDS,
    RELEASE_KINDS,
    Renderer,
    StageFacts,
    check_notice_hides_link,
)
from embargo_bot.security.vault import Vault
from embargo_bot.store import Store

# S/MIME (cryptography's X.509 and PKCS #7) is imported only to sign: `queue` without
# a signing key need not pay for it.
if TYPE_CHECKING:
    from embargo_bot.security.smime import Signer


@dataclass(frozen=True)
class BuiltMessage:
    """A stage's shared message, and what it tells holders (recorded per delivery)."""

    copies: MessageCopies
    version: int | None
    lift_seq: int | None


def held_part(report: StageReport) -> StageReport:
    """An alert tells only why lists are held, not how the rest of the wave went."""
    detail = report.detail or ""
    start = detail.find("lists held")
    return replace(report, detail=detail[start:] if start >= 0 else detail)


class MessageBuilder:
    def __init__(
        self,
        *,
        store: Store,
        vault: Vault,
        renderer: Renderer,
        sender: Sender,
        zone: ZoneInfo,
        clock: Clock,
        signer: Signer | None = None,
    ) -> None:
        self.signer = signer
        self.store = store
        self.vault = vault
        self.renderer = renderer
        self.sender = sender
        self.zone = zone
        self.clock = clock

    def content(self, pack: Pack) -> PackContent:
        if pack.purged_at is not None:
            raise StoreError(
                f"pack {pack.id}'s material was deleted on {pack.purged_at:%Y-%m-%d} "
                "under EMBARGO_BOT_RETAIN_DAYS; only its records remain"
            )
        sealed = self.store.sealed_content(pack.id, pack.version)
        return PackContent(
            pdf=self.vault.open(sealed.pdf),
            release=self.vault.open(sealed.release).decode("utf-8"),
            social=None if sealed.social is None else self.vault.open(sealed.social).decode(),
        )

    def build(self, pack: Pack, stage: Stage) -> BuiltMessage:
        kind = stage.kind
        content = self.content(pack) if kind in RELEASE_KINDS else None
        facts = StageFacts(
            old_lift_at=stage.old_lift_at,
            changes=self._changes_since(pack, stage.base_version),
            test_of=stage.test_of,
            live_withheld=StageKind.LIVE in stage.test_of and self.clock() < pack.lift_at,
            report=None if stage.report_of is None else self.report_of(pack, stage.report_of),
            # A link-check alert's words: a bounce's and a held wave's are told apart.
            alert=stage.detail
            if kind is StageKind.ALERT
            and stage.report_of is None
            and not is_bounce_alert(stage.detail)
            else None,
        )
        if kind is StageKind.ALERT and is_bounce_alert(stage.detail):
            facts = replace(facts, bounce=stage.detail)
        elif kind is StageKind.ALERT and facts.report is not None:
            facts = replace(facts, report=held_part(facts.report))
        enclosures = self._enclosures(pack, stage) if kind is StageKind.TEST else ()
        message = self.compose(pack, kind, content, facts=facts, seed=stage, enclosures=enclosures)
        holding = kind in (StageKind.NOTICE, StageKind.UPDATED, StageKind.CHANGED)
        return BuiltMessage(
            copies=MessageCopies(message),
            version=pack.version if kind in MATERIAL_KINDS else None,
            lift_seq=pack.lift_seq if holding else None,
        )

    def compose(
        self,
        pack: Pack,
        kind: StageKind,
        content: PackContent | None,
        *,
        facts: StageFacts,
        seed: Stage | str,
        enclosures: tuple[Enclosure, ...] = (),
    ) -> StageMessage:
        context = self.renderer.context(
            pack, content, kind, zone=self.zone, sender_name=self.sender.display_name, facts=facts
        )
        rendered = self.renderer.render(kind, context)
        if kind is not StageKind.LIVE:
            check_notice_hides_link(rendered, pack.url)
        if isinstance(seed, Stage):
            stamp, boundary_seed = seed.due_at, f"{seed.id}/v{pack.version}/l{pack.lift_seq}"
        else:
            stamp, boundary_seed = pack.created_at, seed
        calendar = None
        if kind in CALENDAR_KINDS:
            calendar = lift_event(
                pack,
                sender_domain=self.sender.domain,
                stamp=stamp,
                lift_words=context.lift_words,
                cancelled=kind is StageKind.WITHDRAWN,
            )
        message = build_stage_message(
            pack,
            kind,
            rendered,
            sender=self.sender,
            boundary_seed=boundary_seed,
            pdf=None if content is None or kind not in MATERIAL_KINDS else content.pdf,
            calendar=calendar,
            cancel_calendar=kind is StageKind.WITHDRAWN,
            enclosures=enclosures,
        )
        if self.signer is None:
            return message
        from embargo_bot.security.smime import sign_entity

        # Signed once per stage: the signature covers the body every recipient shares.
        return replace(message, body=sign_entity(message.body, self.signer))

    def render_every_kind(self, pack: Pack, content: PackContent) -> None:
        """Render every kind of email for this pack now, so problems surface before storing."""
        sample_change = PackVersion(
            pack_id=pack.id,
            version=pack.version,
            title=pack.title,
            url=pack.url,
            pdf_name=pack.pdf_name,
            changed=("release",),
            note="(example note)",
            changed_by=pack.created_by,
            changed_at=pack.created_at,
        )
        sample_report = StageReport(
            label="notice wave 1",
            due_at=pack.created_at,
            state="done",
            detail="1 sent, 1 failed",
            recipients=2,
            sent=1,
            failed=1,
            pending=0,
            first_after=None,
            last_after=None,
            failures=(Failure(email="someone@example.org", reply="550 (example)"),),
        )
        facts = StageFacts(
            old_lift_at=pack.lift_at,
            changes=(sample_change,),
            test_of=(StageKind.NOTICE, StageKind.LIVE),
            report=sample_report,
            alert=early_alert(
                seen="HTTP 200",
                checked_at=pack.lift_at,
                lift_at=pack.lift_at,
                expect_text=pack.expect_text,
                zone=self.zone,
            ).detail,
        )
        for kind in StageKind:
            self.compose(pack, kind, content, facts=facts, seed="check")
        # An alert of a held wave has no words of its own: its template's other half.
        self.compose(pack, StageKind.ALERT, content, facts=replace(facts, alert=None), seed="check")

    def report_of(self, pack: Pack, stage_id: int) -> StageReport:
        return summarise(
            self.store.stage(stage_id), self.store.deliveries(pack.id, stage_id=stage_id)
        )

    def _changes_since(self, pack: Pack, base_version: int | None) -> tuple[PackVersion, ...]:
        if base_version is None:
            return ()
        return tuple(v for v in self.store.versions(pack.id) if v.version > base_version)

    def _enclosures(self, pack: Pack, stage: Stage) -> tuple[Enclosure, ...]:
        """The exact messages a partner would get, addressed to the tester."""
        address = stage.test_address or ""
        enclosed = []
        for kind in stage.test_of:
            if kind is StageKind.LIVE and self.clock() < pack.lift_at:
                continue  # the live email carries the public link: never before the lift
            content = self.content(pack) if kind in RELEASE_KINDS else None
            message = self.compose(pack, kind, content, facts=StageFacts(), seed=f"test-{kind}")
            data = personalise(
                message,
                to_address=address,
                to_name=None,
                message_id=new_message_id(pack.id, kind, self.sender),
                date=stage.due_at,
            )
            enclosed.append(Enclosure(file_name=f"{pack.id}-{kind}.eml", data=data))
        return tuple(enclosed)
