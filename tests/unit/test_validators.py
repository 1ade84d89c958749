"""Validation of candidature fields with real-format examples."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.seed import demo_fields, rpps_with_key
from msp.candidatures.models import CandidatureFields, Identifier, Practice
from msp.geography import department_of_postcode, normalise_phone
from msp.identifiers import adeli_problem, luhn_is_valid, rpps_problem


def _errors(model, data) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [".".join(map(str, e["loc"])) + ": " + e["msg"] for e in caught.value.errors()]


@pytest.mark.parametrize("number", ["10001234565", rpps_with_key("8100000000"), rpps_with_key("1012345678")])
def test_rpps_with_valid_luhn_key_is_accepted(number):
    assert rpps_problem(number) is None
    assert Identifier(type="rpps", value=number).value == number


@pytest.mark.parametrize("number", ["10001234566", "10001234560", "10001234556"])
def test_rpps_with_wrong_key_is_refused_with_the_reason(number):
    assert not luhn_is_valid(number)
    assert "Luhn" in rpps_problem(number)


@pytest.mark.parametrize("number", ["1000123456", "100012345650", "1000123456A", ""])
def test_rpps_of_wrong_length_or_with_letters_is_refused(number):
    assert "11 digits" in rpps_problem(number)


@pytest.mark.parametrize("number", ["759312345", "2A9300001", "2b9300042", "979312345"])
def test_adeli_of_a_psychologist_is_accepted(number):
    assert Identifier(type="adeli", value=number).value == number.upper()


@pytest.mark.parametrize(
    ("number", "hint"),
    [
        ("751012345", "93"),  # profession code 10 is a physician, not a psychologist
        ("7593123", "9 characters"),
        ("2C9312345", "93"),
        ("75931234X", "93"),
    ],
)
def test_adeli_not_of_a_psychologist_is_refused(number, hint):
    assert hint in adeli_problem(number.upper())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+33612345678", "+33612345678"),
        ("06 12 34 56 78", "+33612345678"),
        ("01.23.45.67.89", "+33123456789"),
        ("0033612345678", "+33612345678"),
        ("0692 12 34 56", "+262692123456"),  # La Réunion mobile
        ("0590 12 34 56", "+590590123456"),  # Guadeloupe landline
        ("0696123456", "+596696123456"),  # Martinique mobile
        ("0694123456", "+594694123456"),  # Guyane mobile
        ("0639123456", "+262639123456"),  # Mayotte mobile
        ("+262262123456", "+262262123456"),
    ],
)
def test_french_and_overseas_phone_numbers_are_normalised(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["0012345678", "+4412345678", "612345678", "06123456789", "phone", "+33012345678"])
def test_non_french_phone_numbers_are_refused(raw):
    assert normalise_phone(raw) is None


@pytest.mark.parametrize(
    ("postcode", "departments"),
    [
        ("75004", {"75"}),
        ("20000", {"2A", "2B"}),
        ("20200", {"2A", "2B"}),
        ("97110", {"971"}),
        ("97600", {"976"}),
        ("01000", {"01"}),
        ("96000", set()),
        ("97800", set()),
        ("7500", set()),
    ],
)
def test_postcode_department(postcode, departments):
    assert department_of_postcode(postcode) == departments


def _practice(**overrides):
    practice = {
        "address": "1 place de la Mairie",
        "postcode": "75004",
        "city": "Paris",
        "department": "75",
        "lat": 48.8556,
        "lon": 2.3580,
    }
    return practice | overrides


@pytest.mark.parametrize(
    "practice",
    [
        _practice(),
        _practice(postcode="20000", city="Ajaccio", department="2A", lat=41.9192, lon=8.7386),
        _practice(postcode="20200", city="Bastia", department="2b", lat=42.6973, lon=9.4509),
        _practice(postcode="97110", city="Pointe-à-Pitre", department="971", lat=16.2411, lon=-61.5331),
        _practice(postcode="97200", city="Fort-de-France", department="972", lat=14.6161, lon=-61.0588),
        _practice(postcode="97300", city="Cayenne", department="973", lat=4.9224, lon=-52.3135),
        _practice(postcode="97400", city="Saint-Denis", department="974", lat=-20.8823, lon=55.4504),
        _practice(postcode="97600", city="Mamoudzou", department="976", lat=-12.7806, lon=45.2279),
    ],
)
def test_practices_in_metropole_corsica_and_drom_are_accepted(practice):
    assert Practice.model_validate(practice).department == practice["department"].upper()


@pytest.mark.parametrize(
    ("practice", "fragment"),
    [
        (_practice(lat=51.5072, lon=-0.1276), "lat/lon must lie in"),  # London
        (_practice(department="971"), "postcode 75004 is not in department 971"),
        (_practice(postcode="97110", department="971"), "do not lie in department 971"),  # Paris point
        (_practice(department="20"), "department code"),
        (_practice(postcode="7500A"), "pattern"),
        (_practice(lat=95), "less than or equal to 90"),
    ],
)
def test_inconsistent_practices_are_refused_with_a_clear_message(practice, fragment):
    assert any(fragment in error for error in _errors(Practice, practice))


def test_one_to_three_practices():
    fields = demo_fields(0)
    assert _errors(CandidatureFields, fields | {"practices": []})[0].startswith("practices")
    assert _errors(CandidatureFields, fields | {"practices": fields["practices"] * 4})[0].startswith("practices")
    assert len(CandidatureFields.model_validate(fields | {"practices": fields["practices"] * 3}).practices) == 3


def test_languages_must_be_iso_639_1_and_unique():
    fields = demo_fields(0)
    assert "ISO 639-1" in _errors(CandidatureFields, fields | {"languages": ["fr", "fra"]})[0]
    assert "once" in _errors(CandidatureFields, fields | {"languages": ["fr", "fr"]})[0]
    assert CandidatureFields.model_validate(fields | {"languages": ["fr", "ar", "wo"]}).languages == ["fr", "ar", "wo"]


def test_unknown_fields_publics_and_emails_are_refused_by_path():
    fields = demo_fields(0)
    assert _errors(CandidatureFields, fields | {"favourite_colour": "blue"})[0].startswith("favourite_colour")
    assert _errors(CandidatureFields, fields | {"publics": ["seniors"]})[0].startswith("publics.0")
    assert _errors(CandidatureFields, fields | {"email": "not-an-email"})[0].startswith("email")
    assert _errors(CandidatureFields, fields | {"website": "http://insecure.example.fr"})[0].startswith("website")
    assert _errors(CandidatureFields, fields | {"experience_years": "eight"})[0].startswith("experience_years")
    assert _errors(CandidatureFields, fields | {"last_name": "Martin42"})[0].startswith("last_name")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("nom@exemple.fr", "nom@exemple.fr"),
        ("Jean.Dupont@Cabinet-Psy.FR", "Jean.Dupont@cabinet-psy.fr"),  # the domain only is case-insensitive
        ("  prise.rdv+site@cabinet.co.uk ", "prise.rdv+site@cabinet.co.uk"),
        ("o'brien_{x}~=?^`|#$%&*/!@mail2.example.com", "o'brien_{x}~=?^`|#$%&*/!@mail2.example.com"),
        ("josé@école.fr", "josé@école.fr"),
        ("jose\u0301@e\u0301cole.fr", "josé@école.fr"),  # combining accents as one character (NFC)
        ("a@b.c", "a@b.c"),
        ("x" * 64 + "@exemple.fr", "x" * 64 + "@exemple.fr"),
    ],
)
def test_email_addresses_are_accepted_with_their_domain_in_lower_case(raw, expected):
    fields = CandidatureFields.model_validate({"email": raw, "public_email": raw})
    assert fields.email == fields.public_email == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("nom.exemple.fr", "single @"),
        ("@exemple.fr", "single @"),
        ("nom@", "domain name"),
        ("nom@@exemple.fr", "single @"),
        ("Jean Dupont <nom@exemple.fr>", "before the @"),
        ("jean dupont@exemple.fr", "before the @"),
        ("jean..dupont@exemple.fr", "single dots"),
        (".nom@exemple.fr", "single dots"),
        ("nom.@exemple.fr", "single dots"),
        ('"nom"@exemple.fr', "before the @"),
        ("x" * 65 + "@exemple.fr", "at most 64"),
        ("nom@exemple", "domain name"),
        ("nom@exemple..fr", "domain name"),
        ("nom@-exemple.fr", "domain name"),
        ("nom@exemple-.fr", "domain name"),
        ("nom@mon_cabinet.fr", "domain name"),
        ("nom@exemple.fr.", "domain name"),
        ("nom@10.0.0.1", "domain name"),
        ("nom@[10.0.0.1]", "domain name"),
        ("nom@" + "x" * 64 + ".fr", "domain name"),
        ("nom@localhost", "domain name"),
        ("nom@cabinet.local", "cabinet.local is a reserved name"),
        ("nom@mail.Example.TEST", "mail.example.test is a reserved name"),
        ("x" * 64 + "@" + ".".join(["y" * 60] * 4) + ".fr", "at most 254"),
    ],
)
def test_malformed_email_addresses_are_refused_by_path_with_what_to_fix(raw, fragment):
    for field in ("email", "public_email"):
        problems = _errors(CandidatureFields, {field: raw})
        assert len(problems) == 1 and problems[0].startswith(f"{field}: ") and fragment in problems[0], problems


def test_email_fields_are_documented_as_email_strings():
    properties = CandidatureFields.model_json_schema()["properties"]
    for field in ("email", "public_email"):
        assert {"type": "string", "format": "email"} in properties[field]["anyOf"]


def test_a_complete_candidature_misses_nothing_and_an_empty_draft_misses_every_required_field():
    assert CandidatureFields.model_validate(demo_fields(1)).missing_for_submission() == []
    missing = CandidatureFields().missing_for_submission()
    assert {"identifier", "practices", "diploma", "email"} <= set(missing)
    assert "website" not in missing
