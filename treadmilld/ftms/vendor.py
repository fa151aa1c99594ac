"""What some decks need besides FTMS: a vendor unlock write, and incline given as a table index.

Sans-io like the rest of `treadmilld.ftms`: constants and pure functions that both the daemon's
BLE link and the simulator use, so the two can only agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from treadmilld.ftms.errors import CodecError

# KingSmith MC21 family (KS-MC21-*, KS-SMC21C-*, ZP-ZEALR1-*): a write-only vendor
# characteristic inside the FTMS service. Until it is written, Control Point requests go
# unanswered and time out (mcdax/walkingpad-controller, docs/ftms-protocol-reference.md §1.2,
# from the KS Fit app and btsnoop captures of a KS-MC21).
KINGSMITH_UNLOCK_CHARACTERISTIC_UUID = "d18d2c10-c44c-11e8-a355-529269fb1459"
# The bytes the KS Fit app writes there are not in any source we could reach; this is a
# stand-in. The simulator unlocks on any write to the characteristic, and a deployment can set
# the real bytes (taken from a `treadmilld diagnose --trace` of the vendor app) in its quirks.
KINGSMITH_UNLOCK_PAYLOAD = bytes.fromhex("01")

_INCLINE_TABLE = "Set Target Inclination (incline table)"

# An incline table (percent per index) for decks that take incline as an index. The values are
# illustrative: the pattern (finer steps low, coarser high, each index one fixed percent) is that
# of qdomyos-zwift's Kettler and iConcept device classes, but no real deck's table is copied.
# The link's `incline-table` quirk set and the simulator's `incline-table` preset both use it, so
# they agree on what each index means; a deployment sets its own deck's table in config.
ILLUSTRATIVE_INCLINE_TABLE: tuple[float, ...] = (
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 12.0,
)  # fmt: skip


def check_incline_table(table: Sequence[float]) -> None:
    """`CodecError` unless `table` has an entry and strictly increasing percents (entry i is the
    percent the deck takes index i for). Both the link's quirks and the simulator's config check
    their tables with this, so they refuse the same tables."""
    if not table:
        raise CodecError(_INCLINE_TABLE, "an incline table needs at least one entry")
    if any(b <= a for a, b in itertools.pairwise(table)):
        raise CodecError(
            _INCLINE_TABLE,
            f"incline table {list(table)} must be strictly increasing: entry i is the percent "
            "the deck takes index i for",
        )


def incline_table_index(table: Sequence[float], inclination_pct: float) -> int:
    """The index of the highest table entry at or below `inclination_pct`.

    Decks that take incline as a table index (Kettler, iConcept, some 3G Cardio: qdomyos-zwift
    device classes) cannot hit every percent; rounding toward the lower entry never inclines the
    belt more than asked. Raises `CodecError` when the table is empty, unsorted, or the asked
    value lies below its first entry.
    """
    check_incline_table(table)
    if inclination_pct < table[0] - 1e-9:
        raise CodecError(
            _INCLINE_TABLE,
            f"inclination {inclination_pct} % lies below the table's lowest entry {table[0]} %",
        )
    index = 0
    for position, entry in enumerate(table):
        if entry <= inclination_pct + 1e-9:
            index = position
    return index


def incline_table_value(table: Sequence[float], index: int) -> float:
    """The percent a table index stands for; `CodecError` when the index is off the table."""
    if not 0 <= index < len(table):
        raise CodecError(
            _INCLINE_TABLE, f"incline index {index} is off a table of {len(table)} entries"
        )
    return float(table[index])
