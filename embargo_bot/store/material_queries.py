"""The embargoed material itself, sealed by the vault: read, re-seal, purge after retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from embargo_bot.domain.errors import NotFoundError
from embargo_bot.domain.packs import PackState
from embargo_bot.domain.times import to_storage
from embargo_bot.store.audit_queries import AuditQueries
from embargo_bot.store.tables import pack_versions, packs

_SEALED = (
    pack_versions.c.pdf_sealed,
    pack_versions.c.release_sealed,
    pack_versions.c.social_sealed,
)


@dataclass(frozen=True)
class SealedContent:
    """The embargoed material as the store holds it: encrypted by the vault."""

    pdf: bytes
    release: bytes
    social: bytes | None


class MaterialQueries(AuditQueries):
    def sealed_content(self, pack_id: str, version: int) -> SealedContent:
        row = self._first(
            select(*_SEALED).where(
                pack_versions.c.pack_id == pack_id, pack_versions.c.version == version
            )
        )
        if row is None:
            raise NotFoundError(f"no version {version} of pack {pack_id!r}")
        return _sealed(row)

    def any_sealed_content(self) -> SealedContent | None:
        row = self._first(select(*_SEALED).limit(1))
        return None if row is None else _sealed(row)

    def purgeable_packs(self, before: datetime) -> list[str]:
        """Finished or withdrawn packs, public or withdrawn before ``before``, not yet purged."""
        query = (
            select(packs.c.id)
            .where(
                packs.c.purged_at.is_(None),
                packs.c.state.in_([PackState.DONE.value, PackState.CANCELLED.value]),
                func.coalesce(packs.c.cancelled_at, packs.c.lift_at) < to_storage(before),
            )
            .order_by(packs.c.id)
        )
        return [row[0] for row in self._rows(query)]

    def purge_pack(self, pack_id: str, now: datetime) -> bool:
        """Delete a pack's material (every version), keeping it and its delivery records."""
        with self._write() as connection:
            marked = connection.execute(
                update(packs)
                .where(packs.c.id == pack_id, packs.c.purged_at.is_(None))
                .values(purged_at=to_storage(now))
            ).rowcount
            if marked:
                connection.execute(
                    update(pack_versions)
                    .where(pack_versions.c.pack_id == pack_id)
                    .values(pdf_sealed=b"", release_sealed=b"", social_sealed=None)
                )
        return marked == 1

    def sealed_versions(self) -> list[tuple[str, int, SealedContent]]:
        """Every stored version's material, for re-encryption under a new key."""
        query = select(pack_versions.c.pack_id, pack_versions.c.version, *_SEALED).order_by(
            pack_versions.c.pack_id, pack_versions.c.version
        )
        return [(row[0], int(row[1]), _sealed(row[2:])) for row in self._rows(query)]

    def reseal_version(self, pack_id: str, version: int, content: SealedContent) -> None:
        with self._write() as connection:
            connection.execute(
                update(pack_versions)
                .where(pack_versions.c.pack_id == pack_id, pack_versions.c.version == version)
                .values(
                    pdf_sealed=content.pdf,
                    release_sealed=content.release,
                    social_sealed=content.social,
                )
            )


def _sealed(row: Sequence[Any]) -> SealedContent:
    return SealedContent(bytes(row[0]), bytes(row[1]), None if row[2] is None else bytes(row[2]))
