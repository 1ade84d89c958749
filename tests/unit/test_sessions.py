import datetime as dt
import hashlib
import hmac
import json
import uuid

import pytest
from pydantic import SecretStr, ValidationError

from msp.clock import programme_today
from msp.errors import InvalidFields, YearClosed
from msp.http_errors import answer_for
from msp.sessions import nir, policy
from msp.sessions.rules import (
    DeclaredSession,
    PatientKeyring,
    QuotaQuery,
    QuotaStatus,
    SessionDeclaration,
    age_on,
    check_declaration,
    check_quota_query,
    idempotency_fingerprint,
    patient_key,
    quota_exhausted,
    session_id_for,
)

NIR = "290057505612384"  # the contract example: born 1990-05
FULL_PRICE_2026 = {"price": "50.00", "amo": "30.00", "amc": "20.00", "state": "0.00", "patient_advance": "50.00"}
REFERRAL = {"prescriber_rpps": "10000000009", "date": "2023-01-05"}  # an invented, Luhn-valid RPPS number
SECRET = b"s" * 32
TODAY = dt.date(2026, 11, 20)


def make_nir(birth: dt.date, month_code: str | None = None, place: str = "75056") -> str:
    first_13 = f"2{birth.year % 100:02d}{month_code or f'{birth.month:02d}'}{place}123"
    return f"{first_13}{nir.control_key(first_13):02d}"


def declaration(**changes) -> SessionDeclaration:
    body = {
        "patient": {"nir": NIR, "birth_date": "1990-05-14"},
        "date": "2026-11-20",
        "situation": None,
    }
    return SessionDeclaration.model_validate(body | changes)


def for_patient(birth: dt.date, session_date: dt.date, number: str | None = None, **changes) -> SessionDeclaration:
    patient = {"nir": number or make_nir(birth), "birth_date": birth.isoformat()}
    return declaration(patient=patient, date=session_date.isoformat(), **changes)


def refusal(a_declaration: SessionDeclaration, today: dt.date = TODAY) -> list[dict]:
    with pytest.raises(InvalidFields) as raised:
        check_declaration(a_declaration, today)
    assert answer_for(raised.value).status == 422
    return raised.value.details


def fields_of(details: list[dict]) -> list[str]:
    return [detail["field"] for detail in details]


# --- the input model


def test_contract_example_is_accepted():
    checked = check_declaration(declaration(), TODAY)
    assert checked.year == 2026
    assert checked.rule.sessions_per_year == 12
    assert checked.situation.code is None


def test_nir_is_normalised():
    typed = declaration(patient={"nir": " 2 90 05 75 056 123 84 ", "birth_date": "1990-05-14"})
    assert typed.patient.nir.get_secret_value() == NIR


def test_corsican_nir_in_lowercase_is_accepted():
    born = dt.date(1985, 5, 2)
    number = make_nir(born, place="2A004").lower()
    assert check_declaration(for_patient(born, TODAY, number), TODAY).year == 2026


@pytest.mark.parametrize(
    ("body_change", "location"),
    [
        ({"psychologist": "someone"}, ("psychologist",)),
        ({"patient": {"nir": NIR, "birth_date": "1990-05-14", "name": "Camille"}}, ("patient", "name")),
        ({"patient": {"nir": "290057505612385", "birth_date": "1990-05-14"}}, ("patient", "nir")),
        ({"patient": {"nir": NIR}}, ("patient", "birth_date")),
        ({"first_session": False}, ("first_session",)),
        ({"tiers_payant_reason": "css"}, ("tiers_payant_reason",)),
        ({"situation": "x" * 41}, ("situation",)),
        ({"referral": {"prescriber_rpps": "10000000008", "date": "2023-01-05"}}, ("referral", "prescriber_rpps")),
        ({"referral": {"prescriber_rpps": "1000000000", "date": "2023-01-05"}}, ("referral", "prescriber_rpps")),
        ({"referral": {"prescriber_rpps": "10000000009"}}, ("referral", "date")),
        ({"referral": REFERRAL | {"diagnosis": "..."}}, ("referral", "diagnosis")),
        ({"date": "20/11/2026"}, ("date",)),
    ],
)
def test_malformed_bodies_are_refused_at_the_right_field(body_change, location):
    with pytest.raises(ValidationError) as raised:
        declaration(**body_change)
    assert [problem["loc"] for problem in raised.value.errors()] == [location]


