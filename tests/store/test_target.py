"""Choosing the store from EMBARGO_BOT_DATABASE: a pure function, a table of cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from embargo_bot.domain.errors import ConfigError
from embargo_bot.store import choose_store
from embargo_bot.store.target import mask

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("embargo-bot.db", Path("embargo-bot.db")),
        ("/var/lib/embargo-bot/store.db", Path("/var/lib/embargo-bot/store.db")),
        ("  relative/dir/store.db ", Path("relative/dir/store.db")),
        ("postgresql:not-a-url.db", Path("postgresql:not-a-url.db")),
        (Path("/srv/store.db"), Path("/srv/store.db")),
    ],
)
def test_a_file_path_is_a_sqlite_store(value: str | Path, path: Path) -> None:
    target = choose_store(value)
    assert target.dialect == "sqlite" and target.path == path
    assert target.shown == str(path)


@pytest.mark.parametrize(
    ("value", "host", "database", "query"),
    [
        (
            "postgresql://embargo@db.internal/embargo?sslmode=verify-full",
            "db.internal",
            "embargo",
            {"sslmode": "verify-full"},
        ),
        ("postgres://embargo@db.internal:6432/embargo", "db.internal", "embargo", {}),
        (
            "postgresql://embargo@/embargo?host=/run/postgresql",
            None,
            "embargo",
            {"host": "/run/postgresql"},
        ),
        ("PostgreSQL://embargo@[::1]/embargo", "::1", "embargo", {}),
    ],
)
def test_a_libpq_url_is_postgresql_through_psycopg(
    value: str, host: str | None, database: str, query: dict[str, str]
) -> None:
    target = choose_store(value)
    assert target.path is None and target.dialect == "postgresql"
    assert target.url.drivername == "postgresql+psycopg"
    assert (target.url.username, target.url.host, target.url.database) == (
        "embargo",
        host,
        database,
    )
    assert dict(target.url.query) == query
    assert target.url.password is None


def test_the_password_comes_from_the_url_before_the_setting() -> None:
    in_url = choose_store(f"postgresql://embargo:{SECRET}@db/embargo", password="other")
    assert in_url.url.password == SECRET
    from_setting = choose_store("postgresql://embargo@db/embargo", password=SECRET)
    assert from_setting.url.password == SECRET
    # With neither, libpq reads PGPASSFILE or ~/.pgpass itself.
    assert choose_store("postgresql://embargo@db/embargo", password=None).url.password is None


def test_a_password_with_url_characters_survives() -> None:
    awkward = "p@ss:w/rd?#&"
    target = choose_store("postgresql://embargo@db/embargo", password=awkward)
    assert target.url.password == awkward
    assert awkward not in target.shown


@pytest.mark.parametrize(
    "value",
    [
        f"postgresql://embargo:{SECRET}@db.internal/embargo",
        f"postgresql://embargo@db.internal/embargo?password={SECRET}&sslmode=require",
    ],
)
def test_a_password_is_never_shown(value: str) -> None:
    target = choose_store(value)
    assert SECRET not in target.shown and "***" in target.shown
    assert "db.internal" in target.shown


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"mysql://embargo:{SECRET}@db/embargo", "'mysql://embargo:***@db/embargo'"),
        ("sqlite:///var/lib/store.db", "give the file's path itself"),
        ("http://db.example/embargo", "not a store embargo-bot can use"),
        (f"postgresql://embargo:{SECRET}@db:port/embargo", "not a valid PostgreSQL URL"),
        ("   ", "is empty"),
    ],
)
def test_other_values_are_refused_naming_the_setting(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        choose_store(value)
    message = str(refused.value)
    assert message.startswith("EMBARGO_BOT_DATABASE")
    assert expected in message
    assert SECRET not in message


def test_mask_leaves_urls_without_passwords_alone() -> None:
    plain = "postgresql://embargo@db/embargo?sslmode=verify-full"
    assert mask(plain) == plain


def test_a_url_that_reached_the_store_as_a_path_is_refused_not_created() -> None:
    with pytest.raises(ConfigError, match="looks like a URL read as a file path"):
        choose_store(Path("postgresql://embargo@/embargo?host=/run/postgresql"))
