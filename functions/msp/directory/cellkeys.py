"""Directory keys: the H3 cells a listed practice is stored under, and the sort-key ranges a search reads.

A practice is stored under partition key = its coarse cell and sort key = "<fine cell>#<practice id>",
the fine cell written as 16 lowercase hex digits so that strings compare like the H3 integers.

An H3 index holds a base cell then one 3-bit digit (0-6) per resolution, unused digits set to 7.
The fine descendants of any cell at a resolution between COARSE and FINE share its digits and fill
the remaining ones freely, so they form one contiguous run of the integer order: a covering cell
is one `BETWEEN` on the sort key inside its coarse partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

import h3

# Sort key: ~66 m edge, finer than any cell a search covers with, so coverings hug the disk.
FINE_RESOLUTION = 10
# Partition key: ~26 km edge (~1,770 km²). Large enough that a 30 km search touches a handful
# of partitions (one Query each), small enough that the densest (Paris) stays a few MB.
COARSE_RESOLUTION = 4

_RESOLUTION_SHIFT = 52
_RESOLUTION_MASK = 0xF << _RESOLUTION_SHIFT
_DIGIT_BITS = 3
_MAX_RESOLUTION = 15


def _digit_shift(resolution: int) -> int:
    return (_MAX_RESOLUTION - resolution) * _DIGIT_BITS


def fine_cell(lat: float, lon: float) -> str:
    return h3.latlng_to_cell(lat, lon, FINE_RESOLUTION)


def partition_of(cell: str) -> str:
    """The coarse cell holding `cell`: always its ancestor, never recomputed from a point.

    Recomputing from the point could land in a neighbouring coarse cell (H3 children overhang
    their parent), and a search would then look for the practice in the wrong partition.
    """
    return h3.cell_to_parent(cell, COARSE_RESOLUTION)


def sort_key_prefix(index: int) -> str:
    return f"{index:016x}"


def sort_key(fine: str, practice_id: str) -> str:
    if h3.get_resolution(fine) != FINE_RESOLUTION:
        raise ValueError(f"a sort key needs a cell at resolution {FINE_RESOLUTION}")
    return f"{sort_key_prefix(h3.str_to_int(fine))}#{practice_id}"


def fine_cell_of(sort_key: str) -> str:
    """The fine cell a sort key was made from (its 16 hex digits)."""
    return h3.int_to_str(int(sort_key[:16], 16))


def index_keys(lat: float, lon: float, practice_id: str) -> tuple[str, str]:
    """(partition key, sort key) of a practice at this point."""
    fine = fine_cell(lat, lon)
    return partition_of(fine), sort_key(fine, practice_id)


def ordinal(index: int) -> int:
    """Position of a fine cell among the fine cells of its base cell (the digits read in base 7)."""
    position = 0
    for resolution in range(1, FINE_RESOLUTION + 1):
        position = position * 7 + ((index >> _digit_shift(resolution)) & 7)
    return position


def index_at(partition: str, position: int) -> int:
    """The fine cell index at `position` in the partition's base cell (inverse of `ordinal`)."""
    index = (h3.str_to_int(partition) & ~_RESOLUTION_MASK) | (FINE_RESOLUTION << _RESOLUTION_SHIFT)
    for resolution in range(FINE_RESOLUTION, 0, -1):
        position, digit = divmod(position, 7)
        shift = _digit_shift(resolution)
        index = (index & ~(7 << shift)) | (digit << shift)
    return index


def descendant_span(cell: str) -> tuple[int, int]:
    """Ordinals of the first and last fine descendants of `cell` (inclusive)."""
    resolution = h3.get_resolution(cell)
    if not COARSE_RESOLUTION <= resolution <= FINE_RESOLUTION:
        raise ValueError(f"cover with cells of resolution {COARSE_RESOLUTION} to {FINE_RESOLUTION}")
    first = ordinal(h3.str_to_int(h3.cell_to_center_child(cell, FINE_RESOLUTION)))
    width = 7 ** (FINE_RESOLUTION - resolution)
    return first, first + width - 1


class Span(NamedTuple):
    """Fine cells `first`..`last` (ordinals, inclusive) of one partition."""

    partition: str
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class KeyRange(NamedTuple):
    """One Query: partition key = `partition`, sort key BETWEEN `low` AND `high`."""

    partition: str
    low: str
    high: str


