"""Active content in the pack's PDF is refused, embedded files warned about, by parsing it."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.annotations import Link
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from embargo_bot.officials.pdf_safety import check_pdf_content, pdf_problems

PATH = Path("strategy.pdf")


def raw_pdf(catalog_extra: bytes = b"", page_extra: bytes = b"", *more: bytes) -> bytes:
    """A PDF written byte by byte, so names can be spelt as an attacker would."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] " + page_extra + b" >>",
        *more,
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def written(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def blank_writer() -> PdfWriter:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    return writer


JS = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"

REFUSED = [
    # (catalog extra, page extra, more objects, words in the problem)
    (b"/OpenAction " + JS, b"", (), "a JavaScript action in the action run when the file opens"),
    (b"/OpenAction 4 0 R", b"", (JS,), "a JavaScript action in the action run"),
    (b"/O#70enAction << /#53 /J#61vaScript /J#53 (x) >>", b"", (), "a JavaScript action"),
    (b"/OpenAction << /S /J#61va#53cript /JS (x) >>", b"", (), "a JavaScript action"),
    (b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /JS (x) >>", b"", (), "a script (/JS)"),
    (b"/OpenAction << /S /Launch /F (cmd.exe) >>", b"", (), "a Launch action"),
    (b"/OpenAction << /S /L#61unch /F (cmd.exe) >>", b"", (), "a Launch action"),
    (b"/OpenAction << /S 4 0 R /F (cmd.exe) >>", b"", (b"/Launch",), "a Launch action"),
    (b"/OpenAction 4 0 R", b"", (b"<< /S 5 0 R /JS 6 0 R >>", b"/JavaScript", b"(x)"), "JavaS"),
    (b"/AA << /WC " + JS + b" >>", b"", (), "in the additional actions (/AA)"),
    (b"", b"/AA << /O " + JS + b" >>", (), "in the additional actions (/AA)"),
    (
        b"",
        b"/Annots [4 0 R]",
        (b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /SubmitForm /F (x) >> >>",),
        "a SubmitForm action in an annotation on a page (/Annots)",
    ),
    (
        b"",
        b"/Annots [<< /Subtype /Widget /A << /S /ImportData /F (data.fdf) >> >>]",
        (),
        "an ImportData action in an annotation",
    ),
    (
        b"/Names << /JavaScript << /Names [(a) 4 0 R] >> >>",
        b"",
        (JS,),
        "in the document-level scripts (/JavaScript)",
    ),
    (
        b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /Next " + JS + b" >>",
        b"",
        (),
        "a follow-on action (/Next)",
    ),
    (b"/Outlines << /First << /A " + JS + b" >> >>", b"", (), "in a bookmark (/Outlines)"),
    (b"/AcroForm << /Fields [<< /AA << /K " + JS + b" >> >>] >>", b"", (), "a form field"),
]


@pytest.mark.parametrize(("catalog", "page", "more", "words"), REFUSED)
def test_active_content_is_refused_wherever_it_is(
    catalog: bytes, page: bytes, more: tuple[bytes, ...], words: str
) -> None:
    problems, _ = pdf_problems(raw_pdf(catalog, page, *more), PATH)
    assert problems, "accepted"
    assert all(p.startswith("--pdf strategy.pdf: contains ") for p in problems)
    assert any(words in p for p in problems), problems
    assert "export the PDF again" in problems[0]


def test_pypdf_decodes_hex_escaped_names() -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw_pdf(b"/OpenAction << /#53 /J#61vaScript /J#53 (x) >>")))
    action = reader.trailer["/Root"]["/OpenAction"]
    assert action["/S"] == "/JavaScript"
    assert "/JS" in action


def test_a_clean_pdf_passes() -> None:
    assert pdf_problems(written(blank_writer()), PATH) == ([], [])
    assert pdf_problems(raw_pdf(), PATH) == ([], [])


def test_links_and_go_to_actions_are_fine() -> None:
    writer = blank_writer()
    writer.add_annotation(0, Link(rect=(0, 0, 50, 50), url="https://www.gov.example/"))
    writer.add_annotation(0, Link(rect=(0, 0, 50, 50), target_page_index=0))
    pdf = raw_pdf(b"/OpenAction << /S /GoTo /D [3 0 R /Fit] >>")
    assert pdf_problems(written(writer), PATH) == ([], [])
    assert pdf_problems(pdf, PATH) == ([], [])


def test_a_script_added_by_pypdf_is_refused() -> None:
    writer = blank_writer()
    writer.add_open_action(JavaScript("this.print({bUI: true});"))
    problems, _ = pdf_problems(written(writer), PATH)
    assert problems == [
        "--pdf strategy.pdf: contains a JavaScript action in the document-level scripts "
        "(/JavaScript), which a PDF reader may run; export the PDF again without scripts "
        "or actions (e.g. print it to a new PDF)"
    ]


def test_a_page_action_added_by_pypdf_is_refused() -> None:
    writer = blank_writer()
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {
            NameObject("/O"): DictionaryObject(
                {
                    NameObject("/S"): NameObject("/JavaScript"),
                    NameObject("/JS"): TextStringObject("app.launchURL('https://t.example/')"),
                }
            )
        }
    )
    problems, _ = pdf_problems(written(writer), PATH)
    assert len(problems) == 1
    assert "additional actions (/AA)" in problems[0]


def test_embedded_files_are_a_warning_with_their_name_shown_safely() -> None:
    writer = blank_writer()
    writer.add_attachment("data\u202ecsv.exe", b"a,b\n1,2\n")
    problems, warnings = pdf_problems(written(writer), PATH)
    assert problems == []
    assert warnings == [
        "--pdf strategy.pdf: has an embedded file 'data\\u202ecsv.exe' in the attached files "
        "(/EmbeddedFiles); partners receive the attached files too"
    ]


