"""VERP return paths: one unguessable token per delivery, found again in a report."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from embargo_bot.bounces.verp import (
    TOKEN_LENGTH,
    is_token,
    new_token,
    token_from_address,
    token_from_addresses,
    verp_address,
)

BASE = "bounces@gov.example"


def test_a_token_is_short_lower_case_base32_and_fresh_each_time() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        assert re.fullmatch(r"[a-z2-7]{16}", token)
        assert len(token) == TOKEN_LENGTH


def test_build_and_read_back() -> None:
    token = new_token()
    address = verp_address(BASE, token)
    assert address == f"bounces+{token}@gov.example"
    assert token_from_address(address, BASE) == token


@pytest.mark.parametrize(
    "written",
    [
        str.upper,  # relays fold case
        lambda a: f"<{a}>",
        lambda a: f"  {a.replace('gov.example', 'Gov.Example')} ",
    ],
)
def test_read_back_as_servers_write_it(written: Callable[[str], str]) -> None:
    token = new_token()
    assert token_from_address(written(verp_address(BASE, token)), BASE) == token


@pytest.mark.parametrize(
    "address",
    [
        "bounces@gov.example",  # no token
        "bounces+abcdefghijklmnop@other.example",  # another domain
        "press+abcdefghijklmnop@gov.example",  # another mailbox
        "bounces+abcdefghijklmno@gov.example",  # one short
        "bounces+abcdefghijklmnop1@gov.example",  # not base32 / too long
        "bounces+abcdefghijklmnop",  # no domain
        "",
        "@",
    ],
)
def test_not_ours(address: str) -> None:
    assert token_from_address(address, BASE) is None


def test_a_return_path_that_already_has_a_tag() -> None:
    base = "bounces+embargo@gov.example"
    token = new_token()
    address = verp_address(base, token)
    assert address == f"bounces+embargo+{token}@gov.example"
    assert token_from_address(address, base) == token
    assert token_from_address(address, BASE) is None  # "embargo+…" is not a token


def test_the_token_does_not_leak_the_partner() -> None:
    assert "partner" not in verp_address(BASE, new_token())


@pytest.mark.parametrize(
    ("base", "token", "why"),
    [
        (BASE, "not-a-token", "not a VERP token"),
        ('"odd local"@gov.example', new_token(), "cannot carry a token"),
        ("x" * 50 + "@gov.example", new_token(), "too long"),
        ("no-domain", new_token(), "not an email address"),
    ],
    # The tokens are random: ids by case, so that every test process collects the same tests.
    ids=["not-a-token", "odd-local", "too-long", "no-domain"],
)
def test_what_cannot_be_built(base: str, token: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        verp_address(base, token)


def test_one_token_among_the_report_addresses() -> None:
    token = new_token()
    tagged = verp_address(BASE, token)
    assert token_from_addresses([BASE, tagged, tagged], BASE) == token
    assert token_from_addresses([BASE], BASE) is None
    # Two different tokens in one report: it cannot say which delivery.
    assert token_from_addresses([tagged, verp_address(BASE, new_token())], BASE) is None


@given(st.text(max_size=200))
def test_any_text_is_not_a_crash(text: str) -> None:
    found = token_from_address(text, BASE)
    assert found is None or is_token(found)
