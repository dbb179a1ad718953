"""The store's schema revisions: create a new store, recognise an old one, upgrade.

Alembic runs from the package itself (no alembic.ini), on a connection this
module opens, inside one write transaction: on SQLite ``BEGIN IMMEDIATE``, on
PostgreSQL under an advisory lock, so two processes preparing one store at
once take turns and the second finds the work done.

- a new store (no tables) is created at the newest revision;
- a store made before migrations (``meta`` schema 2, no ``alembic_version``)
  is stamped with revision 0001, which is that schema;
- any other store older than this release is refused until ``embargo-bot db
  upgrade`` has run, so a service never runs on tables it does not know.

A store already at ``HEAD`` is checked with one query, without loading Alembic.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, select, text, type_coerce
from sqlalchemy.types import NullType

from embargo_bot.domain.errors import StoreError
from embargo_bot.store.tables import LEGACY_SCHEMA, meta

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision under migrations/versions (a test checks they agree).
HEAD = "0007"
FIRST = "0001"
# Any constant will do: it names "preparing the store" among advisory locks.
_PREPARE_LOCK = 0x656D6261


def lock(connection: Connection) -> None:
    """Make other processes preparing the same store wait until this transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PREPARE_LOCK})


def current(connection: Connection) -> str | None:
    """The store's recorded revision; None for a new store or one made before migrations."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def prepare(connection: Connection, shown: str, *, create: bool) -> None:
    """Make the store usable by this release, or refuse it with what to do.

    Runs in the caller's write transaction, after ``lock``.
    """
    if current(connection) == HEAD:
        return
    revision = _recognise(connection, shown)
    if revision is None:
        if not create:
            raise StoreError(
                f"there is no store at {shown}: `embargo-bot run` or `queue` creates one; "
                "check EMBARGO_BOT_DATABASE"
            )
        _upgrade(connection)
    elif revision != HEAD:
        raise StoreError(
            f"the store at {shown} is at revision {revision}; this embargo-bot needs "
            f"{HEAD}: run `embargo-bot db upgrade`"
        )


def upgrade_in(connection: Connection, shown: str) -> tuple[str | None, str]:
    """Bring the store to the newest revision; returns (from, to). Idempotent."""
    before = _recognise(connection, shown)
    if before != HEAD:
        _upgrade(connection)
    return before, HEAD


def _recognise(connection: Connection, shown: str) -> str | None:
    """The store's revision, after stamping one made before migrations; None when empty."""
    revision = current(connection)
    if revision is not None:
        if revision not in known_revisions():
            raise StoreError(
                f"the store at {shown} is at revision {revision}, which this embargo-bot "
                f"(revision {HEAD}) does not know: use the release that upgraded it"
            )
        return revision
    if not inspect(connection).has_table("meta"):
        return None
    value = connection.execute(
        select(type_coerce(meta.c.value, NullType())).where(meta.c.name == "schema")
    ).scalar()
    schema = None if value is None else int(value)
    if schema != LEGACY_SCHEMA:
        raise StoreError(
            f"the store at {shown} is schema version {schema}; this embargo-bot reads "
            f"version {LEGACY_SCHEMA}. Use the release that wrote it, or start a new store "
            "with EMBARGO_BOT_DATABASE"
        )
    from alembic import command

    command.stamp(_config(connection), FIRST)
    return FIRST


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_config(connection), "head")


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    return config


def script_head() -> str | None:
    """The newest revision among the migration scripts themselves."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
