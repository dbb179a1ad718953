"""The live-link check against a real HTTPS site on 127.0.0.1 (trustme CA)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers.https_site import PublicationSite, closed_port, running_site, silent_server

from embargo_bot.delivery.link_check import (
    LinkChecker,
    LinkCheckSetupError,
    ca_file_from_environment,
    normalise,
    page_text,
)

LIFT = datetime(2022, 2, 23, 11, 0, tzinfo=UTC)


async def test_404_until_the_chosen_moment_then_200(publication_site: PublicationSite) -> None:
    # Room for the first request's TLS handshake on a loaded machine before the page is up.
    publication_site.live_at = datetime.now(UTC) + timedelta(seconds=1)
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        before = await checker.check(publication_site.url, now=LIFT)
        until_live = (publication_site.live_at - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(0.0, until_live))
        after = await checker.check(publication_site.url)
    assert (before.live, before.seen, before.status) == (False, "HTTP 404", 404)
    assert before.checked_at == LIFT
    assert (after.live, after.seen, after.status) == (True, "HTTP 200", 200)
    assert after.final_url == publication_site.url
    assert [request.status for request in publication_site.seen()] == [404, 200]


async def test_the_time_comes_from_the_clock_when_not_given(
    publication_site: PublicationSite,
) -> None:
    async with LinkChecker(ca_file=publication_site.ca_file, clock=lambda: LIFT) as checker:
        result = await checker.check(publication_site.url)
    assert result.checked_at == LIFT


async def test_a_naive_time_is_refused(publication_site: PublicationSite) -> None:
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        with pytest.raises(ValueError, match="naive"):
            await checker.check(publication_site.url, now=datetime(2022, 2, 23, 11))  # noqa: DTZ001


@pytest.mark.parametrize(
    "expect_text",
    [
        "Serious Organised Crime Strategy",
        "serious organised crime strategy",
        "  Serious\n Organised   Crime Strategy ",
    ],
)
async def test_200_with_the_expected_text_is_live(
    publication_site: PublicationSite, expect_text: str
) -> None:
    publication_site.publish(
        body="<html><body><h1>Serious&nbsp;Organised <em>Crime</em>\n  Strategy</h1></body></html>"
    )
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await checker.check(publication_site.url, expect_text=expect_text)
    assert result.live, result.seen
    assert result.seen == f"HTTP 200 and the page contains {expect_text!r}"


async def test_200_without_the_expected_text_is_not_live(publication_site: PublicationSite) -> None:
    publication_site.publish(body="<html><body><h1>Holding page</h1></body></html>")
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await checker.check(
            publication_site.url, expect_text="Serious Organised Crime Strategy"
        )
    assert not result.live
    assert result.status == 200
    assert result.seen == (
        "HTTP 200 but the page does not contain 'Serious Organised Crime Strategy'"
    )


async def test_text_hidden_in_a_script_does_not_count(publication_site: PublicationSite) -> None:
    publication_site.publish(
        body="<html><script>var t = 'Serious Organised Crime Strategy';</script>Soon</html>"
    )
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await checker.check(
            publication_site.url, expect_text="Serious Organised Crime Strategy"
        )
    assert not result.live


async def test_only_a_bounded_part_of_the_body_is_read(publication_site: PublicationSite) -> None:
    publication_site.publish(body="x" * 50_000 + " Serious Organised Crime Strategy")
    async with LinkChecker(ca_file=publication_site.ca_file, max_body_bytes=10_000) as checker:
        result = await checker.check(publication_site.url, expect_text="Crime Strategy")
    assert not result.live
    assert result.seen == (
        "HTTP 200 but the first 10,000 bytes of the page do not contain 'Crime Strategy'"
    )


async def test_a_page_of_exactly_the_bound_is_read_whole(
    publication_site: PublicationSite,
) -> None:
    body = "x" * (10_000 - len(" Crime Strategy")) + " Crime Strategy"
    publication_site.publish(body=body)
    publication_site.content_type = "text/plain; charset=utf-8"
    async with LinkChecker(ca_file=publication_site.ca_file, max_body_bytes=10_000) as checker:
        result = await checker.check(publication_site.url, expect_text="crime strategy")
    assert result.live, result.seen


async def test_redirects_are_followed_to_the_final_page(publication_site: PublicationSite) -> None:
    publication_site.redirects = {"/isbn/9781802019445": "/moved", "/moved": "/strategy"}
    publication_site.publish()
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await checker.check(publication_site.url_for("/isbn/9781802019445"))
    assert result.live
    assert result.final_url == publication_site.url
    assert [request.path for request in publication_site.seen()] == [
        "/isbn/9781802019445",
        "/moved",
        "/strategy",
    ]


async def test_a_redirect_loop_is_cut_short(publication_site: PublicationSite) -> None:
    publication_site.redirects = {"/a": "/b", "/b": "/a"}
    async with LinkChecker(ca_file=publication_site.ca_file, max_redirects=3) as checker:
        result = await checker.check(publication_site.url_for("/a"))
    assert not result.live
    assert result.seen.startswith("more than 3 redirects (last to https://127.0.0.1:")
    assert len(publication_site.seen()) == 4


async def test_the_test_ca_is_not_trusted_without_the_ca_file(
    publication_site: PublicationSite,
) -> None:
    publication_site.publish()
    async with LinkChecker() as checker:
        result = await checker.check(publication_site.url)
    assert not result.live
    assert result.seen.startswith("certificate not trusted: ")
    assert result.final_url is None and result.status is None


def test_an_unreadable_ca_file_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(LinkCheckSetupError, match=r"EMBARGO_BOT_LINK_CA_FILE=.*nowhere\.pem"):
        LinkChecker(ca_file=missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(LinkCheckSetupError, match="cannot read it as PEM"):
        LinkChecker(ca_file=garbage)


def test_the_ca_file_setting_is_read_from_the_environment() -> None:
    assert ca_file_from_environment({}) is None
    assert ca_file_from_environment({"EMBARGO_BOT_LINK_CA_FILE": " "}) is None
    assert ca_file_from_environment({"EMBARGO_BOT_LINK_CA_FILE": "/etc/ca.pem"}) == Path(
        "/etc/ca.pem"
    )


async def test_connection_refused_on_a_closed_port() -> None:
    async with LinkChecker() as checker:
        result = await checker.check(closed_port() + "/strategy")
    assert (result.live, result.seen) == (False, "connection refused")


async def test_a_server_that_never_answers_times_out() -> None:
    with silent_server() as origin:
        async with LinkChecker(timeout_seconds=0.5) as checker:
            started = time.monotonic()
            result = await checker.check(origin + "/strategy")
            took = time.monotonic() - started
    assert (result.live, result.seen) == (False, "timed out after 0.5 s")
    assert 0.4 < took < 3


async def test_a_page_that_trickles_in_is_cut_off_at_the_deadline(
    publication_site: PublicationSite,
) -> None:
    publication_site.publish(body="x" * 5_000 + " Serious Organised Crime Strategy")
    publication_site.trickle_seconds = 0.05
    async with LinkChecker(
        ca_file=publication_site.ca_file, timeout_seconds=1, deadline_seconds=0.5
    ) as checker:
        started = time.monotonic()
        result = await checker.check(publication_site.url, expect_text="Crime Strategy")
        took = time.monotonic() - started
    assert (result.live, result.seen) == (False, "no complete answer within 0.5 s")
    assert took < 2


async def test_one_client_serves_many_checks_and_closes(tmp_path: Path) -> None:
    with running_site(tmp_path, live_at=LIFT) as site:
        checker = LinkChecker(ca_file=site.ca_file)
        results = [await checker.check(site.url) for _ in range(3)]
        await checker.aclose()
    assert all(result.live for result in results)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<p>Serious</p><p>Organised</p>", "text/html", "serious organised"),
        (b"Organi<b>sed</b> &amp; more", "text/html; charset=utf-8", "organised & more"),
        (b"<p>one</p>", "text/plain", "<p>one</p>"),
        (b"caf\xc3\xa9", None, "café"),
    ],
)
def test_page_text(body: bytes, content_type: str | None, expected: str) -> None:
    assert normalise(page_text(body, "utf-8", content_type)) == expected
