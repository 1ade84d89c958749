"""What accepting a candidature lists, and what a search request may ask."""

from __future__ import annotations

import json

import h3
import pytest
from pydantic import ValidationError

from msp.candidatures.models import CandidatureFields
from msp.directory.cellkeys import COARSE_RESOLUTION, FINE_RESOLUTION
from msp.directory.listing import listing_items_for
from msp.directory.search import SearchQuery
from msp.errors import IncompleteCandidature

FIELDS = {
    "civility": "mme",
    "first_name": "Hélène",
    "last_name": "Le Gall",
    "email": "helene.legall@example.fr",
    "phone": "+33612345678",
    "identifier": {"type": "rpps", "value": "10001234565"},
    "diploma": {"university": "Université Paris Cité", "year": 2015},
    "experience_years": 8,
    "practices": [
        {"address": "10 rue de Rivoli", "postcode": "75004", "city": "Paris", "department": "75", "lat": 48.8556,
         "lon": 2.3580},
        {"address": "2 rue du Port", "postcode": "97600", "city": "Mamoudzou", "department": "976", "lat": -12.78,
         "lon": 45.227},
    ],
    "languages": ["fr", "en"],
    "publics": ["adultes", "adolescents"],
    "teleconsultation": True,
    "website": "https://cabinet-legall.example.fr",
    "public_phone": "01 42 00 00 00",
}  # fmt: skip


def test_one_item_per_practice_with_keys_from_the_fine_cell():
    items = listing_items_for("cand-42", CandidatureFields.model_validate(FIELDS))
    assert [item.practice_id for item in items] == ["cand-42-1", "cand-42-2"]
    for item, practice in zip(items, FIELDS["practices"], strict=True):
        fine = h3.latlng_to_cell(practice["lat"], practice["lon"], FINE_RESOLUTION)
        assert item.partition == h3.cell_to_parent(fine, COARSE_RESOLUTION)
        assert item.sort_key == f"{h3.str_to_int(fine):016x}#{item.practice_id}"
        assert (item.lat, item.lon, item.postcode, item.department) == (
            practice["lat"],
            practice["lon"],
            practice["postcode"],
            practice["department"],
        )
    assert items[0].psychologist_id == "cand-42"
    assert items[0].name == "Hélène Le Gall"
    assert {"helene", "le gall", "legall", "gall"} <= set(items[0].name_tokens)


def test_only_public_contact_details_are_listed():
    item = listing_items_for("cand-42", CandidatureFields.model_validate(FIELDS))[0]
    assert item.phone == "+33142000000"
    assert item.email is None  # no public email given: the identity email stays private
    assert item.website == "https://cabinet-legall.example.fr/"
    dumped = json.dumps(item._asdict())
    assert "+33612345678" not in dumped and "helene.legall@example.fr" not in dumped and "10001234565" not in dumped


def test_an_incomplete_candidature_cannot_be_listed():
    fields = CandidatureFields.model_validate({k: v for k, v in FIELDS.items() if k != "practices"})
    with pytest.raises(IncompleteCandidature) as refused:
        listing_items_for("cand-42", fields)
    assert refused.value.details == [{"field": "practices", "message": "required to list"}]


def test_search_defaults_and_query_string_values():
    query = SearchQuery.model_validate({"lat": "48.8566", "lon": "2.3522", "teleconsultation": "true"})
    assert (query.radius_km, query.limit, query.cursor, query.teleconsultation) == (10, 20, None, True)
    assert SearchQuery(lat=-21.1, lon=55.5, radius_km=100, limit=50).limit == 50  # La Réunion
    assert SearchQuery(lat=48.85, lon=2.35, language="EN").language == "en"


@pytest.mark.parametrize(
    "params",
    [
        {"lat": None},
        {"lon": None},
        {"lat": 40.4168, "lon": -3.7038},  # Madrid
        {"lat": 0, "lon": 0},
        {"lat": "nan", "lon": 2.35},
        {"lat": 48.85, "lon": "inf"},
        {"lat": 91, "lon": 2.35},
        {"radius_km": 0},
        {"radius_km": 100.01},
        {"radius_km": -1},
        {"limit": 0},
        {"limit": 51},
        {"limit": "ten"},
        {"public": "seniors"},
        {"language": "fra"},
        {"name": ""},
        {"name": " - ' "},
        {"name": "x" * 101},
        {"cursor": "x" * 1001},
        {"radius": 5},
        {"teleconsultation": "maybe"},
    ],
)
def test_bad_search_parameters_are_refused(params):
    with pytest.raises(ValidationError):
        SearchQuery.model_validate({"lat": 48.8566, "lon": 2.3522} | params)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(41.92, 8.74), (16.24, -61.53), (14.6, -61.06), (4.92, -52.31), (-20.88, 55.45), (-12.78, 45.23)],
)
def test_corsica_and_the_drom_can_be_searched(lat, lon):
    assert SearchQuery(lat=lat, lon=lon).lat == lat


def test_lat_and_lon_are_required():
    for params in ({"lon": 2.35}, {"lat": 48.85}, {}):
        with pytest.raises(ValidationError):
            SearchQuery.model_validate(params)


def test_a_practice_stored_in_the_format_of_november_2026_reads_back_field_for_field():
    """The stored listing is positional (LISTING_FIELDS, derived from ListedPractice): an item written before any
    change of the record must still read back as the same practice."""
    from msp.storage.directory import practice_from_item

    stored = {
        "sk": {"S": "8a1fb46622dffff#psy-1-1"},
        "listing": {
            "S": '["psy-1","Camille Martin",["camille","martin"],"10 rue de Rivoli","75004","Paris","75",'
            '48.8556,2.358,"+33612345678","cabinet@example.fr","https://cabinet.example.fr",["fr","en"],'
            '["adultes"],true]'
        },
    }
    practice = practice_from_item("841fb47ffffffff", stored)
    assert practice._asdict() == {
        "partition": "841fb47ffffffff",
        "sort_key": "8a1fb46622dffff#psy-1-1",
        "practice_id": "psy-1-1",
        "psychologist_id": "psy-1",
        "name": "Camille Martin",
        "name_tokens": ["camille", "martin"],
        "address": "10 rue de Rivoli",
        "postcode": "75004",
        "city": "Paris",
        "department": "75",
        "lat": 48.8556,
        "lon": 2.358,
        "phone": "+33612345678",
        "email": "cabinet@example.fr",
        "website": "https://cabinet.example.fr",
        "languages": ["fr", "en"],
        "publics": ["adultes"],
        "teleconsultation": True,
        # Written before availability existed: read back as taking new patients.
        "accepting_new_patients": True,
        "full_until": None,
    }
