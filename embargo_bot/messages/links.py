"""Does a text lead to the live URL? Links compared in their normal form, not as written.

Before the lift nothing may carry the live link, and an official (or a pasted draft) can
write it many ways that a browser follows to the same page: ``%70robe`` for ``probe``, a
``/./`` or ``/x/../`` segment, ``:443``, a trailing dot on the host, upper case, a Unicode
host for its punycode, HTML entities, backslashes for slashes. So every link and bare URL
is brought to the normal form of RFC 3986 section 6 (with the WHATWG URL Standard's
leniencies for http and https, which is what browsers follow) before it is compared.

The comparison is deliberately wider than equality, as the check it replaces was (a
case-insensitive substring test on the URL without its scheme, ``www.`` and trailing
slash): the scheme, a leading ``www.``, user information, ports 80 and 443, letter case,
repeated and trailing slashes are ignored, and a link that *starts with* the live URL
(a query, a fragment, a longer path) counts as carrying it.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser

import idna
from markdown_it import MarkdownIt

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 reserved characters are kept as they are; any other (a stray "%" too) is escaped.
_KEPT = _UNRESERVED | frozenset(":/?#[]@!$&'()*+,;=")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(.*)", re.DOTALL)
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_HEX = frozenset("0123456789abcdefABCDEF")
# A URL written in text runs to the next space, quote or angle bracket.
_URL_IN_TEXT = re.compile(r"(?i)(?<![a-z0-9+.\-])(?:https?:|(?<=[\s(\[=])//)[^\s<>\"'`]+")
_URL_END = re.compile(r"[\s<>\"'`]")
# IDNA's other full stops (UTS #46 maps them to "."), for hosts written without a scheme.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_MARKDOWN = MarkdownIt("js-default")


@dataclass(frozen=True)
class WebAddress:
    """An http or https URL taken apart, each part in its normal form."""

    scheme: str
    userinfo: str | None
    host: str
    port: int | None
    path: str
    query: str | None
    fragment: str | None

    def __str__(self) -> str:
        user = "" if self.userinfo is None else f"{self.userinfo}@"
        port = "" if self.port is None else f":{self.port}"
        query = "" if self.query is None else f"?{self.query}"
        fragment = "" if self.fragment is None else f"#{self.fragment}"
        return f"{self.scheme}://{user}{self.host}{port}{self.path}{query}{fragment}"


def parse_web_address(url: str) -> WebAddress | None:
    """``url`` taken apart and normalised, or None if it is not an http(s) URL with a host.

    A URL with no scheme but starting with ``//`` (as an ``href`` may) is taken as https.
    """
    # WHATWG: surrounding spaces and controls are dropped, tabs and newlines anywhere.
    text = re.sub(r"[\t\n\r]", "", url.strip(_C0_AND_SPACE))
    match = _SCHEME.fullmatch(text)
    if match is not None:
        scheme, rest = match.group(1).lower(), match.group(2)
    elif text.startswith(("//", "\\\\")):
        scheme, rest = "https", text
    else:
        return None
    if scheme not in _DEFAULT_PORTS:
        return None
    # For http and https browsers read a backslash as a slash and skip any number of
    # them after the scheme, so "https:www.gov.example" leads to the same site.
    rest = rest.replace("\\", "/").lstrip("/")
    rest, fragment = _split_off(rest, "#")
    rest, query = _split_off(rest, "?")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    hostport, userinfo = authority, None
    if "@" in authority:
        userinfo, _, hostport = authority.rpartition("@")
    host_and_port = _host_and_port(hostport)
    if host_and_port is None:
        return None
    host, port = host_and_port
    return WebAddress(
        scheme=scheme,
        userinfo=None if userinfo is None else _escapes(userinfo),
        host=host,
        port=None if port == _DEFAULT_PORTS[scheme] else port,
        path=_remove_dot_segments(_escapes(path)) or "/",
        query=None if query is None else _escapes(query),
        fragment=None if fragment is None else _escapes(fragment),
    )


def normalise_url(url: str) -> str | None:
    """The RFC 3986 section 6 normal form of an http(s) URL, or None if it is not one.

    Scheme and host in lower case, the host's trailing dot removed and a Unicode host in
    punycode, the default port dropped, dot segments removed, percent-escapes of
    unreserved characters decoded and the others in upper case, an empty path as "/".
    """
    address = parse_web_address(url)
    return None if address is None else str(address)


def _split_off(text: str, mark: str) -> tuple[str, str | None]:
    before, found, after = text.partition(mark)
    return (before, after) if found else (text, None)


def _host_and_port(hostport: str) -> tuple[str, int | None] | None:
    if hostport.startswith("["):
        host, bracket, port_text = hostport.partition("]")
        host = host + bracket
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if port_text and not port_text.isdigit():
        return None
    port = int(port_text) if port_text else None
    normal = _host(host)
    return None if normal is None else (normal, port)


def _host(raw: str) -> str | None:
    decoded = _percent_decode(raw).rstrip(".").translate(_DOTS).rstrip(".")
    if not decoded:
        return None
    if decoded.startswith("["):
        return decoded.lower()
    try:
        return str(ipaddress.ip_address(decoded))
    except ValueError:
        pass
    try:
        return idna.encode(decoded, uts46=True).decode("ascii").rstrip(".")
    except idna.IDNAError:
        # Not a valid IDN (an underscore, say): browsers may still go there, so compare it
        # in the same folded form rather than drop it.
        return unicodedata.normalize("NFKC", decoded).casefold()


def _percent_decode(text: str) -> str:
    return re.sub(
        r"(%[0-9A-Fa-f]{2})+",
        lambda m: bytes.fromhex(m.group(0).replace("%", "")).decode("utf-8", "replace"),
        text,
    )


def _escapes(part: str) -> str:
    """Percent-escapes in RFC 3986 normal form; other characters outside a URL escaped."""
    out: list[str] = []
    i = 0
    while i < len(part):
        ch = part[i]
        if ch == "%" and i + 2 < len(part) and part[i + 1] in _HEX and part[i + 2] in _HEX:
            decoded = chr(int(part[i + 1 : i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else part[i : i + 3].upper())
            i += 3
            continue
        if ch in _KEPT:
            out.append(ch)
        else:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    output: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    trailing = path.endswith(("/.", "/..")) or path in (".", "..")
    result = "/" + "/".join(output) if path.startswith("/") or output else ""
    return result + "/" if trailing and not result.endswith("/") else result


def comparison_key(url: str) -> str | None:
    """What two URLs must share to lead to the same page, as this check sees it."""
    address = parse_web_address(url)
    if address is None:
        return None
    port = "" if address.port in (None, 80, 443) else f":{address.port}"
    path = re.sub(r"/{2,}", "/", address.path).rstrip("/")
    query = "" if address.query is None else f"?{address.query}"
    fragment = "" if address.fragment is None else f"#{address.fragment}"
    return f"{address.host.removeprefix('www.')}{port}{path}{query}{fragment}".lower()


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Every attribute, not only href and src: srcset, action, formaction, poster,
        # background and style can all fetch or lead to a URL.
        self.attributes.extend(value.strip() for _, value in attrs if value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _read_html(markup: str) -> tuple[list[str], str]:
    """Attribute values, and the text as a reader sees it, entities decoded.

    The text is joined without the tags, so ``.../isbn/<b>p</b>robe``, which shows the
    whole URL, is read as one.
    """
    reader = _HtmlReader()
    reader.feed(markup)
    reader.close()
    return reader.attributes, "".join(reader.text)


def urls_in_html(markup: str) -> list[str]:
    """Every attribute value of every tag, and every URL in the attributes and the text."""
    attributes, text = _read_html(markup)
    in_attributes = [url for value in attributes for url in urls_in_plain_text(value)]
    return [*attributes, *in_attributes, *urls_in_plain_text(text)]


def _read_markdown(source: str) -> tuple[list[str], str]:
    """Link and image targets, and the text as rendered, without emphasis or code marks.

    ``https://www.gov.example/isbn/**p**robe`` renders as the whole URL in bold parts.
    """
    targets: list[str] = []
    text: list[str] = []
    for block in _MARKDOWN.parse(source):
        if block.type in ("fence", "code_block"):
            text.append(block.content)
        for token in block.children or ():
            for name in ("href", "src"):
                value = token.attrGet(name)
                if isinstance(value, str):
                    targets.append(value)
            if token.type in ("text", "code_inline"):
                text.append(token.content)
            elif token.type in ("softbreak", "hardbreak"):
                text.append("\n")
        text.append("\n")
    return targets, "".join(text)


def urls_in_markdown(source: str) -> list[str]:
    """The target of every link and image, inline, reference-style or autolink."""
    return _read_markdown(source)[0]


def urls_in_plain_text(text: str) -> list[str]:
    """Every http(s) URL written out in ``text``, with HTML entities decoded too."""
    found = [m.group(0) for m in _URL_IN_TEXT.finditer(text)]
    unescaped = html.unescape(text)
    if unescaped != text:
        found.extend(m.group(0) for m in _URL_IN_TEXT.finditer(unescaped))
    return found


def _host_mentions(text: str, host: str) -> list[str]:
    """URLs written without a scheme ("www.gov.example/isbn/...") on the live URL's site."""
    labels = host.split(".")
    tail = ".".join(labels[-2:])
    tails = {tail}
    with contextlib.suppress(idna.IDNAError):
        tails.add(idna.decode(tail))
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_DOTS)
    found: list[str] = []
    for tail in tails:
        start = folded.find(tail)
        while start >= 0:
            begin = start
            while begin > 0 and (folded[begin - 1].isalnum() or folded[begin - 1] in ".-_%"):
                begin -= 1
            end_match = _URL_END.search(folded, start)
            end = len(folded) if end_match is None else end_match.start()
            found.append("https://" + folded[begin:end])
            start = folded.find(tail, start + 1)
    return found


def find_live_link(text: str, live_url: str) -> str | None:
    """The first link or URL in ``text`` that leads to ``live_url``, as written, or None.

    ``text`` may be Markdown source, HTML or plain text: all three readings are tried,
    so one call covers a release's source and each rendered part of an email.
    """
    live = parse_web_address(live_url)
    live_key = comparison_key(live_url)
    if live is None or live_key is None:
        return None
    live_key = live_key.split("#", 1)[0]
    # A URL with a zero-width space or soft hyphen in it leads nowhere, but a partner who
    # reads it has the link all the same: read the text without format characters too.
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    candidates: list[str] = []
    texts: dict[str, None] = {}
    for reading in dict.fromkeys([text, visible]):
        targets, markdown_text = _read_markdown(reading)
        attributes, html_text = _read_html(reading)
        candidates += [*targets, *attributes]
        texts.update(dict.fromkeys([reading, markdown_text, html_text, *attributes]))
    for reading in texts:
        candidates += urls_in_plain_text(reading)
        candidates += _host_mentions(reading, live.host)
    for candidate in candidates:
        key = comparison_key(candidate)
        if key is not None and key.startswith(live_key):
            return candidate
    return None
