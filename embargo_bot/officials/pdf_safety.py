"""Active content in the pack's PDF: what a reader would run or fetch when a partner opens it.

The PDF goes to every partner with the organisation's authority, so one that runs a
script, launches a program, or submits or imports form data is refused. The file is
parsed with pypdf, not searched for bytes: names can be written with ``#xx`` escapes
(``/J#53`` is ``/JS``) and objects hidden in compressed object streams, and pypdf reads
both as a PDF reader does. Every object reachable from the document's trailer is visited
once; stream *contents* (page text, images, fonts) are never decoded, because no action
lives there, which keeps a 20 MB PDF fast to check. Object streams, which hold
dictionaries, are decoded by pypdf as it reaches them.

Embedded files are only a warning: publications do attach spreadsheets of their data,
but an official should know that partners receive more than the PDF itself.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject

# Action types (the /S of an action dictionary, ISO 32000-2 section 12.6.4) that run code
# or send, fetch or import data.
_ACTIONS: dict[str, tuple[str, str]] = {
    "/JavaScript": ("a JavaScript action", "which a PDF reader may run"),
    "/Launch": ("a Launch action", "which starts a program or opens a file"),
    "/SubmitForm": ("a SubmitForm action", "which sends form data to an address"),
    "/ImportData": ("an ImportData action", "which reads data from another file"),
}
_FIX = "export the PDF again without scripts or actions (e.g. print it to a new PDF)"
_ALL_OBJECTS = 1_000_000  # beyond this, a file is built to exhaust the check


_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "file:")


@dataclass
class _Findings:
    problems: dict[str, None] = field(default_factory=dict)  # ordered and de-duplicated
    warnings: dict[str, None] = field(default_factory=dict)
    links: dict[str, None] = field(default_factory=dict)


@dataclass(frozen=True)
class PdfReport:
    """What the check found: problems refuse the PDF, warnings are shown, links listed.

    ``links`` are the targets of the PDF's link actions (``/URI``), for the check that the
    notice does not carry the live URL before the lift.
    """

    problems: list[str]
    warnings: list[str]
    links: list[str]


# Keys on the way to an action that tell an official where it sits.
_PLACES = {
    "/OpenAction": "the action run when the file opens",
    "/JavaScript": "the document-level scripts",
    "/Outlines": "a bookmark",
    "/Annots": "an annotation on a page",
    "/AcroForm": "a form field",
    "/AA": "the additional actions",
    "/Next": "a follow-on action",
    "/EmbeddedFiles": "the attached files",
}


def _where(path: tuple[str, ...]) -> str:
    """Where an object sits: "in the action run when the file opens (/OpenAction)"."""
    places = [f"{_PLACES[step]} ({step})" for step in dict.fromkeys(path) if step in _PLACES]
    if places:
        return "in " + ", ".join(places)
    named = [step for step in path if step.startswith("/")]
    return "at " + (" ".join(named[-3:]) or "the trailer")


def _walk(trailer: DictionaryObject) -> Iterator[tuple[DictionaryObject, tuple[str, ...]]]:
    """Every dictionary reachable from the trailer, once, with the keys that lead to it."""
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[PdfObject | None, tuple[str, ...]]] = [(trailer, ())]
    while stack:
        obj, path = stack.pop()
        if isinstance(obj, IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            seen.add(ref)
            if len(seen) > _ALL_OBJECTS:
                raise ValueError(f"more than {_ALL_OBJECTS:,} objects")
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):  # stream objects too: their dictionary only
            yield obj, path
            for key, value in obj.items():
                stack.append((value, (*path, str(key))))
        elif isinstance(obj, ArrayObject):
            for index, value in enumerate(obj):
                stack.append((value, (*path, f"[{index}]")))


def _resolved(obj: DictionaryObject, key: str) -> PdfObject | None:
    """``obj[key]`` with an indirect reference followed: ``/S 9 0 R`` is as good as ``/S``."""
    value = obj.get(key)
    return None if value is None else value.get_object()


def _inspect(obj: DictionaryObject, path: tuple[str, ...], found: _Findings) -> None:
    where = _where(path)
    resolved = _resolved(obj, "/S")
    kind = str(resolved) if isinstance(resolved, NameObject) else None
    if kind in _ACTIONS:
        action, effect = _ACTIONS[kind]
        found.problems[f"contains {action} {where}, {effect}"] = None
    if "/JS" in obj and kind != "/JavaScript":
        found.problems[f"contains a script (/JS) {where}, which a PDF reader may run"] = None
    if kind == "/URI":
        target = str(_resolved(obj, "/URI") or "").strip()
        if target.lower().startswith(_SCRIPT_SCHEMES):
            shown = target if len(target) <= 60 else target[:57] + "..."
            found.problems[f"contains a link to {shown!r} {where}, which runs or opens code"] = None
        elif target:
            found.links[target] = None
    if "/EF" in obj:  # a file specification with the file itself inside
        name = _resolved(obj, "/UF") or _resolved(obj, "/F") or "with no name"
        found.warnings[
            f"has an embedded file {str(name)!r} {where}; partners receive the attached files too"
        ] = None
    if "/XFA" in obj:
        found.warnings[
            f"has an XFA form {where}, which some PDF readers run scripts in; check that the "
            "form is meant to be there"
        ] = None


def check_pdf_content(data: bytes, path: Path) -> PdfReport:
    """What the pack's PDF would do when opened; every line starts ``--pdf PATH:``.

    A problem refuses the PDF; a warning is shown to the official and the PDF is sent.
    A PDF that pypdf cannot read at all is refused: what cannot be checked is not sent.
    """
    option = f"--pdf {path}"
    found = _Findings()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return PdfReport(
                [
                    f"{option}: the PDF is protected with a password, so it cannot be checked "
                    "for scripts; send it without the password (partners could not open it "
                    "anyway)"
                ],
                [],
                [],
            )
        for obj, where in _walk(reader.trailer):
            _inspect(obj, where, found)
    except Exception as exc:  # a hostile file can make pypdf raise anything at all
        return PdfReport(
            [
                f"{option}: the PDF cannot be read ({type(exc).__name__}: {_first_line(exc)}), "
                "so it cannot be checked for scripts; save or export it again as a PDF"
            ],
            [],
            [],
        )
    return PdfReport(
        problems=[f"{option}: {what}; {_FIX}" for what in found.problems],
        warnings=[f"{option}: {what}" for what in found.warnings],
        links=list(found.links),
    )


def pdf_problems(data: bytes, path: Path) -> tuple[list[str], list[str]]:
    """(problems, warnings) of ``check_pdf_content``."""
    report = check_pdf_content(data, path)
    return report.problems, report.warnings


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else "no detail"