def test_situation_and_referral_may_be_left_out():
    body = {"patient": {"nir": NIR, "birth_date": "1990-05-14"}, "date": "2026-11-20"}
    parsed = SessionDeclaration.model_validate(body)
    assert parsed.situation is None
    assert parsed.referral is None


def test_sending_the_first_session_flag_is_refused_naming_it():
    """The server decides the kind: a client that still sends the flag is told to remove it."""
    with pytest.raises(ValidationError) as raised:
        declaration(first_session=True)
    assert raised.value.errors()[0]["loc"] == ("first_session",)
    assert raised.value.errors()[0]["type"] == "extra_forbidden"


def test_the_nir_never_shows_in_repr_or_dumps():
    parsed = declaration()
    for shown in (repr(parsed), str(parsed), parsed.model_dump_json(), json.dumps(parsed.model_dump(mode="json"))):
        assert NIR not in shown


@pytest.mark.parametrize(
    "patient",
    [
        {"nir": "290057505612385", "birth_date": "1990-05-14"},
        {"nir": NIR, "birth_date": "not a date"},
        {"nir": NIR},
        {"nir": NIR, "birth_date": "1990-05-14", "extra": True},
        NIR,
    ],
)
def test_validation_errors_never_carry_the_nir(patient):
    with pytest.raises(ValidationError) as raised:
        declaration(patient=patient)
    error = raised.value
    captured = " ".join([str(error), repr(error), error.json(), repr(error.errors())])
    assert NIR[:13] not in captured
    assert error.__cause__ is None
    assert error.__context__ is None or NIR[:13] not in str(error.__context__)


# --- checking a declaration against today and the policy


def test_a_session_today_is_accepted_tomorrow_is_refused():
    assert check_declaration(declaration(date=TODAY.isoformat()), TODAY).year == 2026
    details = refusal(declaration(date="2026-11-21"))
    assert details == [{"field": "date", "message": "declare a session once it has taken place"}]


def test_patient_turning_3_on_the_session_date_is_accepted():
    born = dt.date(2023, 11, 20)
    assert check_declaration(for_patient(born, TODAY), TODAY).year == 2026


def test_patient_aged_2_is_refused():
    born = dt.date(2023, 11, 21)
    details = refusal(for_patient(born, TODAY))
    assert details == [{"field": "patient.birth_date", "message": "the patient must be 3 or older on the session date"}]


def test_birth_after_the_session_is_refused():
    born = dt.date(2026, 11, 20)
    details = refusal(for_patient(born, dt.date(2026, 11, 1)))
    assert fields_of(details) == ["patient.birth_date"]
    assert "after the session" in details[0]["message"]


def test_age_of_someone_born_on_29_february():
    born = dt.date(2020, 2, 29)
    assert age_on(born, dt.date(2023, 2, 28)) == 2
    assert age_on(born, dt.date(2023, 3, 1)) == 3
    assert age_on(born, dt.date(2024, 2, 29)) == 4


def test_birth_year_inconsistent_with_the_nir_is_refused():
    details = refusal(declaration(patient={"nir": NIR, "birth_date": "1991-05-14"}))
    assert fields_of(details) == ["patient.birth_date"]
    assert "year" in details[0]["message"]


def test_birth_month_inconsistent_with_the_nir_is_refused():
    details = refusal(declaration(patient={"nir": NIR, "birth_date": "1990-06-14"}))
    assert fields_of(details) == ["patient.birth_date"]
    assert "month" in details[0]["message"]


