"""The store: the one package that speaks SQL, and the source of truth.

SQLAlchemy Core over SQLite (WAL, so the command line and the service can use
one file at once) or PostgreSQL (psycopg 3, so several service instances on
several hosts can share it); ``target`` says which EMBARGO_BOT_DATABASE names,
``migrate`` keeps the tables at this release's revision. Work is claimed with
conditional ``UPDATE ... WHERE state = ...`` and a check of the row count,
never with in-process locks.

Durability: ``synchronous=NORMAL`` in WAL survives the process being killed at
any point; after a power cut the last few commits may roll back, which can only
mean a message is sent again, never that one is lost.

The queries are grouped by table in ``pack_queries``, ``stage_queries``,
``delivery_queries``, ``instance_queries``, ``link_queries``, ``bounce_queries``
and ``rate_queries``; ``Store`` is all of them over one engine (``core``).
May import ``security`` (the audit chain's MACs) and
``domain``.
"""

from __future__ import annotations

from embargo_bot.store.bounce_queries import BounceQueries
from embargo_bot.store.core import upgrade
from embargo_bot.store.delivery_queries import StageSummary
from embargo_bot.store.faults import (
    STORE_FAULTS,
    describe_fault,
    is_connection_lost,
    is_disk_full,
    is_locked,
)
from embargo_bot.store.instance_queries import InstanceStatus
from embargo_bot.store.link_queries import LinkQueries
from embargo_bot.store.material_queries import SealedContent
from embargo_bot.store.migrate import HEAD
from embargo_bot.store.rate_queries import RateQueries
from embargo_bot.store.target import StoreTarget, choose_store


class Store(BounceQueries, LinkQueries, RateQueries):
    """Every read and write of packs, versions, stages, deliveries, instances, link checks,
    bounces and send slots."""


__all__ = [
    "HEAD",
    "STORE_FAULTS",
    "InstanceStatus",
    "SealedContent",
    "StageSummary",
    "Store",
    "StoreTarget",
    "choose_store",
    "describe_fault",
    "is_connection_lost",
    "is_disk_full",
    "is_locked",
    "upgrade",
]
