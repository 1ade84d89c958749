import datetime as dt

import pytest

from msp.sessions import nir

# Made-up numbers whose keys were computed by hand (97 - number mod 97).
DESIGN_EXAMPLE = "290057505612384"  # woman born 1990-05 in Paris (75)
CALVADOS = "255081416802538"
AJACCIO = "185052A00412356"  # 2A read as 19
BASTIA = "185052B00412383"  # 2B read as 18
UNKNOWN_MONTH = "190207505612383"  # month code 20: civil record without a month
BORN_ABROAD = "180129935004279"  # 99 + country code


@pytest.mark.parametrize("number", [DESIGN_EXAMPLE, CALVADOS, AJACCIO, BASTIA, UNKNOWN_MONTH, BORN_ABROAD])
def test_valid_numbers_have_no_problem(number):
    assert nir.nir_problem(number) is None


def test_normalise_removes_spaces_and_capitalises():
    assert nir.normalise(" 1 85 05 2a 004 123 56 ") == AJACCIO
    assert nir.normalise("2\u00a090\t05 75 056 123 84") == DESIGN_EXAMPLE


def test_control_key_of_plain_number():
    assert nir.control_key(DESIGN_EXAMPLE[:13]) == 84


def test_corsica_key_reads_2a_as_19_and_2b_as_18():
    # Equivalent formulation used by INSEE: subtract 1,000,000 (2A) or 2,000,000 (2B) from the number read with 20.
    read_as_20 = int("1850520004123")
    assert nir.control_key("185052A004123") == 97 - (read_as_20 - 1_000_000) % 97 == 56
    assert nir.control_key("185052B004123") == 97 - (read_as_20 - 2_000_000) % 97 == 83


def test_corsica_key_is_not_the_plain_20_key():
    assert nir.nir_problem("185052A00412329") is not None  # 29 is the key of the number read with 20


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        ("29005750561238", "15 characters"),
        ("2900575056123845", "15 characters"),
        ("390057505612384", "starts with 1 or 2"),
        ("790057505612384", "starts with 1 or 2"),
        ("29005750561238X", "digits only"),
        ("2900575A5612384", "digits only"),
        ("185052C00412356", "digits only"),
        ("290007505612384", "birth month"),
        ("290137505612384", "birth month"),
        ("290457505612384", "birth month"),
        ("290057505612385", "key"),
        ("290057505612300", "key"),
        ("290057505612398", "key"),
    ],
)
def test_invalid_numbers_are_explained(number, fragment):
    problem = nir.nir_problem(number)
    assert problem is not None
    assert fragment in problem


def test_a_transposition_is_caught_by_the_key():
    swapped = DESIGN_EXAMPLE[:7] + DESIGN_EXAMPLE[8] + DESIGN_EXAMPLE[7] + DESIGN_EXAMPLE[9:]
    assert "key" in nir.nir_problem(swapped)


def test_birth_date_consistent():
    assert nir.birth_date_problem(DESIGN_EXAMPLE, dt.date(1990, 5, 14)) is None


def test_birth_year_mismatch():
    assert "year" in nir.birth_date_problem(DESIGN_EXAMPLE, dt.date(1991, 5, 14))


def test_birth_year_compares_the_last_two_digits_only():
    # The NIR has no century: 1990 and 2090 read alike; the age checks elsewhere catch the absurd one.
    assert nir.birth_date_problem(DESIGN_EXAMPLE, dt.date(1890, 5, 14)) is None


def test_birth_month_mismatch():
    assert "month" in nir.birth_date_problem(DESIGN_EXAMPLE, dt.date(1990, 6, 14))


def test_unknown_month_code_accepts_any_month():
    assert not nir.has_calendar_month(UNKNOWN_MONTH)
    for month in range(1, 13):
        assert nir.birth_date_problem(UNKNOWN_MONTH, dt.date(1990, month, 1)) is None


def test_unknown_month_code_still_checks_the_year():
    assert nir.birth_date_problem(UNKNOWN_MONTH, dt.date(1989, 3, 1)) is not None


@pytest.mark.parametrize(
    "number", [DESIGN_EXAMPLE, "29005750561238", "390057505612384", "290057505612385", "290137505612384"]
)
def test_messages_never_quote_the_number(number):
    messages = [nir.nir_problem(number), nir.birth_date_problem(DESIGN_EXAMPLE, dt.date(1991, 6, 1))]
    for message in filter(None, messages):
        assert number not in message
        assert DESIGN_EXAMPLE[:13] not in message


def test_digits_of_other_scripts_are_refused():
    """A full-width digit passed the shape and key checks, then stopped the patient key's ASCII encoding."""
    first_13 = "290057505612\uff13"
    assert nir.nir_problem(first_13 + f"{nir.control_key(first_13):02d}") is not None