def test_nir_without_a_birth_month_matches_any_month():
    born = dt.date(1990, 9, 3)
    number = make_nir(born, month_code="20")
    assert check_declaration(for_patient(born, TODAY, number), TODAY).year == 2026


def test_session_before_the_programme_is_refused():
    details = refusal(declaration(date="2022-04-04"))
    assert details == [{"field": "date", "message": "sessions are reimbursed from 2022-04-05 on"}]


def test_a_session_of_2023_without_a_referral_is_refused_naming_the_referral():
    """The issue's third example."""
    details = refusal(declaration(date="2023-05-02"))
    assert fields_of(details) == ["referral"]
    assert "2024-06-15" in details[0]["message"]


@pytest.mark.parametrize(("day", "needed"), [("2024-06-14", True), ("2024-06-15", False), ("2022-04-05", True)])
def test_the_referral_is_required_until_2024_06_14_only(day, needed):
    today = dt.date.fromisoformat(day)
    if needed:
        assert fields_of(refusal(declaration(date=day), today)) == ["referral"]
        referral = REFERRAL | {"date": day}
        assert check_declaration(declaration(date=day, referral=referral), today).rule.referral_required
    else:
        assert not check_declaration(declaration(date=day), today).rule.referral_required


def test_a_referral_given_after_2024_06_15_is_accepted():
    checked = check_declaration(declaration(referral=REFERRAL), TODAY)
    assert checked.rule.valid_from == dt.date(2024, 6, 15)


@pytest.mark.parametrize(("letter", "accepted"), [("2023-05-02", True), ("2023-05-01", True), ("2023-05-03", False)])
def test_the_referral_letter_dates_from_the_session_day_or_before(letter, accepted):
    body = declaration(date="2023-05-02", referral=REFERRAL | {"date": letter})
    if accepted:
        assert check_declaration(body, dt.date(2023, 5, 3)).year == 2023
    else:
        assert fields_of(refusal(body, dt.date(2023, 5, 3))) == ["referral.date"]


def test_2024_06_14_and_2024_06_15_declarations_follow_different_rules():
    before = check_declaration(declaration(date="2024-06-14", referral=REFERRAL), dt.date(2024, 6, 15))
    after = check_declaration(declaration(date="2024-06-15"), dt.date(2024, 6, 15))
    assert (before.rule.sessions_per_year, str(before.rule.prices.follow_up)) == (8, "30.00")
    assert (after.rule.sessions_per_year, str(after.rule.prices.follow_up)) == (12, "50.00")


@pytest.mark.parametrize("situation", [None, "css", "ame", "ald", "maternite", "at_mp", "accident_tiers"])
def test_every_situation_of_the_issue_is_accepted(situation):
    assert check_declaration(declaration(situation=situation), TODAY).situation.code == situation


@pytest.mark.parametrize("situation", ["friend", "accident_travail", "CSS"])
def test_unknown_situations_are_refused(situation):
    details = refusal(declaration(situation=situation))
    assert fields_of(details) == ["situation"]
    assert "css" in details[0]["message"] and "accident_tiers" in details[0]["message"]


def test_every_problem_is_reported_at_once():
    body = declaration(patient={"nir": NIR, "birth_date": "1991-05-14"}, date="2023-12-01", situation="friend")
    assert fields_of(refusal(body, dt.date(2023, 11, 20))) == ["date", "patient.birth_date", "referral", "situation"]


# --- the year's closing date


@pytest.mark.parametrize(
    ("today", "closed"),
    [("2025-03-31", False), ("2025-04-01", True), ("2026-11-20", True), ("2024-12-31", False)],
)
def test_a_year_takes_declarations_until_31_march_of_the_next(today, closed):
    body = declaration(date="2024-12-20")
    if closed:
        with pytest.raises(YearClosed) as raised:
            check_declaration(body, dt.date.fromisoformat(today))
        assert (answer_for(raised.value).status, answer_for(raised.value).code) == (409, "year_closed")
        assert raised.value.details == [{"year": 2024, "closing_date": "2025-03-31"}]
    else:
        assert check_declaration(body, dt.date.fromisoformat(today)).year == 2024


