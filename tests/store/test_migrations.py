"""The schema is migrated on open: from an empty database, from the previous revision with its
data kept, and never from a revision newer than this code knows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.store.records import STARTED
from treadmilld.history.records import Feedback, WorkoutOutcome
from treadmilld.history.riders import StrapChoice
from treadmilld.store.api import (
    SchemaTooNewError,
    create_engine,
    head_revision,
    open_store,
    schema_revision,
    upgrade_schema,
)
from treadmilld.store.schema import metadata

# Typed as the column is, so each driver writes it its own way (not sqlite3's default datetime
# adapter, deprecated since Python 3.12).
_AT = sa.bindparam("at", type_=sa.DateTime(timezone=True))


def _differences(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, metadata))


async def test_an_empty_database_gets_the_newest_schema_the_tables_describe(
    database_url: str,
) -> None:
    async with await open_store(database_url) as store:
        assert await schema_revision(store.engine) == head_revision() == "0003"
        async with store.engine.connect() as connection:
            # The migrations build exactly what schema.py declares: a column or index added
            # to one and not the other shows here.
            assert await connection.run_sync(_differences) == []
    # Opening again finds nothing to do.
    async with await open_store(database_url) as store:
        assert await schema_revision(store.engine) == "0003"


async def test_a_database_of_the_previous_schema_is_upgraded_with_its_history_kept(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    await upgrade_schema(engine, "0001")
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO riders (id, display_name, body_weight_kg, clinical, created_at, "
                "updated_at) VALUES ('r-3', 'Three', 61.0, false, :at, :at)"
            ).bindparams(_AT),
            {"at": STARTED},
        )
        await connection.execute(
            sa.text(
                "INSERT INTO workouts (id, rider_id, treadmill_id, profile_name, started_at, "
                "outcome, duration_s, distance_forward_m, distance_backward_m, kcal) VALUES "
                "('w-old', 'r-3', 'tm01', 'p1-seed-steps', :at, 'finished', 600, 400, 120, 41)"
            ).bindparams(_AT),
            {"at": STARTED},
        )
        await connection.execute(
            sa.text(
                "INSERT INTO samples (workout_id, at_s, speed_kmh, direction, "
                "distance_forward_m, distance_backward_m) VALUES "
                "('w-old', 0, 0, 'rest', 0, 0), ('w-old', 1, 2.5, 'backward', 0, 0.7)"
            )
        )
    await engine.dispose()

    async with await open_store(database_url) as store:
        assert await schema_revision(store.engine) == "0003"
        assert (await store.get_rider("r-3")).body_weight_kg == 61.0
        old = await store.get_workout("w-old")
        assert old.outcome is WorkoutOutcome.FINISHED
        assert old.started_at == STARTED
        assert [sample.speed_kmh for sample in old.samples] == [0.0, 2.5]
        assert old.summary is not None
        assert old.summary.distance_backward_m == 120.0
        # What 0002 added works on the old rows.
        report = Feedback(effort=4, pain=1, reported_at=datetime(2026, 3, 2, 9, tzinfo=UTC))
        await store.add_feedback("w-old", report)
        assert (await store.get_workout("w-old")).feedback == report
        # What 0003 added: a rider from before wears no strap of their own, and can be given one.
        rider = await store.get_rider("r-3")
        assert rider.heart_rate_strap is None
        await store.update_rider(replace(rider, heart_rate_strap=StrapChoice(name_match="H10")))
        assert (await store.get_rider("r-3")).heart_rate_strap == StrapChoice(name_match="H10")


async def test_a_schema_newer_than_this_code_is_refused_with_what_to_do(
    database_url: str,
) -> None:
    async with await open_store(database_url) as store, store.engine.begin() as connection:
        await connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))

    with pytest.raises(SchemaTooNewError, match=r"'0099'.*Upgrade treadmilld"):
        await open_store(database_url)
    # Nothing was touched: the newer treadmilld still finds its own schema.
    engine = create_engine(database_url)
    try:
        assert await schema_revision(engine) == "0099"
    finally:
        await engine.dispose()
