"""The public directory through the local gateway, on DynamoDB Local: psychologists are listed by the real
review flow (create, upload, submit, start_review, accept) and searched, paged, filtered and unlisted.

Each test lists its practices around its own point in Lozère, tens of kilometres from the others and
from every other test's data, and searches within a few kilometres of it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
import uuid

import pytest

from infra.seed import review, submit_with_documents
from msp.clock import utc_now
from msp.cursors import SEARCH_CURSOR_LIFETIME, CursorKeys, seal
from msp.directory.search import SearchQuery
from msp.directory.spherical import haversine_km
from msp.storage.directory_cache import PUBLIC_MAX_AGE, cached_directory_store

RESULT_FIELDS = {
    "psychologist_id",
    "practice_id",
    "name",
    "distance_km",
    "address",
    "postcode",
    "city",
    "department",
    "lat",
    "lon",
    "phone",
    "email",
    "website",
    "languages",
    "publics",
    "teleconsultation",
    "accepting_new_patients",
}
PUBLIC_CACHE = "public, max-age=60"


def _near(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
    return lat + north_km / 111.2, lon + east_km / (111.2 * math.cos(math.radians(lat)))


def _practice(lat: float, lon: float, number: int = 1) -> dict:
    return {
        "address": f"{number} rue de l'Exemple",
        "postcode": "48000",
        "city": "Mende",
        "department": "48",
        "lat": round(lat, 6),
        "lon": round(lon, 6),
    }


@pytest.fixture
def listed(api, stack, unique_fields):
    """list(points, **fields) -> (psychologist id, fields): a psychologist accepted through the API, with a
    practice at each point, private identity details of their own and public contact details."""
    admin = api.token("admin", sub="directory-admin")

    def make(points: list[tuple[float, float]], **overrides) -> tuple[str, dict]:
        tag = uuid.uuid4().hex[:8]
        defaults = {
            "practices": [_practice(lat, lon, n) for n, (lat, lon) in enumerate(points, start=1)],
            "email": f"prive.{tag}@example.fr",
            "phone": "+33699887766",
            "public_email": f"cabinet.{tag}@example.fr",
            "public_phone": "+33142000000",
        }
        fields = unique_fields(**(defaults | overrides))
        token = api.token("psychologist", sub=f"psy-directory-{tag}")
        created = api.create_candidature(token, fields)
        assert created.status_code == 201, created.text
        candidature_id = created.json()["id"]
        submit_with_documents(api, stack, token, candidature_id)
        review(api, admin, candidature_id, ["start_review", "accept"])
        return candidature_id, fields

    return make


def _search(api, **params):
    return api.call("GET", "/v1/psychologists/search", params={k: str(v) for k, v in params.items()})


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [result["practice_id"] for result in response.json()["results"]]


def _assert_no_private_field(text: str, fields: dict) -> None:
    for private in (fields["email"], fields["phone"], fields["identifier"]["value"], fields["diploma"]["university"]):
        assert private not in text
    for name in ("identifier", "diploma", "civility", "experience_years", "owner_sub", "documents", "status"):
        assert f'"{name}"' not in text


def test_accepted_practices_are_found_nearest_first_with_public_fields_only(api, listed):
    centre = (44.45, 3.30)
    one, one_fields = listed([_near(*centre, 1.0, 0), _near(*centre, 0, 6.0)])  # two practices
    two, _ = listed([_near(*centre, 0, -0.4)])
    three, _ = listed([_near(*centre, 2.5, 2.5)])

    response = _search(api, lat=centre[0], lon=centre[1], radius_km=5)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == PUBLIC_CACHE
    body = response.json()
    assert set(body) == {"results", "next_cursor"} and body["next_cursor"] is None
    assert [r["practice_id"] for r in body["results"]] == [f"{two}-1", f"{one}-1", f"{three}-1"]
    distances = [r["distance_km"] for r in body["results"]]
    assert distances == sorted(distances)
    for result in body["results"]:
        assert set(result) == RESULT_FIELDS
        assert math.isclose(result["distance_km"], haversine_km(*centre, result["lat"], result["lon"]), abs_tol=1e-3)
    first = body["results"][1]
    assert first["psychologist_id"] == one
    assert first["email"] == one_fields["public_email"] and first["phone"] == one_fields["public_phone"]
    assert first["name"] == f"{one_fields['first_name']} {one_fields['last_name']}"
    _assert_no_private_field(response.text, one_fields)

    wider = _search(api, lat=centre[0], lon=centre[1], radius_km=10)
    assert _ids(wider) == [f"{two}-1", f"{one}-1", f"{three}-1", f"{one}-2"]

    profile = api.call("GET", f"/v1/psychologists/{one}")
    assert profile.status_code == 200, profile.text
    assert profile.headers["cache-control"] == PUBLIC_CACHE
    document = profile.json()
    assert document["psychologist_id"] == one
    assert [p["practice_id"] for p in document["practices"]] == [f"{one}-1", f"{one}-2"]
    assert document["email"] == one_fields["public_email"]
    assert set(document) == {
        "psychologist_id",
        "name",
        "phone",
        "email",
        "website",
        "languages",
        "publics",
        "teleconsultation",
        "practices",
        "accepting_new_patients",
        "full_until",
    }
    _assert_no_private_field(profile.text, one_fields)


def test_deconvention_removes_the_psychologist_from_search_and_profile(api, listed):
    centre = (44.70, 3.60)
    staying, _ = listed([_near(*centre, 0.5, 0.5)])
    leaving, _ = listed([_near(*centre, 0.2, 0)])
    assert _ids(_search(api, lat=centre[0], lon=centre[1], radius_km=3)) == [f"{leaving}-1", f"{staying}-1"]
    assert api.call("GET", f"/v1/psychologists/{leaving}").status_code == 200

    admin = api.token("admin", sub="directory-admin")
    review(api, admin, leaving, [("deconvention", "Cessation d'activité.")])

    # The profile is read through: gone at once.
    gone = api.call("GET", f"/v1/psychologists/{leaving}")
    assert gone.status_code == 404, gone.text
    assert gone.json()["error"]["code"] == "not_found"
    assert "public" not in gone.headers.get("cache-control", "")
    # The search's cache may keep it for up to the public max-age (the contract), and no longer.
    search_store = cached_directory_store()
    search_store.clock = lambda: time.monotonic() + PUBLIC_MAX_AGE
    assert _ids(_search(api, lat=centre[0], lon=centre[1], radius_km=3)) == [f"{staying}-1"]


def test_filters_by_public_teleconsultation_language_and_name(api, listed):
    centre = (44.25, 3.60)
    helene, _ = listed(
        [_near(*centre, 0.3, 0)],
        first_name="Hélène",
        last_name="Le Gall",
        languages=["fr", "es"],
        publics=["enfants"],
        teleconsultation=True,
    )
    jean, _ = listed(
        [_near(*centre, 0.6, 0)],
        first_name="Jean-Pierre",
        last_name="Dupré",
        languages=["fr", "en"],
        publics=["adultes", "adolescents"],
        teleconsultation=False,
    )
    at = {"lat": centre[0], "lon": centre[1], "radius_km": 2}
    assert _ids(_search(api, **at)) == [f"{helene}-1", f"{jean}-1"]
    assert _ids(_search(api, **at, public="enfants")) == [f"{helene}-1"]
    assert _ids(_search(api, **at, public="adolescents")) == [f"{jean}-1"]
    assert _ids(_search(api, **at, teleconsultation="true")) == [f"{helene}-1"]
    assert _ids(_search(api, **at, teleconsultation="false")) == [f"{jean}-1"]
    assert _ids(_search(api, **at, language="EN")) == [f"{jean}-1"]
    assert _ids(_search(api, **at, language="de")) == []
    assert _ids(_search(api, **at, name="helene")) == [f"{helene}-1"]
    assert _ids(_search(api, **at, name="GALL")) == [f"{helene}-1"]
    assert _ids(_search(api, **at, name="jean-p")) == [f"{jean}-1"]
    assert _ids(_search(api, **at, name="dupre", language="fr", public="adultes")) == [f"{jean}-1"]


def test_cursors_page_through_the_whole_sequence_and_refuse_tampering(api, listed):
    centre = (44.50, 3.90)
    ids = []
    for step in range(5):
        psychologist, _ = listed([_near(*centre, 0.3 * (step + 1), 0)])
        ids.append(f"{psychologist}-1")
    at = {"lat": centre[0], "lon": centre[1], "radius_km": 4}
    assert _ids(_search(api, **at, limit=50)) == ids

    seen, cursor, pages = [], None, 0
    while True:
        response = _search(api, **at, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += _ids(response)
        pages += 1
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 3

    first = _search(api, **at, limit=2).json()["next_cursor"]
    payload, mac = first.split(".")
    for forged in (f"{payload}A.{mac}", f"{payload}.{mac[:-2]}", "not-a-cursor"):
        refused = _search(api, **at, limit=2, cursor=forged)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "invalid_cursor"
    elsewhere = _search(api, **{**at, "radius_km": 5}, limit=2, cursor=first)
    assert elsewhere.status_code == 400 and elsewhere.json()["error"]["code"] == "invalid_cursor"


def test_an_expired_cursor_asks_for_the_first_page_again(api, listed):
    centre = (44.70, 4.10)
    first, _ = listed([_near(*centre, 0.3, 0)])
    at = {"lat": centre[0], "lon": centre[1], "radius_km": 4}
    # Sealed as the search function does, with the stack's own key: only its age differs between the two.
    keys = CursorKeys.from_secret(os.environ["SEARCH_CURSOR_DEV_SECRET"])
    context = SearchQuery(**at).fingerprint()
    position = {"d": (0.0).hex(), "id": ""}

    def sealed(age: dt.timedelta) -> str:
        return seal(position, context=context, keys=keys, lifetime=SEARCH_CURSOR_LIFETIME, now=utc_now() - age)

    assert _ids(_search(api, **at, cursor=sealed(SEARCH_CURSOR_LIFETIME - dt.timedelta(minutes=1)))) == [f"{first}-1"]
    refused = _search(api, **at, cursor=sealed(SEARCH_CURSOR_LIFETIME))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_cursor"
    assert refused.json()["error"]["message"] == "The cursor has expired: ask for the first page again."


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": "3.5"}, "lat"),
        ({"lat": "44.5"}, "lon"),
        ({"lat": "north", "lon": "3.5"}, "lat"),
        ({"lat": "51.5", "lon": "-0.12"}, "lon"),  # London: outside France
        ({"lat": "44.5", "lon": "3.5", "radius_km": "101"}, "radius_km"),
        ({"lat": "44.5", "lon": "3.5", "radius_km": "0"}, "radius_km"),
        ({"lat": "44.5", "lon": "3.5", "limit": "51"}, "limit"),
        ({"lat": "44.5", "lon": "3.5", "limit": "0"}, "limit"),
        ({"lat": "44.5", "lon": "3.5", "public": "seniors"}, "public"),
        ({"lat": "44.5", "lon": "3.5", "language": "french"}, "language"),
        ({"lat": "44.5", "lon": "3.5", "teleconsultation": "maybe"}, "teleconsultation"),
        ({"lat": "44.5", "lon": "3.5", "name": "---"}, "name"),
        ({"lat": "44.5", "lon": "3.5", "page": "2"}, "page"),
    ],
)
def test_invalid_query_parameters_get_422_naming_the_parameter(api, params, field):
    response = api.call("GET", "/v1/psychologists/search", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [detail["field"] for detail in error["details"]]
    assert "public" not in response.headers.get("cache-control", "")


@pytest.mark.parametrize("psychologist_id", [str(uuid.uuid4()), "x" * 200, "DENSITY", "..%2F..%2Fv1"])
def test_an_unknown_psychologist_is_404(api, psychologist_id):
    response = api.call("GET", f"/v1/psychologists/{psychologist_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_candidature_not_accepted_has_no_public_profile(api, make_candidature):
    for status in ("submitted", "in_review", "rejected"):
        candidature = make_candidature(status=status, department="13")
        assert api.call("GET", f"/v1/psychologists/{candidature.id}").status_code == 404


def test_a_psychologist_without_public_contact_details_is_listed_without_them(api, listed):
    centre = (44.85, 3.25)
    quiet, fields = listed([_near(*centre, 0.1, 0.1)], public_email=None, public_phone=None, website=None)
    (result,) = _search(api, lat=centre[0], lon=centre[1], radius_km=1).json()["results"]
    assert (result["psychologist_id"], result["email"], result["phone"], result["website"]) == (quiet, None, None, None)
    profile = api.call("GET", f"/v1/psychologists/{quiet}")
    assert profile.status_code == 200, profile.text
    assert (profile.json()["email"], profile.json()["phone"], profile.json()["website"]) == (None, None, None)
    _assert_no_private_field(profile.text, fields)


def test_the_geojson_answer_is_the_json_answer_point_for_point_page_for_page(api, listed):
    centre = (44.15, 3.95)
    for step in range(5):
        listed([_near(*centre, 0.25 * (step + 1), 0.1 * step)], teleconsultation=step % 2 == 0)
    at = {"lat": centre[0], "lon": centre[1], "radius_km": 3, "limit": 2}
    geojson = {"Accept": "application/geo+json"}

    json_pages, geojson_pages = [], []
    json_cursor = geojson_cursor = None
    while True:
        as_json = api.call(
            "GET", "/v1/psychologists/search", params=at | ({"cursor": json_cursor} if json_cursor else {})
        )
        as_geojson = api.call(
            "GET",
            "/v1/psychologists/search",
            params=at | ({"cursor": geojson_cursor} if geojson_cursor else {}),
            headers=geojson,
        )
        assert as_json.status_code == as_geojson.status_code == 200, as_geojson.text
        assert as_json.headers["content-type"] == "application/json"
        assert as_geojson.headers["content-type"] == "application/geo+json"
        for answer in (as_json, as_geojson):
            assert answer.headers["cache-control"] == PUBLIC_CACHE
            assert answer.headers["vary"] == "Accept"
        json_pages.append(as_json.json())
        geojson_pages.append(as_geojson.json())
        json_cursor, geojson_cursor = json_pages[-1]["next_cursor"], geojson_pages[-1]["next_cursor"]
        assert (json_cursor is None) == (geojson_cursor is None)
        if json_cursor is None:
            break

    assert len(json_pages) == 3
    for page, collection in zip(json_pages, geojson_pages, strict=True):
        assert collection["type"] == "FeatureCollection"
        assert len(collection["features"]) == len(page["results"])
        for result, feature in zip(page["results"], collection["features"], strict=True):
            assert feature["type"] == "Feature" and feature["id"] == result["practice_id"]
            # RFC 7946: longitude first.
            assert feature["geometry"] == {"type": "Point", "coordinates": [result["lon"], result["lat"]]}
            assert feature["properties"] == result
    # A GeoJSON cursor pages the JSON answer too: the same sequence, whatever the representation.
    crossed = _search(api, **at, cursor=geojson_pages[0]["next_cursor"])
    assert crossed.json()["results"] == json_pages[1]["results"]


def test_json_stays_the_answer_unless_geojson_is_asked_for_first(api):
    at = {"lat": "44.15", "lon": "3.95", "radius_km": "1"}
    for accept, expected in [
        ("*/*", "application/json"),
        ("application/json, application/geo+json;q=0.5", "application/json"),
        ("application/geo+json, application/json;q=0.9", "application/geo+json"),
        ("application/geo+json", "application/geo+json"),
    ]:
        response = api.call("GET", "/v1/psychologists/search", params=at, headers={"Accept": accept})
        assert response.headers["content-type"] == expected, accept
    # Errors stay JSON error documents.
    bad = api.call(
        "GET", "/v1/psychologists/search", params={"lat": "0", "lon": "0"}, headers={"Accept": "application/geo+json"}
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/json"
