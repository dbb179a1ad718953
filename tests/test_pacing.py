"""Backoff, the bytes-in-flight budget and the retry queue: small pieces with real timing."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from embargo_bot.delivery.pacing import ByteBudget, RateLimiter
from embargo_bot.delivery.retry import MAX_WAIT, RetryPolicy
from embargo_bot.delivery.work_queue import DeliveryQueue
from embargo_bot.domain.packs import Delivery, DeliveryState, StageKind

NOW = datetime(2022, 2, 23, 11, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=timedelta(seconds=30), window=timedelta(hours=4))


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [
        (1, timedelta(seconds=30)),
        (2, timedelta(seconds=60)),
        (3, timedelta(seconds=120)),
        (6, timedelta(minutes=15)),  # 16 minutes, capped at 15
        (40, MAX_WAIT),
    ],
)
def test_backoff_doubles_with_jitter_between_half_and_all_of_the_ceiling(
    attempt: int, ceiling: timedelta
) -> None:
    rng = random.Random(1)
    waits = [POLICY.wait(attempt, rng) for _ in range(200)]
    assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
    assert len(set(waits)) > 100, "jittered, so retries spread out"


def test_no_retry_is_planned_past_the_window() -> None:
    started = NOW
    assert POLICY.next_try(attempt=1, now=NOW, started=started) is not None
    late = started + POLICY.window - timedelta(seconds=5)
    assert POLICY.next_try(attempt=1, now=late, started=started) is None


def delivery(email: str) -> Delivery:
    return Delivery(
        stage_id=1,
        pack_id="p",
        kind=StageKind.NOTICE,
        email=email,
        name=None,
        list_key="l",
        message_id=f"<{email}>",
        state=DeliveryState.PENDING,
        reply=None,
        attempts=0,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_a_retried_delivery_comes_back_at_its_time_and_workers_wait_for_it() -> None:
    queue = DeliveryQueue([(0.0, delivery("a@x.example"))])
    first = await queue.take()
    assert first is not None
    waiting = asyncio.create_task(queue.take())  # nothing ready, but one may come back
    await asyncio.sleep(0.05)
    assert not waiting.done()
    put_back = time.monotonic()
    await queue.done(first, retry_at=put_back + 0.2)
    again = await asyncio.wait_for(waiting, timeout=2)
    assert again is first and time.monotonic() - put_back >= 0.19
    await queue.done(again)
    assert await queue.take() is None, "all done: workers stop"


async def test_closing_the_queue_releases_waiting_workers() -> None:
    queue = DeliveryQueue([(time.monotonic() + 60, delivery("a@x.example"))])
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0.05)
    await queue.close()
    assert await asyncio.wait_for(waiting, timeout=2) is None


async def test_big_messages_go_one_at_a_time_and_small_ones_together() -> None:
    budget = ByteBudget(limit=30)
    active, most = 0, 0

    async def send(size: int) -> None:
        nonlocal active, most
        async with budget.hold(size):
            active += 1
            most = max(most, active)
            await asyncio.sleep(0.05)
            active -= 1

    await asyncio.gather(*(send(20) for _ in range(3)))
    assert most == 1
    most = 0
    await asyncio.gather(*(send(5) for _ in range(4)))
    assert most == 4
    most = 0
    await asyncio.gather(send(100), send(1))  # one message alone always fits
    assert most == 1


async def test_the_rate_limiter_spaces_sends_evenly() -> None:
    limiter = RateLimiter(per_minute=600)  # one every 0.1 s
    stamps = []
    for _ in range(4):
        await asyncio.sleep(limiter.reserve())
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    unlimited = RateLimiter(per_minute=None)
    start = time.monotonic()
    for _ in range(100):
        assert unlimited.reserve() == 0.0
        assert unlimited.until_handing() == 0.0
    assert time.monotonic() - start < 0.05


async def test_a_message_held_up_after_its_slot_pushes_the_next_one_back() -> None:
    limiter = RateLimiter(per_minute=600)  # one every 0.1 s
    first, second = limiter.reserve(), limiter.reserve()  # two connections, a slot each
    assert first == 0.0 and 0.09 <= second <= 0.1
    await asyncio.sleep(0.15)  # the first is held up past the second's slot
    assert limiter.until_handing() == 0.0
    handed = time.monotonic()
    # The second's slot has passed, but it still goes a whole spacing after the first.
    await asyncio.sleep(limiter.until_handing())
    assert time.monotonic() - handed >= 0.099
