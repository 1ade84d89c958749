"""Directory keys: coarse cells come from fine cells, and one range reads exactly a cell's descendants."""

from __future__ import annotations

import random

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msp.directory.cellkeys import (
    COARSE_RESOLUTION,
    FINE_RESOLUTION,
    Span,
    bridge_gaps,
    descendant_span,
    fine_cell,
    index_at,
    index_keys,
    key_range,
    ordinal,
    partition_of,
    sort_key,
    spans_of,
    subtract,
    union,
)

from .strategies import french_points


def _is_descendant(fine: str, cell: str) -> bool:
    return h3.cell_to_parent(fine, h3.get_resolution(cell)) == cell


@settings(max_examples=200, deadline=None)
@given(french_points())
def test_the_partition_is_the_coarse_ancestor_of_the_fine_cell(point):
    lat, lon = point
    partition, key = index_keys(lat, lon, "psy-1")
    fine = fine_cell(lat, lon)
    assert h3.get_resolution(fine) == FINE_RESOLUTION
    assert partition == h3.cell_to_parent(fine, COARSE_RESOLUTION) == partition_of(fine)
    assert key == f"{h3.str_to_int(fine):016x}#psy-1"


def test_a_point_can_lie_outside_the_coarse_cell_its_fine_cell_descends_from():
    """Why partitions come from the fine cell: recomputing from the point would disagree here."""
    rng = random.Random(4)
    disagreements = 0
    for _ in range(20000):
        lat, lon = rng.uniform(43, 50), rng.uniform(-1, 7)
        if partition_of(fine_cell(lat, lon)) != h3.latlng_to_cell(lat, lon, COARSE_RESOLUTION):
            disagreements += 1
    assert disagreements > 0


@settings(max_examples=200, deadline=None)
@given(french_points(), french_points())
def test_sort_keys_order_like_the_h3_integers(a, b):
    fine_a, fine_b = fine_cell(*a), fine_cell(*b)
    int_a, int_b = h3.str_to_int(fine_a), h3.str_to_int(fine_b)
    key_a, key_b = sort_key(fine_a, "zz-3"), sort_key(fine_b, "a-1")
    if int_a != int_b:
        assert (key_a < key_b) == (int_a < int_b)


def test_a_sort_key_needs_a_fine_cell():
    with pytest.raises(ValueError):
        sort_key(h3.latlng_to_cell(48.85, 2.35, 9), "x-1")


@settings(max_examples=200, deadline=None)
@given(french_points())
def test_ordinal_and_index_at_are_inverse(point):
    fine = h3.str_to_int(fine_cell(*point))
    partition = partition_of(fine_cell(*point))
    assert index_at(partition, ordinal(fine)) == fine


