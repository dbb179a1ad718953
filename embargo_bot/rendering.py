"""Turning a pack into the words of each email, from Jinja2 templates.

Each kind of email has three templates in the templates folder:
``KIND.subject.j2``, ``KIND.txt.j2`` (plain text) and ``KIND.html.j2``
(autoescaped). Unknown variables are errors (StrictUndefined), so a broken
template is found when a pack is queued or previewed, not at send time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from embargo_bot.errors import InputError, TemplateError
from embargo_bot.packs import Pack, PackContent, StageKind
from embargo_bot.times import describe


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class EmailContext:
    """Everything a template may use. The live URL is absent from a notice's context,
    so no notice template can leak the link before the lift."""

    title: str
    reference: str | None
    marking: str
    lift_words: str
    lift_iso: str
    contact: str
    sender_name: str
    pdf_name: str | None
    url: str | None
    release_text: str | None
    release_html: Markup | None
    social_text: str | None


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
        # "js-default" leaves raw HTML out: a release is text from an official, not markup.
        self._markdown = MarkdownIt("js-default")

    def context(
        self,
        pack: Pack,
        content: PackContent | None,
        kind: StageKind,
        *,
        zone: ZoneInfo,
        sender_name: str,
    ) -> EmailContext:
        is_notice = kind is StageKind.NOTICE
        release = content.release if content is not None and is_notice else None
        return EmailContext(
            title=pack.title,
            reference=pack.reference,
            marking=pack.classification.value if is_notice else "OFFICIAL",
            lift_words=describe(pack.lift_at, zone),
            lift_iso=pack.lift_at.isoformat().replace("+00:00", "Z"),
            contact=pack.contact,
            sender_name=sender_name,
            pdf_name=pack.pdf_name if is_notice else None,
            url=None if is_notice else pack.url,
            release_text=release,
            release_html=None if release is None else self._release_html(release),
            social_text=content.social if content is not None and is_notice else None,
        )

    def _release_html(self, release: str) -> Markup:
        # Safe to mark as HTML: markdown-it escapes all text, and "js-default" passes no raw HTML.
        return Markup(self._markdown.render(release))  # noqa: S704

    def render(self, kind: StageKind, context: EmailContext) -> RenderedEmail:
        values = asdict(context)
        subject = " ".join(self._render(f"{kind}.subject.j2", values).split())
        rendered = RenderedEmail(
            subject=subject,
            text=self._render(f"{kind}.txt.j2", values),
            html=self._render(f"{kind}.html.j2", values),
        )
        if not subject:
            raise TemplateError(f"template {kind}.subject.j2 rendered an empty subject")
        return rendered

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


def check_notice_hides_link(rendered: RenderedEmail, url: str) -> None:
    """Refuse a notice that would carry the live link before the lift.

    The notice's context has no URL, but a release or social post can paste it.
    """
    bare = url.split("://", 1)[-1].rstrip("/").lower().removeprefix("www.")
    for part_name, part in (
        ("subject", rendered.subject),
        ("text", rendered.text),
        ("HTML", rendered.html),
    ):
        if bare and bare in part.lower():
            raise InputError(
                f"the embargoed notice ({part_name}) contains the live link {url}: it must not "
                "reach partners before the lift. Remove it from the release and social text; "
                "the live email sends it at the lift."
            )
