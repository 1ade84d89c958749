"""Distances on the sphere: haversine between points, and from a point to an H3 cell's polygon.

Both use the same sphere (mean Earth radius), so a lower bound computed from a cell's polygon
can be compared exactly with the haversine distance of a practice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import h3
from h3.api import basic_int as h3_int

EARTH_RADIUS_KM = 6371.0088

Vector = tuple[float, float, float]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return distances_from(lat1, lon1)(lat2, lon2)


def distances_from(lat: float, lon: float) -> Callable[[float, float], float]:
    """Haversine distances in km from a fixed point: what depends on that point alone is computed once."""
    phi1 = math.radians(lat)
    cos_phi1 = math.cos(phi1)
    diameter_km = 2 * EARTH_RADIUS_KM
    radians, sin, cos = math.radians, math.sin, math.cos

    def distance_km(lat2: float, lon2: float) -> float:
        phi2 = radians(lat2)
        a = sin((phi2 - phi1) / 2) ** 2 + cos_phi1 * cos(phi2) * sin(radians(lon2 - lon) / 2) ** 2
        return diameter_km * math.asin(min(1.0, math.sqrt(a)))

    return distance_km


def unit_vector(lat: float, lon: float) -> Vector:
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _angle(a: Vector, b: Vector) -> float:
    # atan2 stays accurate for tiny angles, where acos of a dot product does not.
    c = _cross(a, b)
    return math.atan2(math.sqrt(_dot(c, c)), _dot(a, b))


class _Edge(NamedTuple):
    """One edge of a cell's polygon: the minor great-circle arc from a to b."""

    a: Vector
    b: Vector
    normal: Vector | None  # unit normal of the arc's plane; None when a and b (nearly) coincide


@lru_cache(maxsize=4096)
def _edges(cell: int) -> tuple[_Edge, ...]:
    """A cell's polygon as arcs, with what depends on the cell alone computed once: a warm function measures the
    same cells around the places searched again (~2 kB each)."""
    vertices = [unit_vector(lat, lon) for lat, lon in h3_int.cell_to_boundary(cell)]
    edges = []
    for a, b in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        n = _cross(a, b)
        length = math.sqrt(_dot(n, n))
        edges.append(_Edge(a, b, None if length < 1e-15 else (n[0] / length, n[1] / length, n[2] / length)))
    return tuple(edges)


def _angle_to_arc(p: Vector, edge: _Edge) -> float:
    """Angle from p to the edge's arc."""
    a, b, n = edge
    if n is None:
        return _angle(p, a)
    s = _dot(p, n)
    foot = (p[0] - s * n[0], p[1] - s * n[1], p[2] - s * n[2])
    # The foot of the perpendicular lies on the arc when it is between a and b seen along n.
    if _dot(_cross(a, foot), n) >= 0 and _dot(_cross(foot, b), n) >= 0:
        return math.asin(min(1.0, abs(s)))
    return min(_angle(p, a), _angle(p, b))


def distance_to_cell_boundary_km(point: Vector, cell: str | int) -> float:
    """Great-circle distance from `point` to the boundary of `cell` (an H3 index, as a string or an integer).

    H3 cell edges are straight in the gnomonic projection of an icosahedron face, hence
    great-circle arcs (cells crossing a face edge carry extra vertices for that), so this is
    the exact distance to the polygon for any point outside it.
    """
    index = h3.str_to_int(cell) if isinstance(cell, str) else cell
    return EARTH_RADIUS_KM * min(_angle_to_arc(point, edge) for edge in _edges(index))


def cell_circumradius_km(cell: str | int) -> float:
    """Great-circle distance from the centre of `cell` to its farthest vertex: no point of the polygon is
    farther from the centre (a cell is a small convex polygon around its centre)."""
    return _circumradius_km(h3.str_to_int(cell) if isinstance(cell, str) else cell)


@lru_cache(maxsize=16384)
def _circumradius_km(cell: int) -> float:
    # Kept for the cells a warm function meets again: searches come from where people live, the same few
    # thousand cells.
    lat, lon = h3_int.cell_to_latlng(cell)
    return max(haversine_km(lat, lon, vlat, vlon) for vlat, vlon in h3_int.cell_to_boundary(cell))
