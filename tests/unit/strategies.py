"""Hypothesis strategies for points where practices may lie: metropolitan France, Corsica and the DROM."""

from __future__ import annotations

from hypothesis import strategies as st

# (lat_min, lat_max, lon_min, lon_max), inside msp.geography's boxes.
METROPOLE = (41.4, 51.0, -4.8, 8.2)
AREAS = {
    "paris": (48.80, 48.91, 2.25, 2.42),
    "lozere": (44.2, 44.9, 3.0, 4.0),
    "corse": (41.4, 43.0, 8.55, 9.55),
    "guadeloupe": (15.85, 16.5, -61.8, -61.0),
    "martinique": (14.4, 14.9, -61.25, -60.8),
    "guyane": (2.1, 5.8, -54.6, -51.6),
    "reunion": (-21.4, -20.85, 55.2, 55.85),
    "mayotte": (-13.0, -12.6, 44.98, 45.3),
    "metropole": METROPOLE,
}


ALL_AREAS = tuple(AREAS.values())


@st.composite
def french_points(draw, areas=ALL_AREAS):
    lat_min, lat_max, lon_min, lon_max = draw(st.sampled_from(areas))
    return draw(st.floats(lat_min, lat_max)), draw(st.floats(lon_min, lon_max))
