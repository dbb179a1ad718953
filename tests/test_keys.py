"""Key rotation: everything re-encrypted under the new key, nothing lost if interrupted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import RELEASE_SECRET, queue

from embargo_bot.app import open_app
from embargo_bot.domain.errors import KeyMismatchError
from embargo_bot.officials.changes import amend_pack
from embargo_bot.officials.intake import AmendRequest
from embargo_bot.officials.rekey import rekey
from embargo_bot.security import audit
from embargo_bot.security.vault import Vault, new_key
from embargo_bot.settings import Settings


def readable_under(settings: Settings, key: str) -> list[bool]:
    """For every stored version: can this key alone read all of it?"""
    vault = Vault.from_setting(type(settings.key)(key) if settings.key else None)
    with open_app(settings) as app:
        return [
            all(vault.is_current(t) for t in (s.pdf, s.release, s.social) if t)
            for _, _, s in app.store.sealed_versions()
        ]


def test_rekey_survives_an_interruption_and_then_needs_only_the_new_key(
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    key: str,
    tmp_path: Path,
) -> None:
    old, new = key, new_key()
    with open_app(make_settings()) as app:
        first = queue(app, make_request())
        queue(app, make_request())
        release = tmp_path / "v2.md"
        release.write_text("Second version.\n", encoding="utf-8")
        amend_pack(app, first.id, AmendRequest(None, release, None, None, None, "v2"), by="eve")
        assert len(app.store.sealed_versions()) == 3

    both = make_settings(key=f"{new},{old}")

    def interrupt() -> None:
        raise KeyboardInterrupt

    with open_app(both) as app, pytest.raises(KeyboardInterrupt):
        rekey(app, by="admin", after_each=interrupt)
    assert readable_under(both, new) == [True, False, False], "one done, two still to do"
    with open_app(both) as app:  # meanwhile the service reads everything with both keys
        releases = [app.vault.open(s.release).decode() for _, _, s in app.store.sealed_versions()]
    assert sum(RELEASE_SECRET in text for text in releases) == 2
    assert "Second version.\n" in releases

    with open_app(both) as app:
        result = rekey(app, by="admin")
    assert (result.rotated, result.already_current) == (2, 1)
    assert readable_under(both, new) == [True, True, True]

    only_new = make_settings(key=new)
    with open_app(only_new) as app:
        pack = app.store.get_pack(first.id)
        assert app.messages.content(pack).release == "Second version.\n"
        entries = app.store.audit_entries()
        assert audit.verify(entries, app.audit_key, app.store.audit_head()) == []
        assert entries[-1].action == "rekeyed"
    with open_app(make_settings(key=old)) as app, pytest.raises(KeyMismatchError):
        app.vault  # noqa: B018 - the old key alone no longer opens this store
