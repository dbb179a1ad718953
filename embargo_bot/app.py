"""Wiring: the one place that builds the concrete parts from ``Settings``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from functools import cached_property
from typing import TYPE_CHECKING

from embargo_bot.domain.errors import ConfigError, KeyMismatchError
from embargo_bot.domain.times import Clock, utc_now
from embargo_bot.settings import Settings
from embargo_bot.store import Store, StoreTarget, choose_store

# The delivery stack (aiosmtplib, APScheduler) and the message builder (Jinja2,
# markdown-it, S/MIME) are imported where they are first used, not here: every
# command opens an App, and `list` or `--help` must not pay for sending.
if TYPE_CHECKING:
    from embargo_bot.bounces.mailbox import MailboxSettings
    from embargo_bot.bounces.service import BounceReader
    from embargo_bot.delivery.link_gate import LinkGate
    from embargo_bot.delivery.link_schedule import LinkWatchRules
    from embargo_bot.delivery.scheduler import Service
    from embargo_bot.delivery.stage_runner import StageRunner
    from embargo_bot.delivery.store_thread import StoreThread
    from embargo_bot.messages.builder import MessageBuilder
    from embargo_bot.messages.mime import Sender
    from embargo_bot.messages.rendering import Renderer
    from embargo_bot.security.smime import Signer
    from embargo_bot.security.vault import Vault

_KEY_CHECK = b"embargo-bot at-rest key check"
KEY_CHECK = "key_check"
AUDIT_KEY = "audit_key"


@dataclass
class App:
    settings: Settings
    store: Store
    clock: Clock

    @cached_property
    def vault(self) -> Vault:
        """The at-rest key, checked against the store before anything is read or written."""
        from embargo_bot.security.vault import Vault

        vault = Vault.from_setting(self.settings.key)
        token = self.store.meta(KEY_CHECK)
        if token is None:
            sample = self.store.any_sealed_content()
            if sample is not None:
                vault.open(sample.release)
            self.store.set_meta(KEY_CHECK, vault.seal(_KEY_CHECK), replace=False)
        elif vault.open(token) != _KEY_CHECK:
            raise KeyMismatchError("EMBARGO_BOT_KEY check failed: the store's key check is damaged")
        return vault

    @cached_property
    def audit_key(self) -> bytes:
        """The audit log's HMAC key: made once, kept in the store sealed by the at-rest key."""
        if self.store.meta(AUDIT_KEY) is None:
            self.store.set_meta(AUDIT_KEY, self.vault.seal(os.urandom(32)), replace=False)
        sealed = self.store.meta(AUDIT_KEY)
        assert sealed is not None
        return self.vault.open(sealed)

    def audit(
        self, action: str, pack_id: str | None = None, *, actor: str, **detail: object
    ) -> None:
        """Record an action in the audit log (in the caller's transaction, if any)."""
        self.store.append_audit(
            self.audit_key,
            at=self.clock(),
            actor=actor,
            action=action,
            pack_id=pack_id,
            detail=detail,
        )

    @cached_property
    def renderer(self) -> Renderer:
        from embargo_bot.messages.rendering import Renderer
        from embargo_bot.shipped import shipped_dir

        shipped = shipped_dir("templates")
        return Renderer(self.settings.templates_dir or shipped, fallback_dir=shipped)

    @property
    def sender(self) -> Sender:
        from embargo_bot.messages.mime import Sender

        display_name, address = parseaddr(self.settings.sender)
        return Sender(display_name=display_name or address, address=address)

    @cached_property
    def messages(self) -> MessageBuilder:
        from embargo_bot.messages.builder import MessageBuilder

        return MessageBuilder(
            store=self.store,
            vault=self.vault,
            renderer=self.renderer,
            sender=self.sender,
            zone=self.settings.zone,
            clock=self.clock,
            signer=self.signer,
        )

    @cached_property
    def signer(self) -> Signer | None:
        settings = self.settings
        if settings.smime_key is None or settings.smime_cert is None:
            return None
        from embargo_bot.security.smime import load_signer

        return load_signer(settings.smime_key, settings.smime_cert, now=self.clock())

    def link_gate(self, owner: str, rules: LinkWatchRules | None = None) -> LinkGate | None:
        """The live stage's link check, on one HTTP client for the service's life; None if off.

        `rules`: the check's timing (tests scale it down); by default the issue's, with
        EMBARGO_BOT_LINK_WAIT.
        """
        from embargo_bot.delivery.link_check import LinkChecker, LinkCheckSetupError
        from embargo_bot.delivery.link_gate import GateConfig, LinkGate
        from embargo_bot.delivery.link_schedule import LinkWatchRules

        settings = self.settings
        if not settings.link_check:
            return None
        try:
            checker = LinkChecker(ca_file=settings.link_ca_file)
        except LinkCheckSetupError as exc:
            raise ConfigError(str(exc)) from None
        return LinkGate(
            store=self.store,
            config=GateConfig(
                checker=checker,
                rules=rules or LinkWatchRules(wait=settings.link_wait),
                zone=settings.zone,
                lease=timedelta(seconds=settings.lease_seconds),
            ),
            clock=self.clock,
            owner=owner,
            audit=lambda action, pack_id, **detail: self.audit(
                action, pack_id, actor=f"service {owner}", **detail
            ),
        )

    def runner(self, link_rules: LinkWatchRules | None = None) -> StageRunner:
        from embargo_bot.delivery.retry import RetryPolicy
        from embargo_bot.delivery.scheduler import new_owner_id
        from embargo_bot.delivery.smtp import RelayConfig
        from embargo_bot.delivery.stage_runner import DispatchConfig, StageRunner

        settings = self.settings
        config = DispatchConfig(
            relay=RelayConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                security=settings.smtp_security,
                username=settings.smtp_username,
                password=settings.smtp_password,
                timeout=settings.smtp_timeout,
                ca_file=settings.smtp_ca_file,
                helo_name=settings.sender_address.rsplit("@", 1)[1],
                return_path=settings.envelope_sender,
                verp=settings.return_path_verp,
            ),
            recipients_dir=settings.recipients_dir,
            connections=settings.smtp_connections,
            lease=timedelta(seconds=settings.lease_seconds),
            retry=RetryPolicy(base=settings.retry_backoff, window=settings.retry_for),
            rate_per_minute=settings.smtp_rate,
            max_recipients=settings.smtp_max_recipients,
        )
        owner = new_owner_id()
        return StageRunner(
            thread=self.store_thread(),
            builder=self.messages,
            config=config,
            clock=self.clock,
            owner=owner,
            audit=lambda action, pack_id, **detail: self.audit(
                action, pack_id, actor=f"service {owner}", **detail
            ),
            gate=self.link_gate(owner, link_rules),
        )

    def store_thread(self) -> StoreThread:
        """A second connection to the store, on a thread of its own, for calls off the loop."""
        from embargo_bot.delivery.store_thread import StoreThread

        target, group = store_target(self.settings), self.settings.shared_group
        return StoreThread(lambda: Store.open(target, group=group, create=False))

    def service(self, link_rules: LinkWatchRules | None = None) -> Service:
        from embargo_bot.delivery.scheduler import Service

        retain = self.settings.retain_days
        runner = self.runner(link_rules)
        bounces = self.bounce_reader(instance=runner.owner)
        return Service(
            store=self.store,
            runner=runner,
            clock=self.clock,
            poll_interval=self.settings.poll_interval,
            retain=None if retain is None else timedelta(days=retain),
            recipients_dir=self.settings.recipients_dir,
            background=() if bounces is None else (bounces.run,),
        )

    def bounce_reader(self, *, instance: str | None = None) -> BounceReader | None:
        """The bounce mailbox's reader, or None when EMBARGO_BOT_BOUNCE_IMAP_HOST is unset."""
        from embargo_bot.bounces.service import BounceReader, BounceReading

        mailbox = bounce_mailbox(self.settings)
        if mailbox is None:
            return None
        settings, target = self.settings, self.store.target
        return BounceReader(
            BounceReading(
                mailbox=mailbox,
                return_path=settings.envelope_sender if settings.return_path_verp else None,
                poll=settings.bounce_poll,
                # Opened in the reading thread: a Store is for one thread.
                open_store=lambda: Store.open(target, group=settings.shared_group, create=False),
                clock=self.clock,
                instance=instance,
                audit_key=self.audit_key,
            )
        )


