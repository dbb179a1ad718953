"""The audit log: one chain, whoever writes, committed with the action it records."""

from __future__ import annotations

import os
import threading

import pytest

from embargo_bot.security.audit import verify
from embargo_bot.store import Store

from .builders import T0, add, minutes
from .conftest import OpenStore

KEY = os.urandom(32)


def test_entries_chain_and_verify(store: Store) -> None:
    assert store.audit_entries() == [] and store.audit_head() is None
    assert verify([], KEY, None) == []
    first = store.append_audit(
        KEY, at=T0, actor="alice", action="queued", pack_id="pack-1", detail={"lists": ["a"]}
    )
    second = store.append_audit(
        KEY, at=minutes(1), actor="bob", action="approved", pack_id="pack-1", detail={}
    )
    third = store.append_audit(
        KEY, at=minutes(2), actor="service x", action="key rotated", pack_id=None,
        detail={"at": minutes(2), "count": 3},
    )  # fmt: skip
    entries = store.audit_entries()
    assert entries == [first, second, third]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert third.detail == {"at": str(minutes(2)), "count": 3}
    assert verify(entries, KEY, store.audit_head()) == []
    assert verify(entries, os.urandom(32), store.audit_head()) != []
    assert verify(entries[:2], KEY, store.audit_head()) != [], "the head notices a cut"


def test_an_entry_commits_with_its_action_or_not_at_all(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        add(store)
        store.append_audit(KEY, at=T0, actor="alice", action="queued", pack_id="pack-1", detail={})
        raise RuntimeError("failed after the entry")
    assert store.audit_entries() == [] and store.audit_head() is None
    assert store.packs() == []


def test_concurrent_writers_keep_one_chain(open_store: OpenStore) -> None:
    writers, each = 3, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        store = open_store(closed_by_caller=True)
        try:
            barrier.wait(timeout=10)
            for n in range(each):
                store.append_audit(
                    KEY, at=minutes(n), actor=name, action="noted", pack_id=None, detail={"n": n}
                )
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(f"writer {n}",)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    reader = open_store()
    entries = reader.audit_entries()
    assert [e.seq for e in entries] == list(range(1, writers * each + 1))
    assert verify(entries, KEY, reader.audit_head()) == []
