"""`embargo-bot doctor`: is everything `run` needs in place? One line each, ok or what to do.

This module only gathers facts (the settings, .env's mode, the store, a real
conversation with the relay, the lists); ``health`` turns them into lines.
It sends no mail and creates no store.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from pathlib import Path

from rich.console import Console

from embargo_bot.cli import health
from embargo_bot.cli.environment import emit_json
from embargo_bot.cli.health import Check
from embargo_bot.domain.errors import EmbargoBotError
from embargo_bot.domain.transport import SmtpSecurity
from embargo_bot.settings import Settings, load_settings


def doctor_command(args: argparse.Namespace, console: Console) -> int:
    checks = run_checks(Path.cwd())
    if args.json:
        emit_json(
            console,
            {
                "ok": health.exit_code(checks) == 0,
                "checks": [
                    {"check": c.name, "status": c.status.value, "detail": c.detail} for c in checks
                ],
            },
        )
    else:
        # Plain text, not rich markup: details hold paths and replies with brackets.
        for check in checks:
            console.file.write(check.line + "\n")
    return health.exit_code(checks)


def run_checks(cwd: Path) -> list[Check]:
    checks = [_env_file(cwd / ".env")]
    try:
        settings = load_settings()
    except EmbargoBotError as exc:
        return [health.fail("settings", str(exc)), *checks]
    checks.insert(0, health.ok("settings", "every EMBARGO_BOT_* setting is valid"))
    if settings.sends_in_clear_over_a_network:
        checks.append(
            health.warn(
                "settings",
                "EMBARGO_BOT_SMTP_ALLOW_PLAINTEXT is set: embargoed material would cross "
                f"the network to {settings.smtp_host} in clear; use starttls or tls",
            )
        )
    checks += _store_and_key(settings, cwd)
    checks.append(asyncio.run(probe_relay(settings)))
    checks.append(_lists(settings))
    checks.append(_bounce_mailbox(settings))
    return checks


def _bounce_mailbox(settings: Settings) -> Check:
    """Reach the bounce mailbox, log in and open its folder, as the service would; reads nothing."""
    from embargo_bot.app import bounce_mailbox
    from embargo_bot.bounces.mailbox import MailboxError, check_mailbox

    mailbox = bounce_mailbox(settings)
    if mailbox is None:
        return health.ok(
            "bounce mailbox", "EMBARGO_BOT_BOUNCE_IMAP_HOST is not set: bounces are not read"
        )
    try:
        return health.ok("bounce mailbox", check_mailbox(mailbox))
    except MailboxError as exc:
        return health.fail("bounce mailbox", f"{exc}; check the EMBARGO_BOT_BOUNCE_IMAP_* settings")


def _env_file(path: Path) -> Check:
    if not path.exists():
        return health.ok(".env", f"none in {path.parent}: settings come from the environment")
    try:
        return health.env_file_check(path, path.stat().st_mode, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return health.fail(".env", f"cannot read {path}: {exc}")


def _store_and_key(settings: Settings, cwd: Path) -> list[Check]:
    from embargo_bot.app import open_app, store_target
    from embargo_bot.security.vault import Vault
    from embargo_bot.store import HEAD

    try:
        target = store_target(settings)
    except EmbargoBotError as exc:
        return [health.fail("store", str(exc)), health.fail("key", "not checked: no store")]
    if target.path is not None and not target.path.exists():
        try:
            Vault.from_setting(settings.key)
        except EmbargoBotError as exc:
            key = health.fail("key", str(exc))
        else:
            key = health.ok("key", "EMBARGO_BOT_KEY is a valid key; the new store will use it")
        return [health.missing_store(target.path, cwd), key]
    try:
        with open_app(settings, create=False) as app:
            store = health.ok("store", f"{target.shown}: opened, at revision {HEAD}")
            try:
                app.vault  # noqa: B018  (checks the key against the store's key check)
            except EmbargoBotError as exc:
                return [store, health.fail("key", str(exc))]
            return [store, health.ok("key", "EMBARGO_BOT_KEY opens this store")]
    except EmbargoBotError as exc:
        return [health.fail("store", str(exc)), health.fail("key", "not checked: no store")]


async def probe_relay(settings: Settings) -> Check:
    """Connect, secure and log in as the service would, then say goodbye; sends nothing."""
    import aiosmtplib

    where = f"{settings.smtp_host}:{settings.smtp_port}"
    security = settings.smtp_security
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        timeout=settings.smtp_timeout,
        use_tls=security is SmtpSecurity.TLS,
        start_tls=False,  # explicitly below, so a failure is named as TLS
        validate_certs=True,
        tls_context=None
        if settings.smtp_ca_file is None
        else ssl.create_default_context(cafile=str(settings.smtp_ca_file)),
        local_hostname=settings.sender_address.rsplit("@", 1)[1],
    )
    step = "tls" if security is SmtpSecurity.TLS else "connect"
    try:
        async with asyncio.timeout(settings.smtp_timeout * 4):
            await client.connect()
            if security is SmtpSecurity.STARTTLS:
                step = "tls"
                await client.starttls()
            if settings.smtp_username is not None:
                step = "login"
                password = settings.smtp_password
                await client.login(
                    settings.smtp_username, "" if password is None else password.get_secret_value()
                )
            await client.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        return health.relay_failed(where, "login", f"{exc.code} {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        if step == "login":
            step = "no-auth"
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            step = "tls"
        return health.relay_failed(where, step, _describe(exc))
    finally:
        client.close()  # after a failure; a no-op after QUIT
        # Let the loop run the transport's close callbacks before asyncio.run ends it.
        await asyncio.sleep(0.01)
    return health.relay_ok(where, security, settings.smtp_username)


def _describe(exc: BaseException) -> str:
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc).strip() or type(exc).__name__


def _lists(settings: Settings) -> Check:
    from embargo_bot.lists.catalogue import load_lists

    directory = settings.recipients_dir
    try:
        catalogue = load_lists(directory)
    except EmbargoBotError as exc:
        return health.fail("lists", str(exc))
    if catalogue.problems:
        return health.fail(
            "lists",
            f"{len(catalogue.problems)} problem(s) in {directory}: "
            "`embargo-bot lists check` names each file and line",
        )
    return health.ok("lists", f"{len(catalogue.lists)} valid list(s) in {directory}")
