"""The store: the one package that speaks SQL, and the source of truth.

SQLite in WAL mode, so the command line and the service can use one file at
once. Work is claimed with conditional ``UPDATE ... WHERE state = ?`` and a
check of the row count, never with in-process locks, so that several service
instances on PostgreSQL can later share the same tables unchanged.

Durability: ``synchronous=NORMAL`` in WAL survives the process being killed at
any point; after a power cut the last few commits may roll back, which can only
mean a message is sent again, never that one is lost.

The queries are grouped by table in ``pack_queries``, ``stage_queries`` and
``delivery_queries``; ``Store`` is all of them over one connection.
May import ``security`` (the audit chain's MACs) and ``domain``.
"""

from __future__ import annotations

from embargo_bot.store.core import STORE_FAULTS, describe_fault, is_disk_full
from embargo_bot.store.delivery_queries import DeliveryQueries, StageSummary
from embargo_bot.store.pack_queries import SealedContent


class Store(DeliveryQueries):
    """Every read and write of packs, versions, stages and deliveries."""


__all__ = [
    "STORE_FAULTS",
    "SealedContent",
    "StageSummary",
    "Store",
    "describe_fault",
    "is_disk_full",
]
