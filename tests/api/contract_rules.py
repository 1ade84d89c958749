"""The rules the OpenAPI document states in words because JSON Schema cannot check them, applied to requests
generated from it: what a client developer reading the document would do before sending.

JSON Schema has no check digits, no rule across two fields and no "today"; the document says each of these in a
`description` (a NIR's key, a birth date agreeing with the NIR, a point inside France, a session date up to
today, an RPPS Luhn key, a cursor taken from the previous page, fields that go together, a date from today on).
`map_case`, a schemathesis hook, makes a generated case follow them and keeps everything else the generator chose:
the contract test then tells the API refusing what the document allows from the API refusing what the document
forbids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from schemathesis import GenerationMode

from infra.seed import rpps_with_key
from msp import geography
from msp.candidatures.models import RESERVED_DOMAINS
from msp.clock import programme_today
from msp.sessions import nir, policy


def _between(value: float, low: float, high: float, into: tuple[float, float]) -> float:
    """`value`, taken from [low, high], at the same relative place in `into`."""
    share = (value - low) / (high - low) if high > low else 0.5
    return into[0] + min(max(share, 0.0), 1.0) * (into[1] - into[0])


def _inside(area: str, lat: float, lon: float) -> tuple[float, float]:
    """The point moved into `area` ('metropole' or an overseas department), where the document asks for it."""
    if geography.area_of_point(lat, lon) == area:
        return lat, lon
    lat_min, lat_max, lon_min, lon_max = geography.METROPOLE if area == "metropole" else geography.OVERSEAS_AREAS[area]
    return (
        _between(lat, *geography.LATITUDES, into=(lat_min, lat_max)),
        _between(lon, *geography.LONGITUDES, into=(lon_min, lon_max)),
    )


def _in_france(lat: float, lon: float) -> tuple[float, float]:
    return (lat, lon) if geography.area_of_point(lat, lon) else _inside("metropole", lat, lon)


def _practice(practice: dict[str, Any]) -> None:
    """Its postcode in its department, its point in the department's area."""
    department = str(practice["department"]).upper()
    prefix = "20" if department in {"2A", "2B"} else department
    practice["postcode"] = prefix + str(practice["postcode"])[len(prefix) :]
    area = geography.expected_area(department)
    practice["lat"], practice["lon"] = _inside(area, float(practice["lat"]), float(practice["lon"]))


def _candidature_fields(body: Any) -> None:
    if not isinstance(body, dict):
        return
    identifier = body.get("identifier")
    if isinstance(identifier, dict):
        # The value's shape says which register it belongs to; an RPPS number ends with its Luhn key.
        value = str(identifier["value"])
        identifier["type"] = "rpps" if len(value) == 11 else "adeli"
        if identifier["type"] == "rpps":
            identifier["value"] = rpps_with_key(value[:10])
    diploma = body.get("diploma")
    if isinstance(diploma, dict):
        diploma["year"] = min(diploma["year"], programme_today().year)
    for practice in body.get("practices") or ():
        _practice(practice)
    for field in ("email", "public_email"):
        local, _, domain = str(body.get(field) or "").rpartition("@")
        if domain.rpartition(".")[2].lower() in RESERVED_DOMAINS:
            body[field] = f"{local}@{domain.rpartition('.')[0]}.fr"
    if body.get("full_until") is not None:
        body["accepting_new_patients"] = False


def _not_before_today(body: dict[str, Any], field: str) -> None:
    if body.get(field) is not None:
        body[field] = max(dt.date.fromisoformat(str(body[field])), programme_today()).isoformat()


def _transition(body: Any) -> None:
    if isinstance(body, dict):
        if body.get("action") != "deconvention":
            body.pop("effective_date", None)
        _not_before_today(body, "effective_date")


def _imported_convention(body: Any) -> None:
    if isinstance(body, dict):
        _candidature_fields(body)
        start, today = dt.date.fromisoformat(str(body["convention_start"])), programme_today()
        body["convention_start"] = _days_between(start, policy.default_rules()[0].valid_from, today).isoformat()


def _departments(case: Any) -> None:
    """A reviewer never assigned any is at version 0 (the one a client reads first); * goes alone."""
    case.headers["If-Match"] = "0"
    if isinstance(case.body, dict) and "*" in case.body["departments"] and len(set(case.body["departments"])) > 1:
        case.body["departments"] = [code for code in case.body["departments"] if code != "*"]


def _resignation(body: Any) -> None:
    if isinstance(body, dict):
        _not_before_today(body, "effective_date")


