"""The shared rate's send slots: never the same slot twice, whichever store takes it."""

from __future__ import annotations

import itertools
import threading

from store.conftest import OpenStore


def test_slots_taken_from_two_connections_at_once_are_each_an_interval_apart(
    open_store: OpenStore,
) -> None:
    interval, each = 0.5, 20
    taken: list[float] = []
    lock = threading.Lock()

    def take_many() -> None:
        store = open_store(closed_by_caller=True)
        try:
            for _ in range(each):
                slot = store.take_rate_slot("relay", 1_000.0, interval)
                with lock:
                    taken.append(slot)
        finally:
            store.close()

    threads = [threading.Thread(target=take_many) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = sorted(taken)
    assert slots[0] == 1_000.0
    assert [b - a for a, b in itertools.pairwise(slots)] == [interval] * (2 * each - 1)


def test_a_slot_is_never_before_now_after_a_quiet_spell(open_store: OpenStore) -> None:
    store = open_store()
    assert store.take_rate_slot("relay", 10.0, 2.0) == 10.0
    assert store.take_rate_slot("relay", 10.5, 2.0) == 12.0
    assert store.take_rate_slot("relay", 100.0, 2.0) == 100.0
    assert store.take_rate_slot("other", 50.0, 2.0) == 50.0
