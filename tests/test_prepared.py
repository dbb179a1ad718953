"""A statement compiled once for the per-message record: the same rows as SQLAlchemy's own run."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, create_engine, select

from embargo_bot.store.prepared import PreparedStatement

rows = Table(
    "rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("state", Text),
    Column("tries", Integer),
)
# A literal of its own (``tries + 1``, "pending") beside bound values, as the record has.
TRIED = (
    rows.update()
    .where(rows.c.id == bindparam("row"), rows.c.state == "pending")
    .values(state=bindparam("new_state"), tries=rows.c.tries + 1)
)


def test_it_writes_what_sqlalchemys_own_run_writes() -> None:
    engine = create_engine("sqlite://")
    rows.metadata.create_all(engine)
    prepared = PreparedStatement(TRIED, engine.dialect)
    with engine.begin() as connection:
        connection.execute(
            rows.insert(), [{"id": n, "state": "pending", "tries": 0} for n in (1, 2, 3)]
        )
        assert connection.execute(TRIED, {"row": 1, "new_state": "sent"}).rowcount == 1
        assert prepared.execute(connection, {"row": 2, "new_state": "sent"}).rowcount == 1
        # No longer pending: neither changes it again.
        assert prepared.execute(connection, {"row": 2, "new_state": "failed"}).rowcount == 0
        found = connection.execute(select(rows).order_by(rows.c.id)).all()
    assert [tuple(row) for row in found] == [(1, "sent", 1), (2, "sent", 1), (3, "pending", 0)]