def test_a_closing_date_of_the_policy_data_moves_the_closing():
    years = policy.YearSettings(closing_dates={2024: dt.date(2025, 4, 30)})
    body = declaration(date="2024-12-20")
    assert check_declaration(body, dt.date(2025, 4, 30), years=years).year == 2024
    with pytest.raises(YearClosed):
        check_declaration(body, dt.date(2025, 5, 1), years=years)


def test_an_invalid_field_is_reported_before_the_year_closed():
    details = refusal(declaration(date="2023-02-01"))
    assert fields_of(details) == ["referral"]


def test_rules_can_be_given(tmp_path):
    table = json.loads(policy.RULES_FILE.read_text(encoding="utf-8"))
    table["rules"].append(table["rules"][-1] | {"valid_from": "2026-01-01", "sessions_per_year": 20})
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    assert check_declaration(declaration(), TODAY, policy.load_rules(path)).rule.sessions_per_year == 20


def test_refusals_never_quote_the_nir():
    cases = [
        declaration(patient={"nir": NIR, "birth_date": "1991-06-14"}, date="2027-01-01"),
        declaration(patient={"nir": NIR, "birth_date": "1990-05-14"}, date="2022-01-01"),
        declaration(situation="nope"),
        declaration(date="2023-01-02"),
    ]
    for case in cases:
        with pytest.raises(InvalidFields) as raised:
            check_declaration(case, TODAY)
        assert NIR[:13] not in json.dumps([raised.value.message, raised.value.details])


# --- the patient key


def test_patient_key_is_the_key_id_and_the_hmac_of_the_normalised_nir():
    expected = hmac.new(SECRET, NIR.encode(), hashlib.sha256).hexdigest()
    assert patient_key(NIR, SECRET, "k2026") == f"k2026:{expected}"


def test_patient_key_ignores_spacing_and_case():
    corsican = make_nir(dt.date(1985, 5, 2), place="2A004")
    assert patient_key(corsican.lower(), SECRET, "k1") == patient_key(corsican, SECRET, "k1")
    assert patient_key("2 90 05 75 056 123 84", SECRET, "k1") == patient_key(NIR, SECRET, "k1")
    assert patient_key(SecretStr(NIR), SECRET, "k1") == patient_key(NIR, SECRET, "k1")


def test_patient_key_changes_with_the_secret_and_its_id():
    keys = {
        patient_key(NIR, SECRET, "k1"),
        patient_key(NIR, b"t" * 32, "k1"),
        patient_key(NIR, SECRET, "k2"),
        patient_key(make_nir(dt.date(1990, 5, 1), place="75111"), SECRET, "k1"),
    }
    assert len(keys) == 4


def test_patient_key_does_not_contain_the_nir():
    assert NIR[:13] not in patient_key(NIR, SECRET, "k1")


@pytest.mark.parametrize(
    ("number", "secret", "key_id"),
    [
        (NIR, b"short", "k1"),
        (NIR, SECRET, ""),
        (NIR, SECRET, "k:1"),
        ("290057505612385", SECRET, "k1"),
    ],
)
def test_patient_key_refuses_weak_or_malformed_inputs(number, secret, key_id):
    with pytest.raises(ValueError) as raised:
        patient_key(number, secret, key_id)
    assert number[:13] not in str(raised.value)


# --- the answer


def test_declared_session_answer_matches_the_contract():
    rule = policy.rule_for(TODAY)
    amounts = policy.amounts(rule, "follow_up", rule.situation(None))
    answer = DeclaredSession(
        session_id="ses_1", year=2026, used=3, quota=12, kind="follow_up", ordinal=3, situation=None, amounts=amounts
    )
    assert answer.model_dump(mode="json") == {
        "session_id": "ses_1",
        "year": 2026,
        "used": 3,
        "quota": 12,
        "remaining": 9,
        "kind": "follow_up",
        "ordinal": 3,
        "situation": None,
        "amounts": FULL_PRICE_2026,
    }


