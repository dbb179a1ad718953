"""Turning a pack into the words of each email, from Jinja2 templates.

Each kind of email has three templates in the templates folder:
``KIND.subject.j2``, ``KIND.txt.j2`` (plain text) and ``KIND.html.j2``
(autoescaped). Unknown variables are errors (StrictUndefined), so a broken
template is found when a pack is queued or previewed, not at send time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from embargo_bot.domain.errors import InputError, TemplateError
from embargo_bot.domain.packs import Pack, PackContent, PackVersion, StageKind, marking_for
from embargo_bot.domain.reports import Failure, StageReport, describe_offset
from embargo_bot.domain.text_safety import header_problem
from embargo_bot.domain.times import describe, describe_clock
from embargo_bot.messages.links import find_live_link
from embargo_bot.messages.placeholders import Placeholders

# Kinds whose email carries the embargoed material itself.
MATERIAL_KINDS = (StageKind.NOTICE, StageKind.UPDATED)
# Kinds whose email carries the release and social post: the live email too, with every
# live-link placeholder pointing at the public URL, ready to publish as it is.
RELEASE_KINDS = (*MATERIAL_KINDS, StageKind.LIVE)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Change:
    """One amendment, as the updated email lists it."""

    version: int
    changed: tuple[str, ...]
    note: str | None
    changed_by: str
    when: str


@dataclass(frozen=True)
class ReportContext:
    """A finished stage, as the delivery report to the official tells it."""

    stage: str
    due_words: str
    state: str
    detail: str | None
    recipients: int
    sent: int
    failed: int
    pending: int
    first_after: str
    last_after: str
    failures: tuple[Failure, ...]
    not_sent: tuple[Failure, ...]
    everyone_reached: bool


@dataclass(frozen=True)
class EmailContext:
    """Everything a template may use. Only the live email's context has the URL,
    so no other template can leak the link before the lift."""

    kind: str
    pack_id: str
    title: str
    reference: str | None
    marking: str
    lift_words: str
    lift_iso: str
    contact: str
    sender_name: str
    version: int
    pdf_name: str | None = None
    url: str | None = None
    release_text: str | None = None
    release_html: Markup | None = None
    social_text: str | None = None
    old_lift_words: str | None = None
    changes: tuple[Change, ...] = ()
    reason: str | None = None
    test_of: tuple[str, ...] = ()
    live_withheld: bool = False
    has_calendar: bool = False
    report: ReportContext | None = None


@dataclass(frozen=True)
class _ReleaseTexts:
    release_text: str | None
    release_html: Markup | None
    social_text: str | None


@dataclass(frozen=True)
class StageFacts:
    """What a stage adds to the pack for its email."""

    old_lift_at: datetime | None = None
    changes: tuple[PackVersion, ...] = ()
    test_of: tuple[StageKind, ...] = ()
    live_withheld: bool = False
    report: StageReport | None = None


class Renderer:
    def __init__(self, templates_dir: Path, *, fallback_dir: Path | None = None) -> None:
        search_path = [str(templates_dir)]
        if fallback_dir is not None and fallback_dir != templates_dir:
            search_path.append(str(fallback_dir))
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search_path),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            keep_trailing_newline=True,
        )
        # Renders releases as "js-default" does: raw HTML left out, a release is text
        # from an official, not markup.
        self._placeholders = Placeholders()

    def context(
        self,
        pack: Pack,
        content: PackContent | None,
        kind: StageKind,
        *,
        zone: ZoneInfo,
        sender_name: str,
        facts: StageFacts | None = None,
    ) -> EmailContext:
        facts = facts or StageFacts()
        with_material = kind in MATERIAL_KINDS and content is not None
        texts = self._texts(pack, content if kind in RELEASE_KINDS else None, kind, zone)
        return EmailContext(
            kind=kind.value,
            pack_id=pack.id,
            title=pack.title,
            reference=pack.reference,
            marking=marking_for(pack, kind),
            lift_words=describe(pack.lift_at, zone),
            lift_iso=pack.lift_at.isoformat().replace("+00:00", "Z"),
            contact=pack.contact,
            sender_name=sender_name,
            version=pack.version,
            pdf_name=pack.pdf_name if with_material else None,
            url=pack.url if kind is StageKind.LIVE else None,
            release_text=texts.release_text,
            release_html=texts.release_html,
            social_text=texts.social_text,
            old_lift_words=(
                None if facts.old_lift_at is None else describe(facts.old_lift_at, zone)
            ),
            changes=tuple(
                Change(
                    version=item.version,
                    changed=item.changed,
                    note=item.note,
                    changed_by=item.changed_by,
                    when=describe(item.changed_at, zone),
                )
                for item in facts.changes
            ),
            reason=pack.cancel_reason if kind is StageKind.WITHDRAWN else None,
            # Only what is attached: a withheld live email is named as withheld, not as attached.
            test_of=tuple(
                item.value
                for item in facts.test_of
                if not (facts.live_withheld and item is StageKind.LIVE)
            ),
            live_withheld=facts.live_withheld,
            has_calendar=kind in CALENDAR_KINDS,
            report=None if facts.report is None else _report_context(facts.report, zone),
        )

    def _texts(
        self, pack: Pack, content: PackContent | None, kind: StageKind, zone: ZoneInfo
    ) -> _ReleaseTexts:
        """The release and social post as this kind of email shows them.

        Before the lift a placeholder ``[text](#)`` is its text and "(link at 11:00 GMT)":
        these functions are not given the URL, so it cannot reach a notice through them.
        """
        if content is None:
            return _ReleaseTexts(None, None, None)
        social = content.social
        if kind is StageKind.LIVE:
            url = pack.url
            return _ReleaseTexts(
                release_text=self._placeholders.live_text(content.release, url),
                # Safe to mark as HTML: markdown-it escapes all text, and "js-default"
                # passes no raw HTML.
                release_html=Markup(self._placeholders.live_html(content.release, url)),  # noqa: S704
                social_text=None if social is None else self._placeholders.live_text(social, url),
            )
        when = describe_clock(pack.lift_at, zone)
        return _ReleaseTexts(
            release_text=self._placeholders.notice_text(content.release, when),
            release_html=Markup(self._placeholders.notice_html(content.release, when)),  # noqa: S704
            social_text=None if social is None else self._placeholders.notice_text(social, when),
        )

    def render(self, kind: StageKind, context: EmailContext) -> RenderedEmail:
        values = asdict(context)
        subject = " ".join(self._render(f"{kind}.subject.j2", values).split())
        if not subject:
            raise TemplateError(f"template {kind}.subject.j2 rendered an empty subject")
        if (problem := header_problem(subject)) is not None:
            raise TemplateError(f"template {kind}.subject.j2 rendered a subject that {problem}")
        return RenderedEmail(
            subject=subject,
            text=self._render(f"{kind}.txt.j2", values),
            html=self._render(f"{kind}.html.j2", values),
        )

    def _render(self, name: str, values: dict[str, object]) -> str:
        try:
            return self._env.get_template(name).render(values)
        except jinja2.TemplateNotFound as exc:
            needed_by = "" if exc.name == name else f" (needed by {name})"
            raise TemplateError(
                f"template {exc.name} not found in {self._search_path()}{needed_by}"
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {name}: {exc.message}") from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            # e.g. {{ title + 1 }}: a mistake in the template, found before anything is sent.
            raise TemplateError(f"template {name}: {exc}") from exc

    def _search_path(self) -> str:
        loader = self._env.loader
        assert isinstance(loader, jinja2.FileSystemLoader)
        return ", ".join(str(path) for path in loader.searchpath)


def _report_context(report: StageReport, zone: ZoneInfo) -> ReportContext:
    return ReportContext(
        stage=report.label,
        due_words=describe(report.due_at, zone),
        state=report.state,
        detail=report.detail,
        recipients=report.recipients,
        sent=report.sent,
        failed=report.failed,
        pending=report.pending,
        first_after=describe_offset(report.first_after),
        last_after=describe_offset(report.last_after),
        failures=report.failures,
        not_sent=report.not_sent,
        everyone_reached=report.everyone_reached,
    )


# Kinds whose email carries the lift as a calendar entry (a withdrawal cancels it).
CALENDAR_KINDS = (StageKind.NOTICE, StageKind.CHANGED, StageKind.UPDATED, StageKind.WITHDRAWN)


def check_notice_hides_link(rendered: RenderedEmail, url: str) -> None:
    """Refuse an email before the lift that would carry the live link.

    Only the live email's context has the URL, but a release or social post can paste
    it, disguised (``%70robe``, ``/./``, ``:443``, a trailing dot, upper case): every link
    and bare URL is compared with the live one after normalising both.
    """
    for part_name, part in (
        ("subject", rendered.subject),
        ("text", rendered.text),
        ("HTML", rendered.html),
    ):
        leaked = find_live_link(part, url)
        if leaked is not None:
            raise InputError(
                f"the embargoed email ({part_name}) contains the live link {url} (as {leaked}): "
                "it must not reach partners before the lift. Remove it from the release and "
                "social text; the live email sends it at the lift."
            )
