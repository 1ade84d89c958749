"""The directory search as GeoJSON (RFC 7946), for map clients that ask for it with `Accept: application/geo+json`.

The same page as the JSON answer: each result becomes a Point feature, longitude first, with the result itself
as its properties, in the same order; the cursor of the next page is a foreign member of the collection.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from msp.directory.search import SearchPage, SearchResult

GEOJSON = "application/geo+json"
JSON = "application/json"
# The members with a fixed value ("type") are always sent: the answer's schema says so.
_ANSWER = ConfigDict(json_schema_serialization_defaults_required=True)


class PointGeometry(BaseModel):
    model_config = _ANSWER

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(description="Longitude, then latitude (RFC 7946)")


class PracticeFeature(BaseModel):
    model_config = _ANSWER

    type: Literal["Feature"] = "Feature"
    id: str = Field(description="The practice id")
    geometry: PointGeometry
    properties: SearchResult


class PracticeFeatureCollection(BaseModel):
    model_config = _ANSWER

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[PracticeFeature]
    next_cursor: str | None = Field(description="Foreign member: the next page's cursor, as in the JSON answer")


def _feature(result: SearchResult) -> PracticeFeature:
    fields = result.model_dump()  # SearchResult's fields are derived from ListedPractice's at import
    return PracticeFeature(
        id=fields["practice_id"], geometry=PointGeometry(coordinates=(fields["lon"], fields["lat"])), properties=result
    )


def feature_collection(page: SearchPage) -> PracticeFeatureCollection:
    return PracticeFeatureCollection(
        features=[_feature(result) for result in page.results], next_cursor=page.next_cursor
    )


def _ranges(accept: str) -> dict[str, float]:
    """Media ranges of an Accept header with their weights (a malformed weight counts as 0)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media:
            weights[media.lower()] = max(weight, weights.get(media.lower(), 0.0))
    return weights


def prefers_geojson(accept: str | None) -> bool:
    """Whether the client named GeoJSON and weighs it at least as much as JSON (wildcards give JSON)."""
    if not accept:
        return False
    weights = _ranges(accept)
    geojson = weights.get(GEOJSON, 0.0)
    json = weights.get(JSON, weights.get("application/*", weights.get("*/*", 0.0)))
    return geojson > 0 and geojson >= json