def test_remaining_is_never_negative():
    assert QuotaStatus(year=2024, used=12, quota=8).remaining == 0
    assert QuotaStatus(year=2024, used=8, quota=8).remaining == 0


def test_quota_exhausted_is_a_409_with_used_and_quota():
    error = quota_exhausted(2026, 12, 12)
    assert (answer_for(error).status, answer_for(error).code) == (409, "quota_exhausted")
    assert error.details == [{"year": 2026, "used": 12, "quota": 12}]


# --- the patient keyring


GENERATED = json.dumps({"key_id": "k1", "secret": "a" * 64})  # the shape GenerateSecretString gives


def test_the_generated_secret_is_a_one_key_keyring_for_every_year():
    keyring = PatientKeyring.from_secret(GENERATED)
    assert keyring.version_for(2022).key_id == keyring.version_for(2099).key_id == "k1"
    assert keyring.patient_key(NIR, 2026) == patient_key(NIR, b"a" * 64, "k1")


def test_a_rotated_keyring_keys_each_year_with_one_version():
    rotated = {
        "keys": [
            {"key_id": "k1", "secret": "a" * 64},
            {"key_id": "k2", "secret": "b" * 64, "from_year": 2027},
        ]
    }
    keyring = PatientKeyring.from_secret(json.dumps(rotated))
    assert keyring.patient_key(NIR, 2026).startswith("k1:")
    assert keyring.patient_key(NIR, 2027).startswith("k2:")
    assert keyring.patient_key(NIR, 2026) == PatientKeyring.from_secret(GENERATED).patient_key(NIR, 2026)


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        json.dumps({"key_id": "k1", "secret": "xyzzy"}),
        json.dumps({"key_id": "k:1", "secret": "a" * 64}),
        json.dumps({"keys": []}),
        json.dumps({"keys": [{"key_id": "k1", "secret": "a" * 64}, {"key_id": "k1", "secret": "b" * 64}]}),
        json.dumps({"keys": [{"key_id": "k1", "secret": "a" * 64}, {"key_id": "k2", "secret": "b" * 64}]}),
    ],
)
def test_a_malformed_secret_is_refused_without_quoting_it(document):
    with pytest.raises(ValueError) as refused:
        PatientKeyring.from_secret(document)
    assert "aaaa" not in str(refused.value) and "bbbb" not in str(refused.value)
    assert "xyzzy" not in str(refused.value)


def test_the_keyring_never_shows_its_secrets():
    keyring = PatientKeyring.from_secret(GENERATED)
    assert "a" * 32 not in repr(keyring) + str(keyring) + keyring.model_dump_json()


def test_a_year_before_every_key_version_has_no_key():
    keyring = PatientKeyring.from_secret(json.dumps({"key_id": "k9", "secret": "a" * 64, "from_year": 2030}))
    with pytest.raises(ValueError):
        keyring.patient_key(NIR, 2026)


# --- looking up a quota


def quota_query(**changes) -> QuotaQuery:
    return QuotaQuery.model_validate({"nir": NIR, "birth_date": "1990-05-14"} | changes)


@pytest.mark.parametrize(
    ("year", "quota"),
    [(None, 12), (2026, 12), (2025, 12), (2024, 12), (2023, 8), (2022, 8)],
)
def test_a_years_quota_is_the_one_its_last_day_or_today_falls_under(year, quota):
    assert check_quota_query(quota_query(year=year), TODAY)[0] == (year or TODAY.year)
    assert check_quota_query(quota_query(year=year), TODAY)[1].sessions_per_year == quota


def test_quota_lookups_refuse_future_and_pre_programme_years_and_inconsistent_birth_dates():
    with pytest.raises(InvalidFields) as refused:
        check_quota_query(quota_query(year=2027, birth_date="1991-05-14"), TODAY)
    assert fields_of(refused.value.details) == ["birth_date", "year"]
    with pytest.raises(InvalidFields) as refused:
        check_quota_query(quota_query(year=2021), TODAY)
    assert refused.value.details == [{"field": "year", "message": "sessions are reimbursed from 2022-04-05 on"}]
    assert NIR[:13] not in json.dumps(refused.value.details)


