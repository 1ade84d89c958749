"""GET /v1/places through the local gateway: public, cacheable, bounded, with clear errors."""

from __future__ import annotations

import pytest

PLACE_FIELDS = {"insee_code", "name", "department", "postcodes", "population", "lat", "lon"}


def test_a_commune_is_suggested_by_an_abbreviated_unaccented_name_without_a_token(api):
    response = api.call("GET", "/v1/places", params={"q": "st etienne"})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=86400"
    places = response.json()["places"]
    assert places[0]["name"] == "Saint-Étienne"
    assert places[0]["insee_code"] == "42218" and places[0]["department"] == "42"
    assert "42000" in places[0]["postcodes"]
    assert places[0]["lat"] == pytest.approx(45.44, abs=0.05) and places[0]["lon"] == pytest.approx(4.39, abs=0.05)
    assert all(set(place) == PLACE_FIELDS for place in places)
    assert len(places) == 10  # the default limit


def test_a_postcode_gives_its_arrondissement_then_its_city(api):
    places = api.call("GET", "/v1/places", params={"q": "69003", "limit": "2"}).json()["places"]
    assert [p["name"] for p in places] == ["Lyon 3e Arrondissement", "Lyon"]


def test_an_overseas_commune_resolves(api):
    (found,) = api.call("GET", "/v1/places", params={"q": "Mamoudzou", "limit": "1"}).json()["places"]
    assert found["department"] == "976"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": "7"}, "q"), ({"q": "x" * 101}, "q"), ({"q": "lyon", "limit": "21"}, "limit"), ({}, "q")],
)
def test_a_bad_query_is_a_422_naming_the_parameter_and_is_not_cached(api, params, field):
    response = api.call("GET", "/v1/places", params=params)
    assert response.status_code == 422
    assert response.headers["cache-control"] == "no-store"
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


def test_an_unknown_parameter_is_refused(api):
    response = api.call("GET", "/v1/places", params={"q": "lyon", "lat": "45"})
    assert response.status_code == 422
