"""Running the real service in this process until a stage has finished."""

from __future__ import annotations

import asyncio
import time

from errors import BenchError

from embargo_bot.app import App
from embargo_bot.domain.packs import OPEN_STAGE_STATES, Stage, StageKind

# How often to look at the store: often enough that the service stops soon
# after the stage ends, rarely enough not to compete with it for the loop.
_POLL = 0.25


def stage_of(app: App, pack_id: str, kind: StageKind) -> Stage:
    return next(stage for stage in app.store.stages(pack_id) if stage.kind is kind)


def stage_closed(app: App, pack_id: str, kind: StageKind) -> bool:
    return stage_of(app, pack_id, kind).state not in OPEN_STAGE_STATES


async def _serve_until_closed(app: App, pack_id: str, kind: StageKind, within: float) -> None:
    service = app.service()
    task = asyncio.create_task(service.run())
    deadline = time.monotonic() + within
    try:
        while not stage_closed(app, pack_id, kind):
            if task.done():
                task.result()  # re-raise whatever stopped it
                raise BenchError("the service stopped before the stage finished")
            if time.monotonic() > deadline:
                raise BenchError(f"the {kind} stage did not finish within {within:.0f} s")
            await asyncio.sleep(_POLL)
    finally:
        service.stop()
        await asyncio.wait_for(task, timeout=30)


def serve_until_closed(app: App, pack_id: str, kind: StageKind, *, within: float) -> None:
    """Run the service until the pack's stage of this kind is done (or fails), then stop it."""
    asyncio.run(_serve_until_closed(app, pack_id, kind, within))