@settings(max_examples=60, deadline=None)
@given(french_points(), st.integers(COARSE_RESOLUTION, FINE_RESOLUTION))
def test_a_cells_span_holds_exactly_its_fine_descendants(point, resolution):
    cell = h3.latlng_to_cell(*point, resolution)
    first, last = descendant_span(cell)
    assert last - first + 1 == 7 ** (FINE_RESOLUTION - resolution)
    partition = cell if resolution == COARSE_RESOLUTION else h3.cell_to_parent(cell, COARSE_RESOLUTION)
    # Every position of the span is a descendant, and the span's ends are the extreme descendants.
    if resolution >= FINE_RESOLUTION - 3:
        children = {h3.str_to_int(c) for c in h3.cell_to_children(cell, FINE_RESOLUTION)}
        assert {index_at(partition, position) for position in range(first, last + 1)} == children
    for position in (first, last, (first + last) // 2):
        assert _is_descendant(h3.int_to_str(index_at(partition, position)), cell)
    # Fine cells of the neighbours fall outside.
    for neighbour in h3.grid_ring(cell, 1):
        if h3.cell_to_parent(neighbour, COARSE_RESOLUTION) == partition:
            inside = h3.str_to_int(h3.cell_to_center_child(neighbour, FINE_RESOLUTION))
            assert not first <= ordinal(inside) <= last


@settings(max_examples=60, deadline=None)
@given(french_points(), st.integers(COARSE_RESOLUTION, FINE_RESOLUTION))
def test_a_key_range_selects_exactly_the_sort_keys_of_the_descendants(point, resolution):
    cell = h3.latlng_to_cell(*point, resolution)
    (span,) = spans_of([cell])
    partition, low, high = key_range(span)
    assert partition == partition_of(h3.cell_to_center_child(cell, FINE_RESOLUTION))
    ids = ["a", "0", "zzzz-3", "psy-1", "~"]
    first = h3.cell_to_center_child(cell, FINE_RESOLUTION)
    last = h3.int_to_str(index_at(partition, span.last))
    for fine in (first, last):
        for practice_id in ids:
            assert low <= sort_key(fine, practice_id) <= high
    for neighbour in h3.grid_disk(cell, 1):
        if neighbour == cell:
            continue
        for fine in (h3.cell_to_center_child(neighbour, FINE_RESOLUTION),):
            for practice_id in ids:
                key = sort_key(fine, practice_id)
                assert h3.cell_to_parent(fine, COARSE_RESOLUTION) != partition or not low <= key <= high


@settings(max_examples=100, deadline=None)
@given(french_points(), st.integers(COARSE_RESOLUTION + 1, FINE_RESOLUTION))
def test_the_seven_children_join_into_their_parents_span(point, resolution):
    parent = h3.latlng_to_cell(*point, resolution - 1)
    children = h3.cell_to_children(parent, resolution)
    spans = spans_of(children)
    assert len(spans) == 1
    assert (spans[0].first, spans[0].last) == descendant_span(parent)


def test_covering_cells_map_to_the_partition_of_their_descendants():
    cells = h3.grid_disk(h3.latlng_to_cell(48.8566, 2.3522, 6), 3)
    for span in spans_of(cells):
        first = h3.int_to_str(index_at(span.partition, span.first))
        assert partition_of(first) == span.partition


def test_subtract_and_union():
    p = "841fb47ffffffff"
    spans = [Span(p, 0, 99), Span(p, 200, 299)]
    done = [Span(p, 10, 19), Span(p, 250, 400)]
    assert subtract(spans, done) == [Span(p, 0, 9), Span(p, 20, 99), Span(p, 200, 249)]
    assert subtract(spans, [Span("other", 0, 1000)]) == spans
    assert union(spans, done) == [Span(p, 0, 99), Span(p, 200, 400)]
    assert union([Span(p, 0, 9)], [Span(p, 10, 12)]) == [Span(p, 0, 12)]


def test_bridge_gaps_joins_the_smallest_gaps_within_a_partition_only():
    p, q = "841fb47ffffffff", "841fb41ffffffff"
    spans = [Span(p, 0, 9), Span(p, 12, 20), Span(p, 100, 110), Span(q, 0, 5)]

    def bridged(**options):
        return set(bridge_gaps(spans, **options))

    assert bridged(budget=3, cheap_gap=0, max_gap=1000) == {Span(p, 0, 20), Span(p, 100, 110), Span(q, 0, 5)}
    assert bridged(budget=1, cheap_gap=0, max_gap=1000) == {Span(p, 0, 110), Span(q, 0, 5)}
    # A gap wider than max_gap stays, even over budget.
    assert bridged(budget=1, cheap_gap=0, max_gap=50) == {Span(p, 0, 20), Span(p, 100, 110), Span(q, 0, 5)}
    # Cheap gaps are joined under budget too.
    assert bridged(budget=10, cheap_gap=2, max_gap=1000) == {Span(p, 0, 20), Span(p, 100, 110), Span(q, 0, 5)}
    assert bridged(budget=10, cheap_gap=0, max_gap=1000) == set(spans)
