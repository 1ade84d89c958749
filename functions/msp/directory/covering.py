"""Covering a disk around a point with H3 cells, and proving how far the covering reaches.

A search reads the fine descendants of the covering cells. What it did not read lies under other
cells, and the nearest of those is at least `Covering.proven_km` away: the answer is exact up
to that distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import h3
from h3.api import basic_int as h3_int

from msp.directory.cellkeys import COARSE_RESOLUTION, FINE_RESOLUTION, Span, spans_of
from msp.directory.spherical import cell_circumradius_km, distance_to_cell_boundary_km, distances_from, unit_vector

# H3 children do not tile their parent exactly: their union overhangs the parent's polygon.
# One level overhangs by at most 0.1262 parent edges (a constant of the aperture-7 layout);
# successive levels shrink by 1/√7, so all levels down to FINE overhang at most
# 0.1262 × √7 / (√7 − 1) = 0.2030 edges. Rounded up for the projection's local distortion;
# tests check it on cells of metropolitan France, Corsica and the DROM.
OVERHANG_PER_EDGE = 0.21
# Longest hexagon edge anywhere over the average edge at the same resolution (1.102 measured).
MAX_EDGE_OVER_AVERAGE = 1.15
# Cover with cells of about a sixth of the radius: the covering hugs the disk, so `bridge_gaps`
# can join its runs into 3 ranges for what 4 cost with quarter-radius cells (make bench: 3.5
# requests per search on average instead of 4.2, 4.55 items read per result instead of 4.30).
EDGE_PER_RADIUS = 0.15
# Float error of the point-to-arc distance: up to ~1e-7 km on the shortest edges (the cross
# product of two close vertices cancels). A centimetre of slack dwarfs it.
_SLACK_KM = 1e-5
# The haversine of a centre and the point-to-arc distance of a polygon differ by float error (well under
# a millimetre): a lower bound made of the one, compared with the other, gives that much away.
_BOUND_SLACK_KM = 1e-6


def overhang_km(resolution: int) -> float:
    """How far any fine descendant of a cell at `resolution` can lie outside the cell's polygon."""
    return OVERHANG_PER_EDGE * MAX_EDGE_OVER_AVERAGE * h3.average_hexagon_edge_length(resolution, "km")


def covering_resolution(radius_km: float) -> int:
    """The finest resolution whose cells are at least EDGE_PER_RADIUS × radius wide."""
    for resolution in range(FINE_RESOLUTION, COARSE_RESOLUTION, -1):
        if h3.average_hexagon_edge_length(resolution, "km") >= EDGE_PER_RADIUS * radius_km:
            return resolution
    return COARSE_RESOLUTION


@dataclass(frozen=True)
class Covering:
    resolution: int
    cells: frozenset[str]
    # Every practice stored outside the fine descendants of `cells` is at least this far.
    proven_km: float


def cover_disk(lat: float, lon: float, radius_km: float, resolution: int | None = None) -> Covering:
    """Cells whose fine descendants may hold a point within `radius_km` of (lat, lon).

    Grows outward from the point's own cell. A cell joins when its polygon, widened by the
    overhang, comes within the radius. The cells left out next to the covering (the frontier)
    bound what was not covered: a great-circle path from the point to any uncovered cell leaves
    the covering through a frontier cell, so it is at least as long as the distance to the
    nearest frontier polygon; a practice there may overhang its cell, hence minus the overhang.
    """
    if resolution is None:
        resolution = covering_resolution(radius_km)
    # Cells as integers inside (H3's integer API skips a string conversion per cell); strings out.
    point = unit_vector(lat, lon)
    distance_km = distances_from(lat, lon)
    overhang = overhang_km(resolution)
    start = h3_int.latlng_to_cell(lat, lon, resolution)
    cells = {start}
    seen = {start}
    frontier_km = float("inf")
    pending = [start]
    out: list[tuple[float, int]] = []  # (lower bound of reach, cell) of cells surely left out
    while pending:
        for neighbour in h3_int.grid_disk(pending.pop(), 1):
            if neighbour in seen:
                continue
            seen.add(neighbour)
            # Measuring a polygon is the costly part, and the centre often decides. A neighbour's polygon
            # does not hold the point, so its boundary is nearer than its centre (by at least its inradius,
            # far beyond float error): a centre within reach joins. A polygon is no nearer than its centre
            # minus its circumradius: a cell out by that bound is left out, and measured only if it may
            # be the nearest of the frontier (below).
            centre_km = distance_km(*h3_int.cell_to_latlng(neighbour))
            if centre_km - overhang < radius_km:
                reach = -math.inf
            else:
                bound = centre_km - cell_circumradius_km(neighbour) - overhang - _BOUND_SLACK_KM
                if bound >= radius_km:
                    out.append((bound, neighbour))
                    continue
                reach = distance_to_cell_boundary_km(point, neighbour) - overhang
            if reach < radius_km:
                cells.add(neighbour)
                pending.append(neighbour)
            else:
                frontier_km = min(frontier_km, reach)
    for bound, cell in sorted(out):
        if bound >= frontier_km:
            break
        frontier_km = min(frontier_km, distance_to_cell_boundary_km(point, cell) - overhang)
    return Covering(resolution, frozenset(map(h3_int.int_to_str, cells)), frontier_km - _SLACK_KM)


@dataclass(frozen=True)
class DiskSpans:
    """A disk's covering as a search reads it: sort-key spans, how many fine cells they hold, how far they prove."""

    spans: tuple[Span, ...]
    fine_cells: int
    proven_km: float


# A warm function meets the same disks again: a commune's centre searched by many patients (the page searches
# from it), a search's next page, the same search repeated within its public max-age. ~5 kB each: 10 MB at most.
_DISKS_KEPT = 2048


@lru_cache(maxsize=_DISKS_KEPT)
def disk_spans(lat: float, lon: float, radius_km: float) -> DiskSpans:
    """The spans of `cover_disk(lat, lon, radius_km)`, computed once for a disk met again."""
    covering = cover_disk(lat, lon, radius_km)
    fine_cells = len(covering.cells) * 7 ** (FINE_RESOLUTION - covering.resolution)
    return DiskSpans(tuple(spans_of(covering.cells)), fine_cells, covering.proven_km)