def test_quota_query_errors_never_carry_the_nir():
    with pytest.raises(ValidationError) as raised:
        QuotaQuery.model_validate({"nir": "290057505612385", "birth_date": "1990-05-14", "year": "x"})
    assert [problem["loc"] for problem in raised.value.errors()] == [("nir",), ("year",)]
    assert NIR[:13] not in str(raised.value) + raised.value.json()


# --- the Idempotency-Key fingerprint


def test_the_idempotency_fingerprint_has_the_patient_key_not_the_nir():
    key = patient_key(NIR, SECRET, "k1")
    fingerprint = idempotency_fingerprint(declaration(), key)
    assert fingerprint == {
        "patient": {"patient_key": key, "birth_date": "1990-05-14"},
        "date": "2026-11-20",
        "situation": None,
        "referral": None,
    }
    assert NIR[:13] not in json.dumps(fingerprint)


def test_the_same_patient_typed_differently_has_the_same_fingerprint():
    spaced = declaration(patient={"nir": "2 90 05 75 056 123 84", "birth_date": "1990-05-14"})
    keyring = PatientKeyring.from_secret(GENERATED)
    assert idempotency_fingerprint(spaced, keyring.patient_key(spaced.patient.nir, 2026)) == idempotency_fingerprint(
        declaration(), keyring.patient_key(NIR, 2026)
    )


def test_the_declaration_digest_is_keyed_tells_bodies_apart_and_holds_no_nir():
    keyring = PatientKeyring.from_secret(GENERATED)
    key = keyring.patient_key(NIR, 2026)
    digest = keyring.declaration_digest(declaration(), key, 2026)
    key_id, _, hex_digest = digest.partition(":")
    assert key_id == keyring.version_for(2026).key_id and len(hex_digest) == 64
    spaced = declaration(patient={"nir": "2 90 05 75 056 123 84", "birth_date": "1990-05-14"})
    assert keyring.declaration_digest(spaced, keyring.patient_key(spaced.patient.nir, 2026), 2026) == digest
    others = [
        declaration(patient={"nir": NIR, "birth_date": "1990-05-15"}),  # the birth date is part of the body
        declaration(date="2026-11-19"),
        declaration(situation="css"),
        declaration(referral=REFERRAL),
    ]
    assert len({digest} | {keyring.declaration_digest(other, key, 2026) for other in others}) == 5
    # Keyed: without the secret, the few candidate birth dates cannot be tried against it.
    plain = json.dumps(idempotency_fingerprint(declaration(), key), sort_keys=True, separators=(",", ":"))
    assert hex_digest != hashlib.sha256(plain.encode()).hexdigest()
    assert NIR[:13] not in digest


# --- the programme's date


@pytest.mark.parametrize(
    ("utc", "paris"),
    [
        ("2026-12-31T22:59:59+00:00", "2026-12-31"),
        ("2026-12-31T23:00:00+00:00", "2027-01-01"),  # winter: UTC+1
        ("2026-06-30T21:59:59+00:00", "2026-06-30"),
        ("2026-06-30T22:00:00+00:00", "2026-07-01"),  # summer: UTC+2
    ],
)
def test_today_is_the_date_in_paris(utc, paris):
    assert programme_today(dt.datetime.fromisoformat(utc)) == dt.date.fromisoformat(paris)


def test_a_session_id_follows_from_the_psychologist_and_the_idempotency_key():
    first = session_id_for("psy-1", "key-0001")
    assert first == session_id_for("psy-1", "key-0001")
    assert len({first, session_id_for("psy-2", "key-0001"), session_id_for("psy-1", "key-0002")}) == 3
    assert uuid.UUID(first).version == 5
