"""The density hint: counters kept per res-7 cell by region, and the first guess of how far to read."""

from __future__ import annotations

import math
import random

import h3

from msp.candidatures.models import CandidatureFields
from msp.directory.listing import (
    DENSITY_REGION_RESOLUTION,
    DENSITY_RESOLUTION,
    PublicProfile,
    density_cell,
    density_changes,
    density_from_counts,
    density_region,
    density_regions_around,
    profile_for,
)

from .directory_fakes import listed
from .test_directory_listing import FIELDS


def _counts(practices) -> dict[str, int]:
    return {cell: n for region in density_changes(practices, 1).values() for cell, n in region.items()}


def test_changes_count_each_practice_once_in_its_region_and_cancel_out():
    practices = [listed(f"p{n}-1", 48.8566 + n * 1e-3, 2.3522) for n in range(5)]
    practices.append(listed("far-1", -12.78, 45.227))
    added, removed = density_changes(practices, 1), density_changes(practices, -1)
    assert sum(n for region in added.values() for n in region.values()) == 6
    for region, cells in added.items():
        assert h3.get_resolution(region) == DENSITY_REGION_RESOLUTION
        for cell, n in cells.items():
            assert h3.get_resolution(cell) == DENSITY_RESOLUTION and density_region(cell) == region
            assert removed[region][cell] == -n
    # from the fine cell, like the partition: a practice counts where the search looks for it
    for practice in practices:
        assert h3.cell_to_parent(density_cell(practice), 4) == practice.partition


def test_unknown_counters_give_no_hint_and_an_empty_neighbourhood_a_tiny_one():
    assert density_from_counts(None, 48.85, 2.35) is None
    empty = density_from_counts({}, 48.85, 2.35)
    assert empty is not None and 0 < empty < 1e-3


def test_the_hint_follows_the_local_density():
    rng = random.Random(4)
    centre = (48.8566, 2.3522)
    dense = [
        listed(f"d{n}-1", centre[0] + rng.uniform(-0.02, 0.02), centre[1] + rng.uniform(-0.03, 0.03))
        for n in range(600)
    ]  # ~600 practices on ~4.4 x 4.4 km: ~30 per km²
    village = [listed(f"v{n}-1", 44.5 + rng.uniform(-0.2, 0.2), 3.5 + rng.uniform(-0.3, 0.3)) for n in range(40)]
    counts = _counts(dense + village)
    in_town = density_from_counts(counts, *centre)
    in_country = density_from_counts(counts, 44.5, 3.5)
    assert 10 < in_town < 60
    assert 0.01 < in_country < 0.05  # 40 practices on ~44 x 48 km
    # the first step that hint implies holds about a page
    first_km = math.sqrt(21 / (math.pi * in_town))
    assert 0.3 < first_km < 1.0


def test_the_regions_read_cover_the_widest_disk_the_hint_looks_at():
    rng = random.Random(8)
    for _ in range(20):
        lat, lon = rng.uniform(42, 51), rng.uniform(-4, 8)
        regions = set(density_regions_around(lat, lon))
        centre = h3.latlng_to_cell(lat, lon, DENSITY_RESOLUTION)
        for cell in h3.grid_ring(centre, 12):
            assert density_region(cell) in regions


def test_the_profile_holds_the_listing_fields_and_nothing_private():
    profile = profile_for("cand-42", CandidatureFields.model_validate(FIELDS))
    assert isinstance(profile, PublicProfile)
    assert [p.practice_id for p in profile.practices] == ["cand-42-1", "cand-42-2"]
    assert profile.phone == "+33142000000" and profile.email is None
    text = profile.model_dump_json()
    for private in ("helene.legall@example.fr", "+33612345678", "10001234565", "Université Paris Cité"):
        assert private not in text
