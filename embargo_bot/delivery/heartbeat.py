"""How often a service says it is alive, and when silence means it has gone.

Each running instance records a heartbeat in the store's ``instances`` table
under its owner id (the one it claims stages with). An instance whose
heartbeat is older than ``GONE_AFTER`` is taken for dead (killed, its host
down, cut off from the database), and any other instance puts its stages back
to be claimed afresh: sooner than waiting out each stage's lease, and it works
for instances on other hosts, where no process can be checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from embargo_bot.store import InstanceStatus

BEAT_EVERY = timedelta(seconds=1)
# Three beats missed and a half: a busy loop may be late with one, never with three.
# With the one-second poll, a dead instance's work is resumed within 5 s.
GONE_AFTER = timedelta(seconds=3.5)


def others(live: Sequence[InstanceStatus], *, me: str) -> list[InstanceStatus]:
    """The live instances that are not this one."""
    return [instance for instance in live if instance.id != me]
