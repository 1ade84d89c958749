"""The covering's proof: nothing outside the covered cells is nearer than `proven_km`."""

from __future__ import annotations

import math

import h3
from hypothesis import given, settings
from hypothesis import strategies as st

from msp.directory.cellkeys import COARSE_RESOLUTION, FINE_RESOLUTION, fine_cell
from msp.directory.covering import cover_disk, covering_resolution, overhang_km
from msp.directory.spherical import (
    EARTH_RADIUS_KM,
    cell_circumradius_km,
    distance_to_cell_boundary_km,
    haversine_km,
    unit_vector,
)

from .strategies import french_points

# One level of children overhangs its parent by at most this many parent edges (see covering.py).
ONE_LEVEL_OVERHANG = 0.1262


def _along_arc(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    """The point a fraction t of the way along the great-circle arc from a to b."""
    va, vb = unit_vector(*a), unit_vector(*b)
    cross = (va[1] * vb[2] - va[2] * vb[1], va[2] * vb[0] - va[0] * vb[2], va[0] * vb[1] - va[1] * vb[0])
    omega = math.atan2(math.hypot(*cross), sum(x * y for x, y in zip(va, vb, strict=True)))
    if omega == 0:
        return a
    wa, wb = math.sin((1 - t) * omega) / math.sin(omega), math.sin(t * omega) / math.sin(omega)
    x, y, z = (wa * p + wb * q for p, q in zip(va, vb, strict=True))
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def _max_edge_km(cell: str) -> float:
    boundary = h3.cell_to_boundary(cell)
    return max(haversine_km(*boundary[i], *boundary[(i + 1) % len(boundary)]) for i in range(len(boundary)))


def _overhang_of(cell: str, descendants: list[str]) -> float:
    resolution = h3.get_resolution(cell)
    worst = 0.0
    for descendant in descendants:
        for vertex in h3.cell_to_boundary(descendant):
            if h3.latlng_to_cell(*vertex, resolution) != cell:
                worst = max(worst, distance_to_cell_boundary_km(unit_vector(*vertex), cell))
    return worst


def test_haversine_matches_h3_on_the_same_sphere():
    paris, marseille = (48.8566, 2.3522), (43.2965, 5.3698)
    expected = h3.great_circle_distance(paris, marseille, unit="rads") * EARTH_RADIUS_KM
    assert math.isclose(haversine_km(*paris, *marseille), expected, rel_tol=1e-12)
    assert 660 < haversine_km(*paris, *marseille) < 662
    assert haversine_km(*paris, *paris) == 0


@settings(max_examples=100, deadline=None)
@given(french_points(), st.integers(COARSE_RESOLUTION, FINE_RESOLUTION), st.floats(0.3, 3))
def test_distance_to_a_cell_is_the_nearest_point_of_its_polygon(point, resolution, away):
    lat, lon = point
    cell = h3.latlng_to_cell(lat, lon, resolution)
    # A query point a few cells away.
    edge = h3.average_hexagon_edge_length(resolution, "km")
    q_lat, q_lon = lat + away * 3 * edge / 111.2, lon - away * edge / 111.2
    if h3.latlng_to_cell(q_lat, q_lon, resolution) == cell:
        return
    distance = distance_to_cell_boundary_km(unit_vector(q_lat, q_lon), cell)
    boundary = h3.cell_to_boundary(cell)
    samples = []
    for i in range(len(boundary)):
        a, b = boundary[i], boundary[(i + 1) % len(boundary)]
        samples += [_along_arc(a, b, t / 200) for t in range(201)]
    inside = [h3.cell_to_latlng(c) for c in h3.cell_to_children(cell, min(resolution + 2, 15))]
    nearest_sample = min(haversine_km(q_lat, q_lon, *p) for p in samples)
    # Within a millimetre (float error is ~1e-7 km), below the centimetre of slack the covering keeps.
    assert distance <= nearest_sample + 1e-6
    assert nearest_sample - distance < 0.002 * edge
    assert all(haversine_km(q_lat, q_lon, *p) >= distance - 1e-6 for p in inside)


@settings(max_examples=100, deadline=None)
@given(french_points(), st.integers(COARSE_RESOLUTION, FINE_RESOLUTION), st.floats(0.3, 3))
def test_a_cell_is_no_nearer_than_its_centre_minus_its_circumradius(point, resolution, away):
    """The bound the covering leaves cells out by, without measuring their polygon."""
    lat, lon = point
    cell = h3.latlng_to_cell(lat, lon, resolution)
    centre = h3.cell_to_latlng(cell)
    circumradius = cell_circumradius_km(cell)
    boundary = h3.cell_to_boundary(cell)
    samples = [
        _along_arc(boundary[i], boundary[(i + 1) % len(boundary)], t / 50)
        for i in range(len(boundary))
        for t in range(51)
    ]
    assert all(haversine_km(*centre, *p) <= circumradius + 1e-9 for p in samples)
    edge = h3.average_hexagon_edge_length(resolution, "km")
    q_lat, q_lon = lat + away * 3 * edge / 111.2, lon - away * edge / 111.2
    if h3.latlng_to_cell(q_lat, q_lon, resolution) != cell:
        bound = haversine_km(q_lat, q_lon, *centre) - circumradius
        assert bound <= distance_to_cell_boundary_km(unit_vector(q_lat, q_lon), cell) + 1e-6


@settings(max_examples=120, deadline=None)
@given(french_points(), st.integers(COARSE_RESOLUTION, FINE_RESOLUTION - 1))
def test_children_overhang_their_parent_by_the_one_level_constant(point, resolution):
    cell = h3.latlng_to_cell(*point, resolution)
    assert _overhang_of(cell, h3.cell_to_children(cell, resolution + 1)) <= ONE_LEVEL_OVERHANG * _max_edge_km(cell)


@settings(max_examples=30, deadline=None)
@given(french_points(), st.integers(FINE_RESOLUTION - 4, FINE_RESOLUTION - 1))
def test_fine_descendants_stay_within_the_overhang(point, resolution):
    cell = h3.latlng_to_cell(*point, resolution)
    # Only descendants along the border can overhang: those of the children not at the centre.
    border = [
        c for c in h3.cell_to_children(cell, resolution + 1) if c != h3.cell_to_center_child(cell, resolution + 1)
    ]
    descendants = [d for c in border for d in h3.cell_to_children(c, FINE_RESOLUTION)]
    assert _overhang_of(cell, descendants) <= overhang_km(resolution)


def test_covering_resolution_follows_the_radius():
    assert covering_resolution(0.05) == FINE_RESOLUTION
    assert covering_resolution(100) == COARSE_RESOLUTION
    resolutions = [covering_resolution(r) for r in (0.1, 0.5, 1, 3, 10, 30, 100)]
    assert resolutions == sorted(resolutions, reverse=True)


def _adversarial_points(covering) -> list[tuple[float, float]]:
    """Points right outside the covering: vertices of the fine-ish descendants of its frontier cells."""
    frontier = {n for c in covering.cells for n in h3.grid_ring(c, 1)} - covering.cells
    depth = min(FINE_RESOLUTION, covering.resolution + 2)
    points = []
    for cell in frontier:
        for child in h3.cell_to_children(cell, depth):
            points += h3.cell_to_boundary(child)
    return points


@settings(max_examples=80, deadline=None)
@given(french_points(), st.floats(0.02, 60), st.integers(0, 2**32 - 1))
def test_nothing_outside_the_covering_is_nearer_than_proven(point, radius_km, seed):
    lat, lon = point
    covering = cover_disk(lat, lon, radius_km)
    assert covering.proven_km >= radius_km - 1e-5
    assert h3.latlng_to_cell(lat, lon, covering.resolution) in covering.cells
    points = _adversarial_points(covering)
    for p_lat, p_lon in points:
        ancestor = h3.cell_to_parent(fine_cell(p_lat, p_lon), covering.resolution)
        if ancestor not in covering.cells:
            assert haversine_km(lat, lon, p_lat, p_lon) >= covering.proven_km


@settings(max_examples=60, deadline=None)
@given(french_points(), st.floats(0.02, 20), st.integers(COARSE_RESOLUTION, FINE_RESOLUTION))
def test_the_proof_holds_at_any_covering_resolution(point, radius_km, resolution):
    lat, lon = point
    if h3.average_hexagon_edge_length(resolution, "km") < radius_km / 8:
        return  # too many cells to be a sensible covering
    covering = cover_disk(lat, lon, radius_km, resolution)
    for p_lat, p_lon in _adversarial_points(covering):
        if h3.cell_to_parent(fine_cell(p_lat, p_lon), resolution) not in covering.cells:
            assert haversine_km(lat, lon, p_lat, p_lon) >= covering.proven_km
