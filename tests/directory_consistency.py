"""The directory checked against the truth: the items in DirectoryTable are exactly what the accepted psychologists'
current candidatures imply (no ghost practice or profile, none missing, same contents), and the density counters
equal a recount of the practices listed. A reusable check for any scenario on tables of its own."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3


def _scan(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name="eu-west-3")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += page["Items"]
    return items


def expected_directory(app_table: str) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """(practice key -> listed practice, psychologist id -> profile) as the accepted candidatures imply."""
    from msp.candidatures.models import Status
    from msp.directory.listing import listing_items_for, profile_for
    from msp.storage.candidatures import _candidature_from_item

    practices: dict[tuple[str, str], Any] = {}
    profiles: dict[str, Any] = {}
    for item in _scan(app_table):
        if item["sk"]["S"] != "CANDIDATURE":
            continue
        candidature = _candidature_from_item(item)
        if candidature.status is not Status.ACCEPTED:
            continue
        for practice in listing_items_for(candidature.id, candidature.fields):
            practices[(practice.partition, practice.sort_key)] = practice
        profiles[candidature.id] = profile_for(candidature.id, candidature.fields)
    return practices, profiles


def assert_directory_consistent(app_table: str, directory_table: str) -> int:
    """Fails naming the ghosts, the missing and the differing items; returns the number of practices listed."""
    from msp.directory.listing import PublicProfile, density_cell
    from msp.storage.aws import from_item, without_keys
    from msp.storage.directory import DENSITY_PREFIX, PROFILE_PREFIX, practice_from_item

    expected_practices, expected_profiles = expected_directory(app_table)
    practices: dict[tuple[str, str], Any] = {}
    profiles: dict[str, Any] = {}
    counters: Counter[str] = Counter()
    for item in _scan(directory_table):
        pk = item["pk"]["S"]
        if pk.startswith(DENSITY_PREFIX):
            counters.update({cell: int(v["N"]) for cell, v in item.items() if "N" in v})
        elif pk.startswith(PROFILE_PREFIX):
            profiles[pk.removeprefix(PROFILE_PREFIX)] = PublicProfile.model_validate(without_keys(from_item(item)))
        else:
            practices[(pk, item["sk"]["S"])] = practice_from_item(pk, item)

    ghosts = sorted(set(practices) - set(expected_practices))
    missing = sorted(set(expected_practices) - set(practices))
    assert not ghosts, f"practices listed for no accepted candidature: {ghosts}"
    assert not missing, f"practices of accepted candidatures not listed: {missing}"
    differing = [key for key, practice in practices.items() if practice != expected_practices[key]]
    assert not differing, f"listed practices that differ from their candidature: {differing}"
    assert profiles == expected_profiles, "public profiles differ from the accepted candidatures"

    recount = Counter(density_cell(practice) for practice in practices.values())
    stored = Counter({cell: count for cell, count in counters.items() if count != 0})  # a zero is as good as none
    assert stored == recount, f"density counters {dict(stored)} differ from a recount {dict(recount)}"
    return len(practices)
