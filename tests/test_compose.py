"""Rendering each email from the shipped templates, and composing its bytes per recipient."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from embargo_bot.devtools.samplepdf import sample_pdf
from embargo_bot.domain.classification import Classification
from embargo_bot.domain.errors import InputError, TemplateError
from embargo_bot.domain.packs import Pack, PackContent, PackState, StageKind, marking_for
from embargo_bot.domain.reports import Failure, StageReport
from embargo_bot.messages.mime import (
    Sender,
    StageMessage,
    build_stage_message,
    new_message_id,
    personalise,
)
from embargo_bot.messages.rendering import (
    RenderedEmail,
    Renderer,
    StageFacts,
    check_notice_hides_link,
)
from embargo_bot.shipped import shipped_dir

LONDON = ZoneInfo("Europe/London")
TEMPLATES = shipped_dir("templates")
URL = "https://www.gov.scot/isbn/9781802019445"
LIFT = datetime(2022, 2, 23, 11, 0, tzinfo=UTC)
LIFT_WORDS = "11:00 GMT on Wednesday 23 February 2022"
SENDER = Sender(display_name="Scottish Government Comms", address="embargo-bot@gov.example")
PDF = sample_pdf(["Serious Organised Crime Strategy", "February 2022"])
RELEASE = "The strategy is **bold** and sets out\n\n- prevention\n- enforcement\n"
SOCIAL = "New #SOC strategy out today"

PACK = Pack(
    id="serious-organised-crime-7k2q",
    title="Serious Organised Crime Strategy",
    reference="SG/2022/14",
    url=URL,
    classification=Classification.OFFICIAL_SENSITIVE,
    contact="press@gov.example",
    lift_at=LIFT,
    list_keys=("nca", "copfs"),
    pdf_name="soc-strategy.pdf",
    state=PackState.ACTIVE,
    created_at=datetime(2022, 2, 20, 9, 0, tzinfo=UTC),
    created_by="official",
)
CONTENT = PackContent(pdf=PDF, release=RELEASE, social=SOCIAL)


def render(
    kind: StageKind,
    pack: Pack = PACK,
    content: PackContent | None = CONTENT,
    renderer: Renderer | None = None,
) -> RenderedEmail:
    renderer = renderer or Renderer(TEMPLATES)
    context = renderer.context(pack, content, kind, zone=LONDON, sender_name=SENDER.display_name)
    return renderer.render(kind, context)


def stage_message(
    kind: StageKind = StageKind.NOTICE,
    pack: Pack = PACK,
    content: PackContent = CONTENT,
) -> StageMessage:
    rendered = render(kind, pack, content)
    pdf = content.pdf if kind is StageKind.NOTICE else None
    return build_stage_message(
        pack, kind, rendered, sender=SENDER, pdf=pdf, boundary_seed=f"{pack.id}/{kind}"
    )


def message_for(
    stage: StageMessage,
    to_address: str = "duty.officer@nca.example",
    to_name: str | None = "Duty Officer",
    *,
    message_id: str = "<1.notice@gov.example>",
    date: datetime = datetime(2022, 2, 22, 9, 0, tzinfo=UTC),
) -> bytes:
    return personalise(
        stage, to_address=to_address, to_name=to_name, message_id=message_id, date=date
    )


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.defects == []
    return message


def part_text(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and part.get_content_type() == f"text/{subtype}"
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


# --- rendering the notice ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("classification", "marking"),
    [
        (Classification.OFFICIAL_SENSITIVE, "OFFICIAL-SENSITIVE"),
        (Classification.OFFICIAL, "OFFICIAL"),
    ],
)
def test_notice_subject(classification: Classification, marking: str) -> None:
    pack = dataclasses.replace(PACK, classification=classification)
    subject = render(StageKind.NOTICE, pack).subject
    assert subject.startswith(f"{marking}: ")
    assert "EMBARGOED" in subject
    assert LIFT_WORDS in subject
    assert PACK.title in subject
    assert "\n" not in subject


def test_notice_states_the_lift_in_bst_in_summer() -> None:
    pack = dataclasses.replace(PACK, lift_at=datetime(2022, 6, 23, 10, 0, tzinfo=UTC))
    rendered = render(StageKind.NOTICE, pack)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "11:00 BST on Thursday 23 June 2022" in part


def test_notice_text_carries_the_pack() -> None:
    text = render(StageKind.NOTICE).text
    for expected in (
        "OFFICIAL-SENSITIVE",
        LIFT_WORDS,
        PACK.title,
        "SG/2022/14",
        PACK.pdf_name,
        RELEASE.strip(),
        SOCIAL,
        PACK.contact,
        SENDER.display_name,
    ):
        assert expected in text


def test_notice_html_carries_the_pack_with_the_release_as_html() -> None:
    html = render(StageKind.NOTICE).html
    assert "<strong>bold</strong>" in html
    assert "**bold**" not in html
    assert "<li>prevention</li>" in html
    for expected in (LIFT_WORDS, PACK.title, PACK.pdf_name, SOCIAL, f"mailto:{PACK.contact}"):
        assert expected in html


def test_notice_without_social_or_reference_shows_no_placeholder() -> None:
    pack = dataclasses.replace(PACK, reference=None)
    content = dataclasses.replace(CONTENT, social=None)
    rendered = render(StageKind.NOTICE, pack, content)
    with_social = render(StageKind.NOTICE, pack)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "None" not in part
    assert SOCIAL not in rendered.text
    assert SOCIAL in with_social.text
    assert len(rendered.html) < len(with_social.html)


@pytest.mark.parametrize(
    ("release", "present", "absent"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", "<script"),
        ("{{ 7*7 }}", "{{ 7*7 }}", "49"),
        ("{% if true %}x{% endif %}", "{% if true %}x{% endif %}", "<p>x</p>"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;", "<img"),
        ("[click](javascript:alert(1))", "[click](javascript:alert(1))", 'href="javascript:'),
        ('Say "hi" & <b>wave</b>', "&quot;hi&quot; &amp; &lt;b&gt;wave&lt;/b&gt;", "<b>"),
    ],
)
def test_release_is_escaped_not_executed_in_html(release: str, present: str, absent: str) -> None:
    rendered = render(StageKind.NOTICE, content=dataclasses.replace(CONTENT, release=release))
    assert present in rendered.html
    assert absent not in rendered.html
    # The plain text part carries the release exactly as written.
    assert release in rendered.text


@pytest.mark.parametrize(
    ("social", "present", "absent"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script"),
        ("{{ 7*7 }}", "{{ 7*7 }}", "49"),
    ],
)
def test_social_is_escaped_not_executed_in_html(social: str, present: str, absent: str) -> None:
    rendered = render(StageKind.NOTICE, content=dataclasses.replace(CONTENT, social=social))
    assert present in rendered.html
    assert absent not in rendered.html
    assert social in rendered.text


def test_title_is_escaped_in_html_only() -> None:
    pack = dataclasses.replace(PACK, title="R&D <Unit> {{ 7*7 }}")
    rendered = render(StageKind.NOTICE, pack)
    assert "R&amp;D &lt;Unit&gt; {{ 7*7 }}" in rendered.html
    assert "<Unit>" not in rendered.html
    assert "R&D <Unit> {{ 7*7 }}" in rendered.subject
    assert "R&D <Unit> {{ 7*7 }}" in rendered.text


def test_notice_context_has_no_url() -> None:
    renderer = Renderer(TEMPLATES)
    context = renderer.context(
        PACK, CONTENT, StageKind.NOTICE, zone=LONDON, sender_name=SENDER.display_name
    )
    assert context.url is None
    assert context.release_text == RELEASE
    assert context.pdf_name == PACK.pdf_name
    assert context.marking == "OFFICIAL-SENSITIVE"
    assert context.lift_words == LIFT_WORDS
    assert context.lift_iso == "2022-02-23T11:00:00Z"
    rendered = renderer.render(StageKind.NOTICE, context)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "www.gov.scot" not in part


# --- rendering the live email -----------------------------------------------------------------


def test_live_context_has_the_url_and_the_release_ready_to_publish_but_no_pdf() -> None:
    context = Renderer(TEMPLATES).context(
        PACK, CONTENT, StageKind.LIVE, zone=LONDON, sender_name=SENDER.display_name
    )
    assert context.url == URL
    assert context.release_text == RELEASE
    assert context.social_text == SOCIAL
    assert context.pdf_name is None


PLACEHOLDERED = PackContent(
    pdf=PDF,
    release="# Strategy out\n\n[Read the strategy](#) and [the annex](#annex).\n",
    social="Out now: [the strategy](#) #SOC",
)


def test_the_notice_names_the_lift_where_each_placeholder_is_and_never_the_link() -> None:
    rendered = render(StageKind.NOTICE, content=PLACEHOLDERED)
    assert "Read the strategy (link at 11:00 GMT)" in rendered.text
    assert "the strategy (link at 11:00 GMT) #SOC" in rendered.text
    assert "Read the strategy (link at 11:00 GMT)" in rendered.html
    assert 'href="#"' not in rendered.html
    assert 'href="#annex"' in rendered.html  # an anchor is not a placeholder
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "www.gov.scot" not in part


def test_the_live_email_carries_the_release_with_every_placeholder_filled() -> None:
    rendered = render(StageKind.LIVE, content=PLACEHOLDERED)
    assert f"Read the strategy ({URL})" in rendered.text
    assert f"Out now: the strategy ({URL}) #SOC" in rendered.text
    assert f'<a href="{URL}">Read the strategy</a>' in rendered.html
    assert "(link at" not in rendered.text + rendered.html


def test_live_email_gives_the_link_without_embargo_wording() -> None:
    rendered = render(StageKind.LIVE)
    assert rendered.subject.startswith("OFFICIAL: ")
    assert PACK.title in rendered.subject
    assert URL in rendered.text
    assert f'href="{URL}"' in rendered.html
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "EMBARGO" not in part
        assert PACK.pdf_name not in part
    # The live email is the one that may carry the link: the notice check would stop it.
    with pytest.raises(InputError):
        check_notice_hides_link(rendered, URL)


def test_live_email_renders_without_content() -> None:
    rendered = render(StageKind.LIVE, content=None)
    assert URL in rendered.text


# --- the notice must not carry the link -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "part_name"),
    [
        ({"release": f"Read it at {URL} from Wednesday."}, "text"),
        ({"release": "Read it at www.gov.scot/isbn/9781802019445."}, "text"),
        ({"release": "Read it at WWW.GOV.SCOT/ISBN/9781802019445"}, "text"),
        ({"release": "Read it at HTTPS://www.Gov.Scot/isbn/9781802019445/"}, "text"),
        ({"release": "Old link: http://www.gov.scot/isbn/9781802019445"}, "text"),
        ({"release": f"[the report]({URL})"}, "text"),
        ({"social": f"Out now {URL} #SOC"}, "text"),
    ],
)
def test_notice_carrying_the_link_is_refused(changes: dict[str, Any], part_name: str) -> None:
    rendered = render(StageKind.NOTICE, content=dataclasses.replace(CONTENT, **changes))
    with pytest.raises(InputError) as caught:
        check_notice_hides_link(rendered, URL)
    message = str(caught.value)
    assert f"({part_name})" in message
    assert URL in message


def test_notice_title_carrying_the_link_is_refused_in_the_subject() -> None:
    pack = dataclasses.replace(PACK, title="Strategy at www.gov.scot/isbn/9781802019445")
    with pytest.raises(InputError, match=r"\(subject\)"):
        check_notice_hides_link(render(StageKind.NOTICE, pack), URL)


@pytest.mark.parametrize(
    "release",
    [
        RELEASE,
        "See www.gov.scot for other publications.",
        "ISBN 978-1-80201-944-5 is on the cover.",
        "A different one: https://www.gov.scot/isbn/9781802019446",
        "Partial: www.gov.scot/isbn/978180201944",
    ],
)
def test_notice_without_the_link_passes(release: str) -> None:
    rendered = render(StageKind.NOTICE, content=dataclasses.replace(CONTENT, release=release))
    check_notice_hides_link(rendered, URL)


# --- broken templates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "source", "fragments"),
    [
        (
            "notice.subject.j2",
            "{{ marking }}: {{ no_such_variable }}",
            ("notice.subject.j2", "no_such_variable"),
        ),
        ("notice.txt.j2", "{{ title.no_such_attribute }}", ("notice.txt.j2", "no_such_attr")),
        ("notice.txt.j2", "{% if no_such_flag %}x{% endif %}", ("notice.txt.j2", "no_such_flag")),
        ("notice.html.j2", "<p>{% if title %}unclosed</p>\n", ("notice.html.j2", ":1:")),
        ("notice.html.j2", "line one\n{{ title }", ("notice.html.j2", ":2:")),
        ("notice.txt.j2", "{{ title | no_such_filter }}", ("notice.txt.j2", "no_such_filter")),
        ("notice.subject.j2", "{# nothing #}\n", ("notice.subject.j2", "empty subject")),
        # The message must name the template that is missing, not the one that needs it.
        ("notice.subject.j2", "{% include 'missing.j2' %}", ("missing.j2", "not found")),
        (
            "notice.html.j2",
            '{% extends "no_layout.html.j2" %}',
            ("no_layout.html.j2", "not found"),
        ),
    ],
    ids=[
        "unknown-variable",
        "unknown-attribute",
        "unknown-variable-in-if",
        "unclosed-block",
        "unclosed-expression",
        "unknown-filter",
        "empty-subject",
        "missing-include",
        "missing-layout",
    ],
)
def test_broken_template_raises_template_error(
    tmp_path: Path, file_name: str, source: str, fragments: tuple[str, ...]
) -> None:
    (tmp_path / file_name).write_text(source, encoding="utf-8")
    renderer = Renderer(tmp_path, fallback_dir=TEMPLATES)
    with pytest.raises(TemplateError) as caught:
        render(StageKind.NOTICE, renderer=renderer)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_missing_template_raises_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"template notice\.subject\.j2 not found in"):
        render(StageKind.NOTICE, renderer=Renderer(tmp_path))


def test_one_template_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "notice.subject.j2").write_text(
        "[{{ marking }}] Embargoed: {{ title }}\n", encoding="utf-8"
    )
    rendered = render(StageKind.NOTICE, renderer=Renderer(tmp_path, fallback_dir=TEMPLATES))
    assert rendered.subject == f"[OFFICIAL-SENSITIVE] Embargoed: {PACK.title}"
    assert "<strong>bold</strong>" in rendered.html  # still the shipped HTML


# --- composing the message --------------------------------------------------------------------


def test_notice_message_headers() -> None:
    date = datetime(2022, 2, 22, 9, 0, 5, tzinfo=UTC)
    message_id = new_message_id(PACK.id, StageKind.NOTICE, SENDER)
    raw = message_for(stage_message(), message_id=message_id, date=date)
    message = parse(raw)

    assert parsedate_to_datetime(message["Date"]) == date
    assert message["Message-ID"] == message_id
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (SENDER.display_name, SENDER.address)
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == (
        "Duty Officer",
        "duty.officer@nca.example",
    )
    (reply_to,) = message["Reply-To"].addresses
    assert reply_to.addr_spec == PACK.contact
    assert message["Subject"] == render(StageKind.NOTICE).subject
    assert message["X-Embargo-Pack"] == PACK.id
    assert message["X-Embargo-Stage"] == "notice"
    assert datetime.fromisoformat(message["X-Embargo-Lift"]) == PACK.lift_at
    assert message["MIME-Version"] == "1.0"
    for name in ("Date", "Message-ID", "From", "To", "Reply-To", "Subject", "X-Embargo-Lift"):
        assert len(message.get_all(name, [])) == 1, name
    for name in ("Cc", "Bcc"):
        assert message[name] is None


def test_lift_header_keeps_seconds_and_parses_back() -> None:
    lift = datetime(2022, 6, 23, 10, 0, 30, tzinfo=UTC)
    pack = dataclasses.replace(PACK, lift_at=lift)
    message = parse(message_for(stage_message(pack=pack)))
    assert message["X-Embargo-Lift"] == "2022-06-23T10:00:30Z"
    assert datetime.fromisoformat(message["X-Embargo-Lift"]) == lift


def test_notice_message_parts() -> None:
    message = parse(message_for(stage_message()))
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert part_text(message, "plain") == render(StageKind.NOTICE).text
    assert part_text(message, "html") == render(StageKind.NOTICE).html

    (only_attachment,) = message.iter_attachments()
    assert only_attachment is attachment
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == PACK.pdf_name
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_content() == PDF


def test_live_message_has_no_attachment() -> None:
    message = parse(message_for(stage_message(StageKind.LIVE)))
    assert message["X-Embargo-Stage"] == "live"
    assert message.get_content_type() == "multipart/alternative"
    assert list(message.iter_attachments()) == []
    assert URL in part_text(message, "plain")
    assert b"%PDF" not in message.as_bytes()


def test_recipients_messages_differ_only_in_their_own_headers() -> None:
    stage = stage_message()
    first = message_for(
        stage,
        "duty.officer@nca.example",
        "Duty Officer",
        message_id="<1.notice@gov.example>",
        date=datetime(2022, 2, 22, 9, 0, 0, tzinfo=UTC),
    )
    second = message_for(
        stage,
        "press@copfs.example",
        None,
        message_id="<2.notice@gov.example>",
        date=datetime(2022, 2, 22, 9, 0, 1, tzinfo=UTC),
    )
    own = (b"Date:", b"Message-ID:", b"To:")

    def shared_lines(raw: bytes) -> list[bytes]:
        lines = raw.split(b"\r\n")
        personal = [line for line in lines if line.startswith(own)]
        assert len(personal) == 3
        return [line for line in lines if not line.startswith(own)]

    assert first != second
    assert shared_lines(first) == shared_lines(second)
    assert b"press@copfs.example" not in first
    assert b"duty.officer@nca.example" not in second
    assert b"Duty Officer" not in second
    assert parse(second)["To"].addresses[0].addr_spec == "press@copfs.example"
    for raw in (first, second):
        assert raw.endswith(stage.common_headers + stage.body)


def test_same_stage_rebuilds_to_the_same_bytes() -> None:
    first, second = stage_message(), stage_message()
    assert first.body == second.body
    assert first.common_headers == second.common_headers
    date = datetime(2022, 2, 22, 9, 0, tzinfo=UTC)
    assert message_for(first, date=date) == message_for(second, date=date)


def test_boundaries_cannot_clash_with_the_body() -> None:
    message = parse(message_for(stage_message()))
    boundaries = [p.get_boundary() for p in message.walk() if p.is_multipart()]
    assert len(boundaries) == 2
    assert len(set(boundaries)) == 2
    for boundary in boundaries:
        assert boundary is not None and "=_" in boundary


def test_lines_are_crlf_ascii_and_within_998_octets() -> None:
    pack = dataclasses.replace(
        PACK,
        title="Caf\u00e9 \u00a3100m strategy \u2014 " + "Verylongwordwithoutanyspaces" * 6,
        pdf_name="Strat\u00e9gie 2022.pdf",
    )
    content = dataclasses.replace(
        CONTENT,
        release="Caf\u00e9 " + "x" * 5000 + "\n\n" + "word " * 2000,
        social="\u00c9t\u00e9 \U0001f680 " * 300,
    )
    raw = message_for(stage_message(pack=pack, content=content), to_name="Zo\u00eb \u00d3 Briain")
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    longest = max(len(line) for line in raw.split(b"\r\n"))
    assert longest <= 998
    message = parse(raw)
    assert message["Subject"] == render(StageKind.NOTICE, pack, content).subject
    assert message["To"].addresses[0].display_name == "Zo\u00eb \u00d3 Briain"
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "Strat\u00e9gie 2022.pdf"
    assert attachment.get_content() == PDF
    assert part_text(message, "plain") == render(StageKind.NOTICE, pack, content).text


def test_new_message_id_uses_the_sender_domain_and_is_unique() -> None:
    ids = [new_message_id(PACK.id, StageKind.NOTICE, SENDER) for _ in range(100)]
    assert len(set(ids)) == 100
    for message_id in ids:
        assert message_id.startswith("<")
        assert message_id.endswith("@gov.example>")
        assert f"{PACK.id}.notice" in message_id
        assert message_id.isascii() and " " not in message_id
    live_id = new_message_id(PACK.id, StageKind.LIVE, SENDER)
    assert f"{PACK.id}.live@gov.example>" in live_id


# --- the test email and the closing words of every kind ---------------------------------------


def render_with(kind: StageKind, facts: StageFacts, pack: Pack = PACK) -> RenderedEmail:
    renderer = Renderer(TEMPLATES)
    context = renderer.context(
        pack, CONTENT, kind, zone=LONDON, sender_name=SENDER.display_name, facts=facts
    )
    return renderer.render(kind, context)


def test_the_test_email_subject_starts_with_its_marking() -> None:
    rendered = render_with(StageKind.TEST, StageFacts(test_of=(StageKind.NOTICE,)))
    assert rendered.subject == (
        f"OFFICIAL-SENSITIVE: TEST ONLY, not sent to partners: {PACK.title}"
    )


def test_the_test_email_does_not_say_the_withheld_live_email_is_attached() -> None:
    facts = StageFacts(test_of=(StageKind.NOTICE, StageKind.LIVE), live_withheld=True)
    rendered = render_with(StageKind.TEST, facts)
    for words in (rendered.text, rendered.html):
        flat = " ".join(words.split())
        assert "for this pack (notice)" in flat, flat
        assert "(notice, live)" not in flat
        assert "The live email is not attached" in flat
    both = render_with(StageKind.TEST, StageFacts(test_of=(StageKind.NOTICE, StageKind.LIVE)))
    assert "(notice, live)" in " ".join(both.text.split())
    assert "not attached" not in both.text


SAMPLE_REPORT = StageReport(
    label="notice wave 1",
    due_at=LIFT,
    state="done",
    detail=None,
    recipients=2,
    sent=1,
    failed=1,
    pending=0,
    first_after=None,
    last_after=None,
    failures=(Failure(email="duty@nca.example", reply="550 5.1.1 no such mailbox"),),
)
EVERY_KIND_FACTS = StageFacts(old_lift_at=LIFT, test_of=(StageKind.NOTICE,), report=SAMPLE_REPORT)


@pytest.mark.parametrize("kind", list(StageKind))
def test_every_kind_opens_and_closes_with_its_marking_in_text_and_html(kind: StageKind) -> None:
    rendered = render_with(kind, EVERY_KIND_FACTS)
    marking = marking_for(PACK, kind)
    lines = [line for line in rendered.text.splitlines() if line.strip()]
    assert (lines[0], lines[-1]) == (marking, marking), rendered.text
    assert rendered.html.count(f">{marking}</td>") == 2


def test_the_release_headings_start_below_the_email_title() -> None:
    release = "# Strategy published\n\nText.\n\n## The aims\n\n###### Deepest\n"
    renderer = Renderer(TEMPLATES)
    content = PackContent(pdf=PDF, release=release, social=None)
    context = renderer.context(
        PACK, content, StageKind.NOTICE, zone=LONDON, sender_name=SENDER.display_name
    )
    html = str(context.release_html)
    # Below the title (h1) and the email's own sections ("News release", h2).
    assert "<h3>Strategy published</h3>" in html and "<h4>The aims</h4>" in html
    assert "<h6>Deepest</h6>" in html and "<h1>" not in html
    rendered = renderer.render(StageKind.NOTICE, context)
    assert rendered.html.count("<h1") == 1, "the email's own title only"


def test_the_delivery_report_names_the_show_command_with_the_pack_id() -> None:
    rendered = render_with(StageKind.REPORT, EVERY_KIND_FACTS)
    assert f"`embargo-bot show {PACK.id}` gives every attempt" in rendered.text
    assert f"<code>embargo-bot show {PACK.id}</code> gives every attempt" in rendered.html
