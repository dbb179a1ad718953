"""The live URL: https, no credentials, host in ASCII, optionally only the organisation's sites."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from embargo_bot.domain.live_url import (
    ascii_host,
    check_live_url,
    host_is_allowed,
    normalise_domains,
)


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("https://www.gov.example/isbn/probe", "https://www.gov.example/isbn/probe"),
        ("  https://www.gov.example/isbn/probe\n", "https://www.gov.example/isbn/probe"),
        ("HTTPS://WWW.Gov.Example/isbn/Probe", "https://www.gov.example/isbn/Probe"),
        ("https://www.gov.example./isbn/probe", "https://www.gov.example/isbn/probe"),
        ("https://www.gov.example:443/a", "https://www.gov.example/a"),
        ("https://www.gov.example:8443/a", "https://www.gov.example:8443/a"),
        ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
        ("https://127.0.0.1:8443/a", "https://127.0.0.1:8443/a"),
        ("https://[::1]:8443/a", "https://[::1]:8443/a"),
        ("https://www.gov.example/a?b=c#d", "https://www.gov.example/a?b=c#d"),
    ],
)
def test_good_urls_are_sent_with_the_host_in_ascii(value: str, url: str) -> None:
    live, problems = check_live_url(value)
    assert problems == []
    assert live is not None
    assert live.url == url


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (
            "http://www.gov.example/isbn/probe",
            "is not an https:// link (it is plain http); use https",
        ),
        ("ftp://www.gov.example/isbn/probe", "is not an https:// link"),
        ("www.gov.example/isbn/probe", "is not an https:// link"),
        ("https://", "is not an https:// link"),
        ("https://www.gov.example@evil.example/isbn/probe", "a browser goes to 'evil.example'"),
        ("https://user:pass@www.gov.example/", "'user:pass@' before the host"),
        ("https://@www.gov.example/", "before the host"),
        ("https://www.gov.example:0/", "port 0"),
        ("https://www.gov.example:http/", "is not a link"),
        ("https://[www.gov.example/", "is not a link"),
        ("https://www.gov.example/isbn/pro be", "contains a space"),
        ("https://www.gov.example/strategy\u202efdp.exe", "U+202E"),
        ("https://www.gov\u200b.example/", "U+200B"),
        ("https://www.gov.example/\x00", "U+0000"),
        ("https://www.gov.example\\@evil.example/", "backslash"),
        ("https://a_b.example/", "no valid host name"),
        ("https://xn--zz.example/", "no valid host name"),
    ],
)
def test_bad_urls_are_refused_naming_the_option(value: str, words: str) -> None:
    live, problems = check_live_url(value)
    assert live is None
    assert len(problems) == 1
    assert problems[0].startswith("--url: ")
    assert words in problems[0]


def test_a_look_alike_host_is_shown_in_punycode_for_confirmation() -> None:
    live, _ = check_live_url("https://www.g\u043ev.example/isbn/probe")  # a Cyrillic "o"
    assert live is not None
    assert live.host.startswith("www.xn--")
    assert live.host in live.confirmation()
    assert "is www.xn--" in live.confirmation()
    plain, _ = check_live_url("https://www.gov.example/isbn/probe")
    assert plain is not None
    assert plain.confirmation() == "https://www.gov.example/isbn/probe"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("gov.scot", True),
        ("www.gov.scot", True),
        ("news.www.gov.scot", True),
        ("evilgov.scot", False),
        ("gov.scot.evil.example", False),
        ("scot", False),
    ],
)
def test_a_host_matches_a_domain_or_a_subdomain_of_it(host: str, allowed: bool) -> None:
    assert host_is_allowed(host, ["gov.scot"]) is allowed


def test_the_allow_list_refuses_other_sites() -> None:
    domains, problems = normalise_domains(["gov.example", " Publications.Example. "])
    assert problems == []
    assert domains == ["gov.example", "publications.example"]
    live, problems = check_live_url("https://www.gov.example/a", domains)
    assert live is not None
    live, problems = check_live_url("https://www.g\u043ev.example/a", domains)
    assert live is None
    assert "EMBARGO_BOT_LIVE_DOMAINS" in problems[0]
    assert "www.xn--" in problems[0]


@pytest.mark.parametrize("entry", ["https://gov.example", "gov.example/path", "a_b.example"])
def test_bad_allow_list_entries_name_the_setting(entry: str) -> None:
    domains, problems = normalise_domains([entry])
    assert domains == []
    assert problems[0].startswith("EMBARGO_BOT_LIVE_DOMAINS: ")


def test_allow_list_entries_may_start_with_a_wildcard() -> None:
    assert normalise_domains(["*.gov.example", ".gov.example", ""]) == (
        ["gov.example", "gov.example"],
        [],
    )


@pytest.mark.parametrize("host", ["bücher.example", "BÜCHER.example", "xn--bcher-kva.example."])
def test_ascii_host(host: str) -> None:
    assert ascii_host(host) == "xn--bcher-kva.example"


@given(st.text(max_size=80))
def test_any_input_gives_a_url_or_one_problem_line(value: str) -> None:
    live, problems = check_live_url("https://" + value)
    assert (live is None) == bool(problems)
    assert all(p.startswith("--url: ") and "\n" not in p for p in problems)