def test_a_file_attachment_annotation_is_a_warning() -> None:
    annotation = (
        b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 9 9] /FS << /Type /Filespec "
        b"/F (payload.docm) /EF << /F 5 0 R >> >> >>"
    )
    stream = b"<< /Type /EmbeddedFile /Length 3 >>\nstream\nabc\nendstream"
    problems, warnings = pdf_problems(raw_pdf(b"", b"/Annots [4 0 R]", annotation, stream), PATH)
    assert problems == []
    assert len(warnings) == 1
    assert "'payload.docm' in an annotation on a page (/Annots)" in warnings[0]


def test_an_indirect_subtype_and_name_are_followed() -> None:
    annotation = b"<< /Subtype 5 0 R /FS << /F 6 0 R /EF << /F 4 0 R >> >> >>"
    stream = b"<< /Length 1 >>\nstream\na\nendstream"
    pdf = raw_pdf(b"", b"/Annots [7 0 R]", stream, b"/FileAttachment", b"(x.docm)", annotation)
    problems, warnings = pdf_problems(pdf, PATH)
    assert problems == []
    assert warnings == [
        "--pdf strategy.pdf: has an embedded file 'x.docm' in an annotation on a page (/Annots); "
        "partners receive the attached files too"
    ]


def test_an_xfa_form_is_a_warning() -> None:
    problems, warnings = pdf_problems(raw_pdf(b"/AcroForm << /Fields [] /XFA 4 0 R >>"), PATH)
    assert problems == []
    assert "XFA form" in warnings[0]


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\ngarbage\n%%EOF",
        b"%PDF-1.7\n" + b"\x00" * 4000 + b"\n%%EOF",
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 1 0 R\n%%EOF",
    ],
)
def test_a_pdf_that_cannot_be_read_is_refused_in_one_line(data: bytes) -> None:
    problems, warnings = pdf_problems(data, PATH)
    assert warnings == []
    assert len(problems) == 1
    assert problems[0].startswith("--pdf strategy.pdf: the PDF cannot be read (")
    assert "cannot be checked for scripts" in problems[0]
    assert "\n" not in problems[0]


def test_a_password_protected_pdf_is_refused() -> None:
    writer = blank_writer()
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    problems, _ = pdf_problems(written(writer), PATH)
    assert len(problems) == 1
    assert "protected with a password" in problems[0]


def test_a_pdf_encrypted_only_for_permissions_is_checked() -> None:
    writer = blank_writer()
    writer.add_open_action(JavaScript("app.alert(1)"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    problems, _ = pdf_problems(written(writer), PATH)
    assert "JavaScript" in problems[0]


def test_a_20_mb_pdf_is_checked_quickly() -> None:
    # A 20 MB image stream on the last page, as a scanned publication has: never decoded.
    body = b"\x89" * 20_000_000
    image = b"<< /Type /XObject /Subtype /Image /Width 5000 /Height 4000 /BitsPerComponent 8 "
    image += b"/ColorSpace /DeviceGray /Filter /FlateDecode /Length %d >>\nstream\n" % len(body)
    pdf = raw_pdf(b"", b"/Resources << /XObject << /Im0 4 0 R >> >>", image + body + b"\nendstream")
    assert len(pdf) > 20_000_000
    started = time.perf_counter()
    assert pdf_problems(pdf, PATH) == ([], [])
    assert time.perf_counter() - started < 2.0


def test_a_script_hidden_in_a_compressed_object_stream_is_found() -> None:
    """The action's bytes appear nowhere in the file: only a parser finds it."""
    hidden = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"
    header = b"4 0 "
    packed = zlib.compress(header + hidden)
    plain = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number, body in enumerate(plain, start=1):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    offsets[5] = len(out)
    out += b"5 0 obj\n<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\n" % (
        len(header),
        len(packed),
    )
    out += b"stream\n" + packed + b"\nendstream\nendobj\n"
    offsets[6] = len(out)
    rows = [struct.pack(">BIH", 0, 0, 65535)]
    for number in range(1, 7):
        if number == 4:
            rows.append(struct.pack(">BIH", 2, 5, 0))
        else:
            rows.append(struct.pack(">BIH", 1, offsets[number], 0))
    table = b"".join(rows)
    out += b"6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Length %d >>\n" % len(table)
    out += b"stream\n" + table + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % offsets[6]
    pdf = bytes(out)
    assert b"JavaScript" not in pdf
    problems, _ = pdf_problems(pdf, PATH)
    assert len(problems) == 1
    assert "a JavaScript action in the action run when the file opens" in problems[0]


@pytest.mark.parametrize(
    "uri", [b"(javascript:app.alert\\(1\\))", b"( JavaScript:x)", b"(file:///C:/Windows/calc.exe)"]
)
def test_links_that_run_code_are_refused(uri: bytes) -> None:
    annotation = b"<< /Subtype /Link /Rect [0 0 9 9] /A << /S /URI /URI " + uri + b" >> >>"
    problems, _ = pdf_problems(raw_pdf(b"", b"/Annots [4 0 R]", annotation), PATH)
    assert len(problems) == 1
    assert "which runs or opens code" in problems[0]


def test_link_targets_are_listed_for_the_live_link_check() -> None:
    writer = blank_writer()
    writer.add_annotation(0, Link(rect=(0, 0, 50, 50), url="https://www.gov.example/isbn/probe"))
    writer.add_annotation(0, Link(rect=(0, 0, 50, 50), url="https://stats.example/"))
    report = check_pdf_content(written(writer), PATH)
    assert report.problems == [] and report.warnings == []
    assert sorted(report.links) == ["https://stats.example/", "https://www.gov.example/isbn/probe"]
