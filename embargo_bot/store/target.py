"""Which store EMBARGO_BOT_DATABASE names: a SQLite file, or a PostgreSQL database.

Pure: nothing here touches a file or the network. Passwords stay in the URL
object and never reach a message; ``shown`` is the form safe to print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from embargo_bot.domain.errors import ConfigError

SETTING = "EMBARGO_BOT_DATABASE"
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO_PASSWORD = re.compile(r"(://[^/?#@:]*):[^/?#@]*@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


@dataclass(frozen=True)
class StoreTarget:
    """What to open: a SQLAlchemy URL, and the file when the store is SQLite."""

    url: URL
    path: Path | None = None
    # The setting as the user wrote it, password masked: what messages name.
    written: str | None = None

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def shown(self) -> str:
        """The store as messages name it: the file, or the URL with any password masked."""
        if self.path is not None:
            return str(self.path)
        if self.written is not None:
            return self.written
        return mask(self.url.set(drivername="postgresql").render_as_string(hide_password=True))


def sqlite_target(path: Path) -> StoreTarget:
    return StoreTarget(url=URL.create("sqlite", database=str(path)), path=path)


def choose_store(value: str | Path, *, password: str | None = None) -> StoreTarget:
    """The store a setting names; ``password`` is used only when the URL has none.

    Without either, libpq's own PGPASSFILE or ~/.pgpass applies, as for psql.
    """
    if isinstance(value, Path):
        # A URL read as a Path has lost a slash ("postgresql:/…"): never a file to create.
        if _SCHEME.match(str(value).replace(":/", "://", 1)):
            raise ConfigError(
                f"{SETTING}: {mask(str(value))!r} looks like a URL read as a file path; "
                "give a file path for SQLite, or postgresql://USER@HOST/DATABASE"
            )
        return sqlite_target(value)
    text = value.strip()
    if not text:
        raise ConfigError(f"{SETTING} is empty: give a file path (SQLite) or a postgresql:// URL")
    scheme = _SCHEME.match(text)
    if scheme is None:
        return sqlite_target(Path(text).expanduser())
    if scheme.group(1).lower() not in _POSTGRES_SCHEMES:
        hint = " (for SQLite give the file's path itself)" if "sqlite" in scheme.group(1) else ""
        raise ConfigError(
            f"{SETTING}: {mask(text)!r} is not a store embargo-bot can use{hint}: give a file "
            "path for SQLite, or postgresql://USER@HOST/DATABASE for PostgreSQL"
        )
    try:
        url = make_url(text)
        url.port  # noqa: B018 -- reading it checks it is a number
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"{SETTING}: {mask(text)!r} is not a valid PostgreSQL URL; the form is "
            "postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full, or "
            "postgresql://USER@/DATABASE?host=SOCKET_DIR for a unix socket"
        ) from None
    url = url.set(drivername="postgresql+psycopg")
    if url.password is None and "password" not in url.query and password:
        url = url.set(password=password)
    return StoreTarget(url=url, written=mask(text))


def mask(text: str) -> str:
    """A URL with any password in it replaced by ***."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", text))
