"""Rotating the at-rest key: every stored item re-encrypted under the new key.

Run with ``EMBARGO_BOT_KEY=new,old``: the new key encrypts, both decrypt.
Each item is re-encrypted in its own commit, so an interruption leaves every
item readable under one key or the other, and running again finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from embargo_bot.app import AUDIT_KEY, KEY_CHECK, App
from embargo_bot.store import SealedContent


@dataclass(frozen=True)
class RekeyResult:
    rotated: int
    already_current: int


def rekey(app: App, *, by: str, after_each: Callable[[], None] | None = None) -> RekeyResult:
    vault, store = app.vault, app.store
    app.audit_key  # noqa: B018 - made (under the current key) before it is rotated below
    rotated = current = 0
    for pack_id, version, sealed in store.sealed_versions():
        tokens = [sealed.pdf, sealed.release, *([sealed.social] if sealed.social else [])]
        if all(not token or vault.is_current(token) for token in tokens):
            current += 1
            continue
        store.reseal_version(
            pack_id,
            version,
            SealedContent(
                pdf=vault.rotate(sealed.pdf) if sealed.pdf else sealed.pdf,
                release=vault.rotate(sealed.release) if sealed.release else sealed.release,
                social=None if sealed.social is None else vault.rotate(sealed.social),
            ),
        )
        rotated += 1
        if after_each is not None:
            after_each()
    for name in (KEY_CHECK, AUDIT_KEY):
        token = store.meta(name)
        if token is not None and not vault.is_current(token):
            store.set_meta(name, vault.rotate(token))
    app.audit("rekeyed", actor=by, rotated=rotated, already_current=current)
    return RekeyResult(rotated=rotated, already_current=current)
