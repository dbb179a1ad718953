"""VERP return paths: ``local+TOKEN@domain``, one token per delivery.

The token is random, not derived from anything: it says nothing about the
partner's address or the pack to whoever sees the envelope, and it needs no key
that could leak or be rotated. The store keeps it with the delivery (unique),
which is the only way back from a token to a delivery.

Eighty random bits in lower-case base32 (RFC 4648, ``a-z2-7``) make 16
characters that survive SMTP, URLs and servers that fold the local part to
lower case, and that nobody can guess into a real delivery.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from embargo_bot.domain.bounces import VERP_TOKEN_BYTES, new_verp_token

TOKEN_BYTES = VERP_TOKEN_BYTES
TOKEN_LENGTH = 16  # base32 of 10 bytes, no padding
SEPARATOR = "+"
_TOKEN = re.compile(rf"[a-z2-7]{{{TOKEN_LENGTH}}}")
_MAX_LOCAL = 64  # RFC 5321 4.5.3.1.1
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")  # dot-atom text, no quoting


def new_token() -> str:
    """A fresh token for one delivery; the store makes one for each."""
    return new_verp_token()


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def verp_address(return_path: str, token: str) -> str:
    """``bounces@gov.example`` + token -> ``bounces+TOKEN@gov.example``.

    Raises ValueError for a token not made by :func:`new_token`, or a return
    path that cannot carry one (quoted local part, no domain, too long).
    """
    if not is_token(token):
        raise ValueError("not a VERP token")
    local, domain = _split(return_path)
    if _LOCAL.fullmatch(local) is None:
        raise ValueError(f"return path {return_path!r}: its local part cannot carry a token")
    tagged = f"{local}{SEPARATOR}{token}"
    if len(tagged) > _MAX_LOCAL:
        raise ValueError(
            f"return path {return_path!r}: local part too long for a VERP token "
            f"(at most {_MAX_LOCAL - TOKEN_LENGTH - 1} characters)"
        )
    return f"{tagged}@{domain}"


def token_from_address(address: str, return_path: str) -> str | None:
    """The token in ``address`` if it is ``return_path`` tagged with one.

    Domains compare case-insensitively (RFC 5321 2.4); so does the local part,
    since relays and mailbox servers fold it more often than not.
    """
    try:
        base_local, base_domain = _split(return_path)
        local, domain = _split(address.strip().strip("<>").strip())
    except ValueError:
        return None
    if domain.lower() != base_domain.lower():
        return None
    prefix = base_local.lower() + SEPARATOR
    local = local.lower()
    if not local.startswith(prefix):
        return None
    token = local[len(prefix) :]
    return token if is_token(token) else None


def token_from_addresses(addresses: Iterable[str], return_path: str) -> str | None:
    """The one token among the report's envelope addresses; None if none or several differ."""
    tokens = {t for a in addresses if (t := token_from_address(a, return_path)) is not None}
    return tokens.pop() if len(tokens) == 1 else None


def _split(address: str) -> tuple[str, str]:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{address!r} is not an email address")
    return local, domain
