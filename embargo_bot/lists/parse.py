"""Recipient lists: one YAML file per partner list, validated strictly.

Admins edit these files by hand, so every problem in every file is reported at
once as ``file:line: message``. Lines come from the composed YAML nodes, which
is why the files are walked node by node rather than loaded into plain dicts.
``parse_list`` is pure; ``load_lists`` is the only part that touches the disk.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from email_validator import EmailNotValidError, validate_email

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.text_safety import has_visible_text, header_problem

LIST_SUFFIXES = (".yaml", ".yml")

# Key -> required?
_LIST_KEYS = {
    "name": True,
    "description": False,
    "allowed_domains": True,
    "max_classification": True,
    "require_encryption": False,
    "recipients": True,
}
_RECIPIENT_KEYS = {"email": True, "name": False, "smime_certificate": False}

# PyYAML's wheels carry libyaml; a build without it falls back to the pure-Python parser.
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
# YAML reads these unquoted values as something other than text.
_QUOTABLE = {
    "tag:yaml.org,2002:int": "the number",
    "tag:yaml.org,2002:float": "the number",
    "tag:yaml.org,2002:bool": "the yes/no value",
    "tag:yaml.org,2002:timestamp": "the date",
}
_HEADER_SAFE = "it goes into email headers and before partners, so write it plainly on one line"


@dataclass(frozen=True)
class Recipient:
    email: str  # email-validator's normalised form
    name: str | None
    list_key: str
    # An S/MIME certificate: this recipient's messages are encrypted to it.
    certificate: Path | None = None
    line: int = field(default=0, compare=False)  # where the list file names it


@dataclass(frozen=True)
class RecipientList:
    key: str
    name: str
    description: str | None
    allowed_domains: tuple[str, ...]  # lower-case
    max_classification: Classification
    recipients: tuple[Recipient, ...]
    path: Path


@dataclass(frozen=True)
class ListProblem:
    path: Path
    line: int | None  # 1-based; None when the problem is the whole file
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


@dataclass
class _FileCheck:
    """Walks one composed file, collecting problems instead of stopping at the first."""

    path: Path
    problems: list[ListProblem] = field(default_factory=list)

    def report(self, where: yaml.Node | int | None, message: str) -> None:
        line = where.start_mark.line + 1 if isinstance(where, yaml.Node) else where
        self.problems.append(ListProblem(self.path, line, message))

    def compose(self, text: str) -> yaml.Node | None:
        try:
            # libyaml reads a 1,000-recipient list in a tenth of the time; its errors say
            # less, so a file it refuses is read again by PyYAML's own parser to report it.
            return self._checked(yaml.compose(text, Loader=_FAST_LOADER))
        except (yaml.YAMLError, RecursionError):
            pass
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except RecursionError:
            self.report(None, "nested too deeply to be a recipient list; check the file")
            return None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            detail = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
            message = f"not valid YAML: {detail}; check the indentation and quoting near here"
            self.report(None if mark is None else mark.line + 1, message)
            return None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            self.report(line, f"character U+{exc.character:04X} is not allowed in YAML; remove it")
            return None
        return self._checked(root)

    def _checked(self, root: yaml.Node | None) -> yaml.Node | None:
        if root is None:
            required = ", ".join(key for key, needed in _LIST_KEYS.items() if needed)
            self.report(None, f"file is empty; a list needs the keys {required}")
        return root

    def fields(
        self, node: yaml.MappingNode, keys: Mapping[str, bool], what: str
    ) -> dict[str, yaml.Node]:
        found: dict[str, yaml.Node] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if key_node.tag == _STR_TAG else None
            if key is None or key not in keys:
                self.report(key_node, _unknown_key(key_node, keys, what))
            elif key in found:
                self.report(
                    key_node, f"'{key}' is given twice (first on line {first_line[key]}); keep one"
                )
            else:
                found[key] = value_node
                first_line[key] = key_node.start_mark.line + 1
        for key, required in keys.items():
            if required and key not in found:
                self.report(node, f"{what} is missing required key '{key}'; add it")
        return found

    def text(self, node: yaml.Node | None, what: str, *, required: bool) -> str | None:
        if node is None:
            return None
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_STR_TAG, _NULL_TAG):
            hint = "; put it in quotes" if node.tag in _QUOTABLE else ""
            self.report(node, f"{what} must be text, not {_describe(node)}{hint}")
            return None
        value = "" if node.tag == _NULL_TAG else str(node.value).strip()
        if not value:
            if required:
                self.report(node, f"{what} must not be empty")
            return None
        problem = header_problem(value)
        if problem is not None:
            self.report(node, f"{what} {problem}; {_HEADER_SAFE}")
            return None
        if not has_visible_text(value):
            self.report(node, f"{what} has no visible text; write it in words")
            return None
        return value

    def items(self, node: yaml.Node | None, what: str, example: str) -> list[yaml.Node]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.report(node, f"{what} must be a list, not {_describe(node)}, e.g. {example}")
            return []
        if not node.value:
            self.report(node, f"{what} must not be empty, e.g. {example}")
        return list(node.value)

    def domains(self, node: yaml.Node | None) -> tuple[str, ...] | None:
        """The allowed domains, or None when any is missing or invalid."""
        before = len(self.problems)
        domains: list[str] = []
        for item in self.items(node, "allowed_domains", "[police.example]"):
            raw = self.text(item, "each allowed domain", required=True)
            if raw is None:
                continue
            hint = "write a bare domain such as police.example"
            if "@" in raw:
                self.report(item, f"allowed domain '{raw}' looks like an address; {hint}")
                continue
            try:
                # ASCII (punycode) form, as addresses are stored and compared.
                domain = validate_email(
                    f"postmaster@{raw}", check_deliverability=False
                ).ascii_domain
            except EmailNotValidError as exc:
                reason = str(exc).replace("The part after the @-sign", "The domain")
                self.report(item, f"allowed domain '{raw}' is not valid: {reason} ({hint})")
                continue
            if domain.lower() not in domains:
                domains.append(domain.lower())
        return tuple(domains) if node is not None and len(self.problems) == before else None

    def classification(self, node: yaml.Node | None) -> Classification | None:
        value = self.text(node, "max_classification", required=True)
        if node is None or value is None:
            return None
        try:
            return Classification(value)
        except ValueError:
            allowed = " or ".join(c.value for c in Classification)
            self.report(node, f"max_classification '{value}' is not known; use {allowed}")
            return None

    def flag(self, node: yaml.Node | None, what: str) -> bool:
        if node is None or node.tag == _NULL_TAG:
            return False
        if node.tag == "tag:yaml.org,2002:bool" and isinstance(node, yaml.ScalarNode):
            return str(node.value).lower() in {"true", "yes", "on"}
        self.report(node, f"{what} must be true or false, not {_describe(node)}")
        return False

    def recipients(
        self,
        node: yaml.Node | None,
        key: str,
        domains: tuple[str, ...] | None,
        *,
        must_encrypt: bool,
    ) -> tuple[Recipient, ...]:
        example = "[{email: comms@police.example}]"
        recipients: list[Recipient] = []
        first_line: dict[str, int] = {}
        for item in self.items(node, "recipients", example):
            if not isinstance(item, yaml.MappingNode):
                self.report(item, f"each recipient must be a mapping with an email, e.g. {example}")
                continue
            found = self.fields(item, _RECIPIENT_KEYS, "this recipient")
            name = self.text(found.get("name"), "recipient name", required=False)
            email_node = found.get("email")
            raw = self.text(email_node, "email", required=True)
            if email_node is None or raw is None:
                continue
            try:
                address = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
            except EmailNotValidError as exc:
                self.report(email_node, f"'{raw}' is not a valid email address: {exc}")
                continue
            # The ASCII form (an international domain in punycode) is what goes on
            # the wire, so it is the one stored and compared.
            ascii_address = address.ascii_email or address.normalized
            folded = ascii_address.casefold()
            if folded in first_line:
                self.report(
                    email_node,
                    f"{address.normalized} is listed twice (first on line {first_line[folded]}); "
                    "remove one",
                )
                continue
            first_line[folded] = email_node.start_mark.line + 1
            if domains is not None and not _domain_allowed(address.ascii_domain, domains):
                self.report(
                    email_node,
                    f"{address.normalized} is not at an allowed domain ({', '.join(domains)}); "
                    "correct the address, or add its domain to allowed_domains if it is right",
                )
            certificate = self.text(
                found.get("smime_certificate"), "smime_certificate", required=False
            )
            if certificate is None and must_encrypt:
                self.report(
                    email_node,
                    f"{address.normalized} has no smime_certificate, and this list has "
                    "require_encryption: true; add the path of their certificate (PEM)",
                )
            recipients.append(
                Recipient(
                    ascii_address,
                    name,
                    key,
                    certificate=None if certificate is None else self.path.parent / certificate,
                    line=email_node.start_mark.line + 1,
                )
            )
        return tuple(recipients)

    def recipient_list(self, root: yaml.Node) -> RecipientList | None:
        if not isinstance(root, yaml.MappingNode):
            self.report(
                root,
                f"the file must hold keys such as 'name:' at the top level, not {_describe(root)}",
            )
            return None
        found = self.fields(root, _LIST_KEYS, "the list")
        name = self.text(found.get("name"), "name", required=True)
        description = self.text(found.get("description"), "description", required=False)
        domains = self.domains(found.get("allowed_domains"))
        ceiling = self.classification(found.get("max_classification"))
        must_encrypt = self.flag(found.get("require_encryption"), "require_encryption")
        recipients = self.recipients(
            found.get("recipients"), self.path.stem, domains, must_encrypt=must_encrypt
        )
        if self.problems or name is None or domains is None or ceiling is None:
            return None
        return RecipientList(
            self.path.stem, name, description, domains, ceiling, recipients, self.path
        )


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if node.tag == _NULL_TAG:
        return "an empty value"
    # Values are echoed with repr: a line break in one must not forge another problem line.
    if node.tag in _QUOTABLE:
        return f"{_QUOTABLE[node.tag]} {node.value}"  # a number or date: one line by nature
    return f"{str(node.value)!r}" if node.tag == _STR_TAG else f"a value tagged {node.tag}"


def _unknown_key(key_node: yaml.Node, keys: Mapping[str, bool], what: str) -> str:
    if not isinstance(key_node, yaml.ScalarNode):
        return f"keys in {what} must be plain names, not {_describe(key_node)}"
    close = difflib.get_close_matches(str(key_node.value), list(keys), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key {str(key_node.value)!r} in {what}; {hint}allowed keys: {', '.join(keys)}"


def _domain_allowed(domain: str, allowed: Sequence[str]) -> bool:
    domain = domain.lower()
    return any(domain == a or domain.endswith("." + a) for a in allowed)


def parse_list(path: Path, text: str) -> tuple[RecipientList | None, list[ListProblem]]:
    """Validate one file's text; the list is None whenever there is any problem."""
    check = _FileCheck(path)
    root = check.compose(text)
    result = None if root is None else check.recipient_list(root)
    if check.problems:
        return None, sorted(check.problems, key=lambda p: p.line or 0)
    return result, []
