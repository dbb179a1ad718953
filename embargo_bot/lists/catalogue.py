"""The recipient lists as a whole: reading the folder, and choosing lists for a pack.

Parsing one file is ``recipients.parse_list`` (pure); this module does the
I/O (files, certificates) and the choices that depend on a pack.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.errors import ListError
from embargo_bot.lists.parse import (
    LIST_SUFFIXES,
    ListProblem,
    Recipient,
    RecipientList,
    parse_list,
)


@dataclass(frozen=True)
class ListCatalogue:
    """Every list file in the folder: the valid lists by key, and every problem found."""

    directory: Path
    lists: Mapping[str, RecipientList]  # only the valid lists
    problems: tuple[ListProblem, ...]
    # Keys of list files not read, because the caller named only the lists it needs.
    unread: frozenset[str] = frozenset()


class UnreadableList(Exception):
    """A list file that cannot be read; its message says why, in the admin's words."""


def read_list_file(path: Path) -> bytes:
    """A list file's bytes; UnreadableList if it is not a readable regular file.

    Opened without blocking and checked before reading: a FIFO named like a
    list would otherwise hang the service until something wrote to it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if path.is_symlink() and not path.exists():
            target = os.readlink(path)
            raise UnreadableList(
                f"cannot read the file: it is a symbolic link to {target}, which does not "
                "exist (a share that went away?); restore it or remove the link"
            ) from exc
        raise UnreadableList(f"cannot read the file: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableList(
                "not a regular file (a directory, FIFO or device named like a list); "
                "move it out of the folder"
            )
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableList(f"cannot read the file: {exc.strerror}") from exc
    finally:
        os.close(fd)


def list_paths(directory: Path) -> list[Path]:
    """The list files in a folder, in name order; ListError if the folder cannot be read."""
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise ListError(
            f"cannot read the recipient list directory {directory}: {exc.strerror}; "
            "check its permissions (the service needs to read and list it)"
        ) from exc
    # Dotfiles are editor lock and backup files, not lists.
    return [p for p in entries if p.suffix in LIST_SUFFIXES and not p.name.startswith(".")]


def _read_list(path: Path) -> tuple[RecipientList | None, list[ListProblem]]:
    try:
        data = read_list_file(path)
    except UnreadableList as exc:
        return None, [ListProblem(path, None, str(exc))]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        return None, [ListProblem(path, line, message)]
    return parse_list(path, text)


def load_lists(
    directory: Path, *, now: datetime | None = None, only: Collection[str] | None = None
) -> ListCatalogue:
    """Read and validate every list file in ``directory`` (or those ``only`` names), in order.

    Recipients' S/MIME certificates are read and checked here too (readable,
    in date at ``now``, for that address): a list naming a bad one is invalid.
    ``only`` spares a command the cost of big lists it does not use; two files
    with one key are still found, from the names alone.
    """
    if not directory.is_dir():
        raise ListError(
            f"Recipient list directory {directory} not found; "
            "set EMBARGO_BOT_RECIPIENTS_DIR to the folder that holds the list files."
        )
    paths = list_paths(directory)
    if not paths:
        raise ListError(f"No recipient lists (*.yaml or *.yml files) in {directory}; add one.")
    lists: dict[str, RecipientList] = {}
    problems: list[ListProblem] = []
    first_path: dict[str, Path] = {}
    unread: set[str] = set()
    for path in paths:
        if only is not None and path.stem not in only:
            unread.add(path.stem)
            recipient_list, file_problems = None, list[ListProblem]()
        else:
            recipient_list, file_problems = _read_list(path)
        if path.stem in first_path:
            # Either file could be the one meant; sending to the wrong one is worse than refusing.
            lists.pop(path.stem, None)
            other = first_path[path.stem].name
            message = f"list key '{path.stem}' is also used by {other}; rename or remove one"
            file_problems.insert(0, ListProblem(path, None, message))
            recipient_list = None
        first_path.setdefault(path.stem, path)
        if recipient_list is not None:
            certificate_problems = _check_certificates(recipient_list, now or datetime.now(UTC))
            if certificate_problems:
                file_problems.extend(certificate_problems)
                recipient_list = None
        problems.extend(file_problems)
        if recipient_list is not None:
            lists[recipient_list.key] = recipient_list
    unread -= set(lists) | {problem.path.stem for problem in problems}
    return ListCatalogue(directory, MappingProxyType(lists), tuple(problems), frozenset(unread))


UNREADABLE = "unreadable: "


def list_fingerprint(directory: Path) -> dict[str, str]:
    """Each list file's SHA-256, by name: what the audit log records when lists change.

    A file that cannot be read is "unreadable: WHY" instead: a problem of that
    list only, which the caller reports; never an exception.
    """
    if not directory.is_dir():
        return {}
    try:
        paths = list_paths(directory)
    except ListError as exc:
        return {directory.name: UNREADABLE + str(exc)}
    found = {}
    for path in paths:
        try:
            found[path.name] = hashlib.sha256(read_list_file(path)).hexdigest()
        except UnreadableList as exc:
            found[path.name] = UNREADABLE + str(exc)
    return found


def _check_certificates(recipient_list: RecipientList, now: datetime) -> list[ListProblem]:
    problems = []
    for recipient in recipient_list.recipients:
        if recipient.certificate is None:
            continue
        # Imported only for a list that names a certificate: X.509 is slow to import.
        from embargo_bot.security.smime import load_recipient_certificate

        try:
            load_recipient_certificate(recipient.certificate, recipient.email, now=now)
        except ValueError as exc:
            problems.append(
                ListProblem(recipient_list.path, recipient.line, f"smime_certificate: {exc}")
            )
    return problems


def select_lists(
    catalogue: ListCatalogue,
    keys: Sequence[str],
    classification: Classification,
    *,
    option: str | None = None,
) -> tuple[RecipientList, ...]:
    """The lists a pack names, in order; ListError with every reason any cannot be used.

    ``option`` is where the names were typed (``--lists``, ``--notice ...``), for the message.
    """
    selected, problems = usable_lists(catalogue, keys, classification, option=option)
    if problems:
        raise ListError("Cannot send to the recipient lists this pack names:", problems)
    return selected


def usable_lists(
    catalogue: ListCatalogue,
    keys: Sequence[str],
    classification: Classification,
    *,
    option: str | None = None,
) -> tuple[tuple[RecipientList, ...], tuple[str, ...]]:
    """The named lists that can be used now, and why each of the others cannot."""
    if not keys:
        raise ListError("The pack names no recipient lists; name at least one.")
    invalid: dict[str, list[ListProblem]] = {}
    for problem in catalogue.problems:
        invalid.setdefault(problem.path.stem, []).append(problem)
    names = sorted(set(catalogue.lists) | set(invalid) | catalogue.unread)
    known = ", ".join(names)
    typed = f"{option}: " if option else ""
    selected: list[RecipientList] = []
    problems: list[str] = []
    for key in dict.fromkeys(keys):
        recipient_list = catalogue.lists.get(key)
        if key in catalogue.unread:
            raise ListError(f"list {key!r} was not read: a mistake in embargo-bot, please report")
        if key in invalid:
            problems.extend(f"list {key!r} is invalid: {problem}" for problem in invalid[key])
        elif recipient_list is None:
            near = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            problems.append(
                f"{typed}no list {key!r} in {catalogue.directory}; {hint}known lists: {known}"
            )
        elif not recipient_list.max_classification.admits(classification):
            problems.append(
                f"list {key!r} is cleared only to {recipient_list.max_classification}, "
                f"but the pack is marked {classification}; choose another list"
            )
        else:
            selected.append(recipient_list)
    return tuple(selected), tuple(problems)


def unique_recipients(lists: Sequence[RecipientList]) -> tuple[Recipient, ...]:
    """Every address once, kept by the first list that names it."""
    seen: dict[str, Recipient] = {}
    for recipient_list in lists:
        for recipient in recipient_list.recipients:
            seen.setdefault(recipient.email.casefold(), recipient)
    return tuple(seen.values())