@contextmanager
def open_app(settings: Settings, clock: Clock = utc_now, *, create: bool = True) -> Iterator[App]:
    """The app over the store; ``create=False`` for commands that must find one already."""
    store = Store.open(store_target(settings), group=settings.shared_group, create=create)
    try:
        yield App(settings=settings, store=store, clock=clock)
    finally:
        store.close()


def bounce_mailbox(settings: Settings) -> MailboxSettings | None:
    """Where bounces are read from; None when EMBARGO_BOT_BOUNCE_IMAP_HOST is unset."""
    from embargo_bot.bounces.mailbox import MailboxSettings

    host, password = settings.bounce_imap_host, settings.bounce_imap_password
    if host is None or settings.bounce_imap_username is None or password is None:
        return None
    return MailboxSettings(
        host=host,
        port=settings.bounce_imap_port_or_default,
        username=settings.bounce_imap_username,
        password=password.get_secret_value(),
        security=settings.bounce_imap_security.value,
        folder=settings.bounce_imap_folder,
        done_folder=settings.bounce_imap_done_folder,
        ca_file=settings.bounce_imap_ca_file,
    )


def store_target(settings: Settings) -> StoreTarget:
    """The store EMBARGO_BOT_DATABASE names; ConfigError for a URL of another kind."""
    password = settings.database_password
    return choose_store(
        settings.database, password=None if password is None else password.get_secret_value()
    )