# A warm function asks for the same spans again (the same search repeated, its next page): a few kB.
@lru_cache(maxsize=4096)
def key_range(span: Span) -> KeyRange:
    low = sort_key_prefix(index_at(span.partition, span.first))
    high = sort_key_prefix(index_at(span.partition, span.last))
    # '#' < '$': "<low>#" precedes every key of the first cell, "<high>$" follows every key of the last.
    return KeyRange(span.partition, f"{low}#", f"{high}$")


@lru_cache(maxsize=4096)
def span_of(partition: str, low: str, high: str) -> Span | None:
    """The span a key range was made from (key_range's inverse); None for a range of another shape."""
    if len(low) != 17 or len(high) != 17 or low[16] != "#" or high[16] != "$":
        return None
    try:
        first, last = ordinal(int(low[:16], 16)), ordinal(int(high[:16], 16))
    except ValueError:
        return None
    span = Span(partition, first, last)
    return span if first <= last and key_range(span) == (partition, low, high) else None


def spans_of(cells: Iterable[str]) -> list[Span]:
    """Disjoint spans covering the fine descendants of `cells`, adjacent runs joined, sorted."""
    compacted = h3.compact_cells(list(set(cells)))
    # Compaction may climb above the partitions' resolution; a partition is the largest unit read.
    too_coarse = [cell for cell in compacted if h3.get_resolution(cell) < COARSE_RESOLUTION]
    compacted = [cell for cell in compacted if h3.get_resolution(cell) >= COARSE_RESOLUTION]
    compacted += h3.uncompact_cells(too_coarse, COARSE_RESOLUTION) if too_coarse else []
    raw = sorted(Span(_partition_of_any(cell), *descendant_span(cell)) for cell in compacted)
    return _joined(raw)


def _partition_of_any(cell: str) -> str:
    return cell if h3.get_resolution(cell) == COARSE_RESOLUTION else h3.cell_to_parent(cell, COARSE_RESOLUTION)


def _joined(spans: list[Span]) -> list[Span]:
    joined: list[Span] = []
    for span in spans:
        if joined and joined[-1].partition == span.partition and span.first <= joined[-1].last + 1:
            last = joined[-1]
            joined[-1] = Span(last.partition, last.first, max(last.last, span.last))
        else:
            joined.append(span)
    return joined


def union(spans: list[Span], more: list[Span]) -> list[Span]:
    return _joined(sorted(spans + more))


def subtract(spans: Sequence[Span], done: list[Span]) -> list[Span]:
    """The parts of `spans` not in `done` (both sorted and disjoint)."""
    result: list[Span] = []
    for span in spans:
        first = span.first
        for hole in done:
            if hole.partition != span.partition or hole.last < first or hole.first > span.last:
                continue
            if hole.first > first:
                result.append(Span(span.partition, first, hole.first - 1))
            first = max(first, hole.last + 1)
        if first <= span.last:
            result.append(Span(span.partition, first, span.last))
    return result


def bridge_gaps(spans: list[Span], *, budget: int, cheap_gap: int, max_gap: int) -> list[Span]:
    """Join neighbouring spans of a partition: each span is one request, a join reads the gap too.

    Gaps are measured in fine cells, i.e. in area, so the smallest gaps cost the fewest extra
    items. Gaps up to `cheap_gap` are always joined (reading them costs less than a request);
    larger ones while more than `budget` spans remain, but never one wider than `max_gap`.
    Joining two spans leaves the other gaps as they were, so the gaps are taken smallest first
    (leftmost first among equal ones) in one pass.
    """
    spans = sorted(spans)
    gaps = sorted(
        (spans[i + 1].first - spans[i].last - 1, i)
        for i in range(len(spans) - 1)
        if spans[i].partition == spans[i + 1].partition
    )
    remaining = len(spans)
    joined_after: set[int] = set()  # i: span i + 1 joins span i
    for gap, i in gaps:
        if gap > max_gap or (gap > cheap_gap and remaining <= budget):
            break
        joined_after.add(i)
        remaining -= 1
    result: list[Span] = []
    for i, span in enumerate(spans):
        if i - 1 in joined_after:
            result[-1] = Span(span.partition, result[-1].first, span.last)
        else:
            result.append(span)
    return result