def _nir_for(raw: str, birth: dt.date) -> str:
    """The generated NIR with the birth date's year and month, and its key."""
    digits = nir.normalise(raw)
    month = f"{birth.month:02d}" if nir.has_calendar_month(digits) else digits[3:5]
    first_13 = f"{digits[0]}{birth.year % 100:02d}{month}{digits[5:13]}"
    return f"{first_13}{nir.control_key(first_13):02d}"


def _days_between(value: dt.date, first: dt.date, last: dt.date) -> dt.date:
    """`value` folded into [first, last], so different generated dates stay different."""
    return first + dt.timedelta(days=(value - first).days % ((last - first).days + 1))


def _patient(patient: dict[str, Any], latest_birth: dt.date) -> None:
    birth = dt.date.fromisoformat(str(patient["birth_date"]))
    birth = _days_between(birth, dt.date(1900, 1, 1), latest_birth)
    patient["birth_date"] = birth.isoformat()
    patient["nir"] = _nir_for(str(patient["nir"]), birth)


def _open_dates() -> tuple[dt.date, dt.date]:
    """Session dates a declaration may have: from the programme's start, in a year not closed yet, up to today."""
    today, start = programme_today(), policy.default_rules()[0].valid_from
    years = range(start.year, today.year + 1)
    first_open = min(year for year in years if policy.year_settings().closing_date(year) >= today)
    return max(start, dt.date(first_open, 1, 1)), today


def _declaration(body: Any) -> None:
    if not isinstance(body, dict):
        return
    date = _days_between(dt.date.fromisoformat(str(body["date"])), *_open_dates())
    body["date"] = date.isoformat()
    _patient(body["patient"], latest_birth=date.replace(year=date.year - 3, day=min(date.day, 28)))
    rule = policy.rule_for(date)
    if body.get("situation") not in rule.situation_codes:
        body["situation"] = None
    referral = body.get("referral")
    if rule.referral_required and not referral:
        referral = body["referral"] = {"prescriber_rpps": "1000000000", "date": date.isoformat()}
    if referral:
        referral["prescriber_rpps"] = rpps_with_key(str(referral["prescriber_rpps"])[:10])
        referral["date"] = min(dt.date.fromisoformat(str(referral["date"])), date).isoformat()


def _quota(query: dict[str, Any]) -> None:
    _patient(query, latest_birth=programme_today())
    if query.get("year") is not None:
        query["year"] = min(int(query["year"]), programme_today().year)


def _search(query: dict[str, Any]) -> None:
    query["lat"], query["lon"] = _in_france(float(query["lat"]), float(query["lon"]))
    query.pop("cursor", None)


def _first_page(query: dict[str, Any]) -> None:
    """A page after the first takes the cursor of the page before: a generated one is left out."""
    query.pop("cursor", None)


_ON_BODY: dict[tuple[str, str], Callable[[Any], None]] = {
    ("POST", "/v1/sessions/quota"): lambda body: _quota(body) if isinstance(body, dict) else None,
    ("POST", "/v1/candidatures"): _candidature_fields,
    ("PATCH", "/v1/candidatures/{candidature_id}"): _candidature_fields,
    ("POST", "/v1/sessions"): _declaration,
    ("POST", "/v1/candidatures/{candidature_id}/transitions"): _transition,
    ("PATCH", "/v1/me/listing"): _candidature_fields,
    ("POST", "/v1/convention/resign"): _resignation,
    ("POST", "/v1/admin/conventions"): _imported_convention,
}
_ON_QUERY: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("GET", "/v1/admin/psychologists/{psychologist_sub}/access-journal"): _first_page,
    ("GET", "/v1/psychologists/search"): _search,
    ("GET", "/v1/review/candidatures"): _first_page,
    ("GET", "/v1/sessions"): _first_page,
}


def _one_key_per_body(case: Any) -> None:
    """An Idempotency-Key is "unique per intended creation": sent again only with the same body."""
    body = json.dumps(case.body, sort_keys=True, default=str).encode()
    case.headers["Idempotency-Key"] = f"{case.headers['Idempotency-Key'][:100]}.{hashlib.sha256(body).hexdigest()[:16]}"


def map_case(context: Any, case: Any) -> Any:
    """A schemathesis hook: a case generated to be valid, following the rules its operation documents in words
    (a case generated to be invalid is left as it is)."""
    if case.meta is not None and case.meta.generation.mode is not GenerationMode.POSITIVE:
        return case
    key = (case.operation.method.upper(), case.operation.path)
    if key in _ON_BODY:
        _ON_BODY[key](case.body)
    if key in _ON_QUERY and case.query:
        _ON_QUERY[key](case.query)
    if "Idempotency-Key" in (case.headers or {}):
        _one_key_per_body(case)
    if key == ("PUT", "/v1/admin/reviewers/{reviewer_sub}/departments"):
        _departments(case)
    return case
