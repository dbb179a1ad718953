"""The live URL an official queues: https, no credentials, a host that is what it seems.

The URL is what every partner follows at the lift, so a deceptive one is sent with the
organisation's authority. ``https://www.gov.example@evil.example/...`` goes to
evil.example (everything before "@" is a user name); ``www.g\u043ev.example`` with a
Cyrillic "o" is a different host that looks the same. So credentials are refused, the host is
shown in ASCII (punycode) wherever an official confirms the pack, where the look-alike
reads ``xn--gv-...``, and ``EMBARGO_BOT_LIVE_DOMAINS`` can limit live URLs to the
organisation's own publishing sites.

Hosts are converted with the ``idna`` package (IDNA 2008 with the UTS #46 mapping, what
browsers do), not the standard library's ``idna`` codec, which implements the older IDNA
2003 and maps some characters (ß, ς) to different hosts than a browser would.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import idna

from embargo_bot.domain.text_safety import first_unsafe

EXAMPLE = "e.g. https://www.gov.scot/isbn/9781802019445"


@dataclass(frozen=True)
class LiveUrl:
    """A checked live URL: as it will be sent (host in ASCII), and its host."""

    url: str
    host: str  # ASCII: punycode for an internationalised name
    written_host: str  # as the official typed it, for "shown as" lines

    def confirmation(self) -> str:
        """The URL for a confirmation line, saying so when the host was not plain ASCII."""
        if self.written_host.lower().rstrip(".") == self.host:
            return self.url
        return f"{self.url} (the host {self.written_host!r} is {self.host})"


def ascii_host(host: str) -> str | None:
    """``host`` in lower-case ASCII (punycode), without a trailing dot; None if invalid."""
    cleaned = host.strip().rstrip(".")
    if not cleaned:
        return None
    try:
        return str(ipaddress.ip_address(cleaned.strip("[]")))
    except ValueError:
        pass
    try:
        return idna.encode(cleaned, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return None


def normalise_domains(domains: Iterable[str]) -> tuple[list[str], list[str]]:
    """``EMBARGO_BOT_LIVE_DOMAINS`` entries in ASCII, and a problem line for each bad one."""
    normal: list[str] = []
    problems: list[str] = []
    for domain in domains:
        entry = domain.strip().removeprefix("*.").removeprefix(".")
        if not entry:
            continue
        converted = ascii_host(entry)
        if converted is None or "/" in entry or ":" in entry:
            problems.append(
                f"EMBARGO_BOT_LIVE_DOMAINS: {domain!r} is not a domain name; "
                "give host names only, separated by commas, e.g. gov.scot,www.gov.scot"
            )
        else:
            normal.append(converted)
    return normal, problems


def host_is_allowed(host: str, domains: Iterable[str]) -> bool:
    """Whether ASCII ``host`` is one of ``domains`` or a subdomain of one (ASCII too)."""
    return any(host == domain or host.endswith("." + domain) for domain in domains)


_NOT_IN_LINKS = frozenset('<>"`{}|^')


def _character_problem(url: str) -> str | None:
    unsafe = first_unsafe(url)
    if unsafe is not None:
        return unsafe.describe()
    for ch in url:
        category = unicodedata.category(ch)
        if ch == " ":
            return "contains a space; copy the link from the publication's address bar"
        if category[0] in "CZ":
            # What text may hold but a link never does (zero-width and other format
            # characters, unusual spaces): each can make a link read as something else.
            return f"contains the invisible character U+{ord(ch):04X}; remove it"
        if ch == "\\":
            return "contains a backslash, which browsers read as '/'; write '/'"
        if ch in _NOT_IN_LINKS:
            # RFC 3986 2.2/2.3: never part of a link as written; in an email they would
            # end the link early, or open markup.
            return f"contains {ch!r}, which is not allowed in a link; check the link"
    return None


def check_live_url(
    value: str, allowed_domains: Iterable[str] = ()
) -> tuple[LiveUrl | None, list[str]]:
    """The checked live URL, or None and the problems, each one line naming ``--url``.

    ``allowed_domains`` are ASCII (from ``normalise_domains``); empty allows any host.
    """
    cleaned = value.strip()
    shown = repr(value)
    problem = _character_problem(cleaned)
    if problem is not None:
        return None, [f"--url: {shown} {problem}"]
    try:
        parts = urlsplit(cleaned)
        port = parts.port
    except ValueError:  # an unbalanced "[" or a port that is not a number
        return None, [f"--url: {shown} is not a link; {EXAMPLE}"]
    if parts.scheme.lower() == "http":
        return None, [f"--url: {shown} is not an https:// link (it is plain http); use https"]
    if parts.scheme.lower() != "https" or not parts.netloc:
        return None, [f"--url: {shown} is not an https:// link; {EXAMPLE}"]
    if "@" in parts.netloc:
        before, _, host_part = parts.netloc.rpartition("@")
        return None, [
            f"--url: {shown} has {before + '@'!r} before the host, so a browser goes to "
            f"{host_part!r}; remove everything between '//' and '@'"
        ]
    written_host = parts.hostname or ""
    host = ascii_host(written_host)
    if host is None:
        return None, [f"--url: {shown} has no valid host name; {EXAMPLE}"]
    if port == 0:
        return None, [f"--url: {shown} has port 0; remove ':0'"]
    allowed = list(allowed_domains)
    if allowed and not host_is_allowed(host, allowed):
        return None, [
            f"--url: the host {host} is not one of the publishing sites in "
            f"EMBARGO_BOT_LIVE_DOMAINS ({', '.join(allowed)}); check the link, or add the "
            "site to that setting"
        ]
    return LiveUrl(url=_with_host(parts, host, port), host=host, written_host=written_host), []


def _with_host(parts: SplitResult, host: str, port: int | None) -> str:
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != 443:
        netloc += f":{port}"
    return parts._replace(scheme="https", netloc=netloc).geturl()
