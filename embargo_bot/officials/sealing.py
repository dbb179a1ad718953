"""Sealing a pack's material for the store: the vault is touched only after every check."""

from __future__ import annotations

from embargo_bot.domain.packs import PackContent
from embargo_bot.security.vault import Vault
from embargo_bot.store import SealedContent


def seal(vault: Vault, content: PackContent) -> SealedContent:
    return SealedContent(
        pdf=vault.seal(content.pdf),
        release=vault.seal(content.release.encode("utf-8")),
        social=None if content.social is None else vault.seal(content.social.encode("utf-8")),
    )
