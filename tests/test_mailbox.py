"""The bounce mailbox against a real Dovecot: read, mark applied, leave the rest unread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from bounce_samples import (
    MALFORMED_NO_STATUS,
    MESSAGE_ID,
    ORDINARY_MAIL,
    OUT_OF_OFFICE,
    original,
    postfix_delayed,
    postfix_report,
)

from embargo_bot.bounces.dsn import DeliveryReport, classify
from embargo_bot.bounces.mailbox import (
    MailboxError,
    MailboxSettings,
    check_mailbox,
    open_mailbox,
)

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest rewrites its asserts
    from servers.dovecot import Dovecot, ImapUser


def settings_for(user: ImapUser, **changes: object) -> MailboxSettings:
    plain = MailboxSettings(
        host=user.server.host,
        port=user.server.port,
        username=user.username,
        password=user.password,
        security="none",
        timeout=5,
    )
    return replace(plain, **changes)  # type: ignore[arg-type]


def test_reads_without_marking_seen(imap_user: ImapUser) -> None:
    uid = imap_user.append(postfix_report())
    with open_mailbox(settings_for(imap_user)) as mailbox:
        assert mailbox.unseen() == [uid]
        fetched = mailbox.fetch(uid)
    assert fetched is not None and fetched.uid == uid and fetched.uidvalidity > 0
    assert fetched.raw == postfix_report()
    assert isinstance(classify(fetched.raw), DeliveryReport)
    assert "\\Seen" not in imap_user.flags(uid)
    assert imap_user.unseen() == [uid]


def test_applied_is_marked_seen_and_the_rest_stay_unread(imap_user: ImapUser) -> None:
    bounce = imap_user.append(postfix_report())
    others = [imap_user.append(raw) for raw in (OUT_OF_OFFICE, ORDINARY_MAIL, MALFORMED_NO_STATUS)]
    with open_mailbox(settings_for(imap_user)) as mailbox:
        mailbox.mark_applied(bounce)
        assert mailbox.unseen() == others
    assert "\\Seen" in imap_user.flags(bounce)
    assert imap_user.unseen() == others
    assert imap_user.uids() == [bounce, *others]  # the mailbox is never emptied


def test_applied_moves_to_the_done_folder(imap_user: ImapUser) -> None:
    bounce = imap_user.append(postfix_report())
    kept = imap_user.append(OUT_OF_OFFICE)
    done = "Applied bounces"  # a space: the name must be quoted on the wire
    with open_mailbox(settings_for(imap_user, done_folder=done)) as mailbox:
        assert mailbox.can_move
        mailbox.mark_applied(bounce)
    assert imap_user.uids() == [kept]
    assert imap_user.unseen() == [kept]
    (moved,) = imap_user.uids(done)
    assert imap_user.unseen(done) == []  # moved as read
    assert "\\Seen" in imap_user.flags(moved, done)


def test_without_move_copy_then_expunge_only_that_message(
    dovecot_without_move: Dovecot,
) -> None:
    user = dovecot_without_move.new_user()
    bounce = user.append(postfix_report())
    someone_elses = user.append(ORDINARY_MAIL)
    with user.connection() as imap:  # a person deleting, not yet expunged
        imap.select("INBOX")
        imap.uid("STORE", str(someone_elses), "+FLAGS", r"(\Deleted)")
    settings = replace(settings_for(user), port=dovecot_without_move.port, done_folder="Done")
    with open_mailbox(settings) as mailbox:
        assert not mailbox.can_move
        mailbox.mark_applied(bounce)
    assert user.uids() == [someone_elses]
    assert len(user.uids("Done")) == 1


def test_the_done_folder_is_created_once_and_reused(imap_user: ImapUser) -> None:
    first, second = imap_user.append(postfix_report()), imap_user.append(postfix_delayed())
    for uid in (first, second):
        with open_mailbox(settings_for(imap_user, done_folder="Done")) as mailbox:
            mailbox.mark_applied(uid)
    assert len(imap_user.uids("Done")) == 2


def test_another_folder(imap_user: ImapUser) -> None:
    imap_user.create_folder("Bounces")
    uid = imap_user.append(postfix_report(), folder="Bounces")
    imap_user.append(OUT_OF_OFFICE)
    with open_mailbox(settings_for(imap_user, folder="Bounces")) as mailbox:
        assert mailbox.unseen() == [uid]


def test_a_folder_that_is_not_there(imap_user: ImapUser) -> None:
    with pytest.raises(MailboxError, match="cannot open folder 'Nowhere'"):
        open_mailbox(settings_for(imap_user, folder="Nowhere"))


def test_only_the_head_of_a_huge_report_is_read(imap_user: ImapUser) -> None:
    # Some servers return the whole message, embargoed PDF and all.
    pdf = "Content-Type: application/pdf\r\n\r\n" + ("JVBERi0xLjcK" * 6 + "\r\n") * 40_000
    raw = postfix_report(returned=original() + "\r\n--==stage-boundary==\r\n" + pdf)
    uid = imap_user.append(raw)
    with open_mailbox(settings_for(imap_user)) as mailbox:
        fetched = mailbox.fetch(uid, max_bytes=64 * 1024)
    assert fetched is not None and len(fetched.raw) == 64 * 1024 < len(raw)
    report = classify(fetched.raw)
    assert isinstance(report, DeliveryReport) and report.original.message_id == MESSAGE_ID


def test_a_message_gone_meanwhile(imap_user: ImapUser) -> None:
    with open_mailbox(settings_for(imap_user)) as mailbox:
        assert mailbox.fetch(999) is None


def test_wrong_password_is_one_line_without_the_password(imap_user: ImapUser) -> None:
    wrong = "Wrong-Secret-Sesame-42"
    with pytest.raises(MailboxError) as raised:
        open_mailbox(settings_for(imap_user, password=wrong))
    message = str(raised.value)
    assert f"login refused for user {imap_user.username}" in message
    assert wrong not in message and imap_user.password not in message
    assert "\n" not in message
    assert wrong not in repr(settings_for(imap_user, password=wrong))


def test_server_down() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = MailboxSettings("127.0.0.1", port, "u", "p", security="none", timeout=2)
    with pytest.raises(MailboxError, match=rf"IMAP 127.0.0.1:{port}: connection refused"):
        open_mailbox(settings)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word: a hung IMAP server."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_a_slow_server_times_out(silent_server: int) -> None:
    settings = MailboxSettings("127.0.0.1", silent_server, "u", "p", security="none", timeout=0.5)
    with pytest.raises(MailboxError, match="timed out"):
        open_mailbox(settings)


def test_implicit_tls_verified_with_the_ca(imap_user: ImapUser) -> None:
    uid = imap_user.append(postfix_report())
    settings = settings_for(
        imap_user, security="tls", port=imap_user.server.tls_port, ca_file=imap_user.server.ca_file
    )
    with open_mailbox(settings) as mailbox:
        assert mailbox.unseen() == [uid]


def test_starttls_verified_with_the_ca(imap_user: ImapUser) -> None:
    uid = imap_user.append(postfix_report())
    settings = settings_for(imap_user, security="starttls", ca_file=imap_user.server.ca_file)
    with open_mailbox(settings) as mailbox:
        assert mailbox.unseen() == [uid]


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_an_untrusted_certificate_is_refused(imap_user: ImapUser, security: str) -> None:
    port = imap_user.server.tls_port if security == "tls" else imap_user.server.port
    settings = settings_for(imap_user, security=security, port=port)  # system CAs only
    with pytest.raises(MailboxError, match="TLS certificate not trusted"):
        open_mailbox(settings)


def test_no_security_only_for_loopback() -> None:
    settings = MailboxSettings("imap.gov.example", 143, "u", "p", security="none")
    with pytest.raises(MailboxError, match="only allowed for a loopback host"):
        open_mailbox(settings)


def test_doctor_check(imap_user: ImapUser) -> None:
    imap_user.append(postfix_report())
    summary = check_mailbox(settings_for(imap_user))
    assert f"logged in as {imap_user.username}, INBOX has 1 unread" in summary
    assert imap_user.password not in summary
