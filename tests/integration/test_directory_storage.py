"""The directory's DynamoDB adapter on DynamoDB Local: ranges, pagination, concurrent steps, exactness of
the search through it, and the density counters kept by the review transaction."""

from __future__ import annotations

import random
import uuid

import boto3
import pytest

from infra.components import REGION
from infra.provision import table_definition
from msp.directory.listing import density_cell, density_region
from msp.directory.search import SearchQuery, search_nearest
from tests.unit.directory_fakes import KEYS, all_pages, brute_force, listed

pytestmark = pytest.mark.integration


@pytest.fixture
def directory_table(stack):
    """A DirectoryTable of its own (same definition as the template's), dropped afterwards."""
    client = boto3.client("dynamodb", region_name=REGION)
    name = f"msp-test-directory-{uuid.uuid4().hex[:8]}"
    client.create_table(**table_definition(name, stack.template.tables["DirectoryTable"]))
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    client.delete_table(TableName=name)


def _put_all(table: str, practices) -> None:
    from msp.storage.aws import dynamodb_client, to_item
    from msp.storage.directory import directory_item

    for start in range(0, len(practices), 25):
        requests = [{"PutRequest": {"Item": to_item(directory_item(p))}} for p in practices[start : start + 25]]
        pending = {table: requests}
        while pending:
            pending = dynamodb_client().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def _scattered(count: int, seed: int) -> list:
    rng = random.Random(seed)
    centres = [(48.8566, 2.3522), (48.80, 2.45), (43.2965, 5.3698), (41.9192, 8.7386)]
    practices = []
    for n in range(count):
        lat, lon = rng.choice(centres)
        practices.append(
            listed(
                f"psy{n}-{rng.randint(1, 3)}",
                lat + rng.gauss(0, 0.05),
                lon + rng.gauss(0, 0.07),
                languages=rng.sample(["fr", "en", "ar"], rng.randint(1, 2)),
                publics=rng.sample(["enfants", "adolescents", "adultes"], rng.randint(1, 3)),
                teleconsultation=rng.random() < 0.5,
            )
        )
    return practices


def test_an_item_holds_exactly_the_listed_fields():
    from msp.directory.listing import LISTING_FIELDS, ListedPractice
    from msp.storage.aws import to_item
    from msp.storage.directory import directory_item, practice_from_item

    # The listing holds ListedPractice's fields after its keys but the practice id, in order: storage reads them
    # back by position.
    assert ("partition", "sort_key", LISTING_FIELDS[0], "practice_id", *LISTING_FIELDS[1:]) == ListedPractice._fields
    practice = listed("psy-7-2", 48.8566, 2.3522, first_name="Zoé", last_name="D'Arc", languages=("fr", "ar"))
    item = to_item(directory_item(practice))
    assert set(item) == {"pk", "sk", "listing"}
    assert practice_from_item(practice.partition, item) == practice


def test_a_range_is_read_across_pages_inclusively_and_in_key_order(directory_table):
    from msp.directory.cellkeys import KeyRange
    from msp.storage.directory import DirectoryStore

    practices = [listed(f"p{n:02d}-1", 48.8566 + n * 1e-4, 2.3522) for n in range(12)]
    _put_all(directory_table, practices)
    store = DirectoryStore(directory_table, page_size=3)
    partition = practices[0].partition
    keys = sorted(p.sort_key for p in practices if p.partition == partition)
    found = store.query_range(partition, keys[2], keys[-3])
    assert [p.sort_key for p in found] == keys[2:-2]
    assert found[0] == next(p for p in practices if p.sort_key == keys[2])
    both = store.query_ranges([KeyRange(partition, keys[0], keys[1]), KeyRange(partition, keys[-2], keys[-1])])
    assert [p.sort_key for p in both] == keys[:2] + keys[-2:]


def test_search_through_dynamodb_equals_a_brute_force_scan(directory_table):
    from msp.storage.directory import DirectoryStore

    practices = _scattered(400, seed=5)
    _put_all(directory_table, practices)
    store = DirectoryStore(directory_table, page_size=7)
    store.recount_density()
    rng = random.Random(9)
    for _ in range(25):
        anchor = rng.choice(practices)
        query = SearchQuery(
            lat=anchor.lat + rng.gauss(0, 0.02),
            lon=anchor.lon + rng.gauss(0, 0.02),
            radius_km=rng.choice([1, 5, 30, 100]),
            limit=rng.choice([1, 7, 20, 50]),
            language=rng.choice([None, None, "en"]),
            teleconsultation=rng.choice([None, None, True]),
        )
        expected = [practice_id for practice_id, _ in brute_force(practices, query)]
        pages = all_pages(store, query, max_pages=8)
        got = [r.practice_id for page in pages for r in page.results]
        assert got == (expected if pages[-1].next_cursor is None else expected[: len(got)])


def test_density_counters_are_rebuilt_from_the_stored_practices(directory_table):
    from msp.storage.directory import DirectoryStore

    practices = _scattered(150, seed=2)
    _put_all(directory_table, practices)
    store = DirectoryStore(directory_table)
    expected: dict[str, int] = {}
    for practice in practices:
        expected[density_cell(practice)] = expected.get(density_cell(practice), 0) + 1
    assert store.recount_density() == expected
    regions = {density_region(cell) for cell in expected}
    assert store.density_counts(sorted(regions)) == expected
    paris = store.density_per_km2(48.8566, 2.3522)
    nowhere = store.density_per_km2(45.0, 1.0)  # nothing listed within a region of it
    assert paris is not None and nowhere is not None and paris > 100 * nowhere
    page = search_nearest(store, SearchQuery(lat=48.8566, lon=2.3522, limit=5), cursor_keys=KEYS)
    assert len(page.results) == 5


def test_the_review_transaction_counts_practices_in_and_out(stack, make_candidature):
    from msp.candidatures.convention import decision_effects
    from msp.candidatures.models import AuditEvent, Status
    from msp.clock import now_iso
    from msp.directory import listing as directory
    from msp.storage.candidatures import candidature_store
    from msp.storage.directory import DirectoryStore

    store = DirectoryStore(stack.names.table("DirectoryTable"))
    candidature = make_candidature(status="in_review", department="13")
    (practice,) = directory.listing_items_for(candidature.id, candidature.fields)
    cell = density_cell(practice)
    regions = [directory.density_region(cell)]
    before = store.density_counts(regions).get(cell, 0)

    def move(current, status: Status):
        now = now_iso()
        moved = current.model_copy(update={"status": status, "version": current.version + 1, "updated_at": now})
        audit = AuditEvent(
            candidature_id=current.id,
            version=moved.version,
            actor="test",
            role="admin",
            action=status.value,
            from_status=current.status,
            to_status=status,
            at=now,
        )
        candidature_store().save(moved, previous=current, audit=audit, effects=decision_effects(current, moved))
        store._regions.clear()  # read again, not from the warm cache
        return moved

    accepted = move(candidature, Status.ACCEPTED)
    assert store.density_counts(regions)[cell] == before + 1
    assert store.profile(candidature.id).practices[0].practice_id == practice.practice_id
    move(accepted, Status.DECONVENTIONED)
    assert store.density_counts(regions)[cell] == before
    assert store.profile(candidature.id) is None
