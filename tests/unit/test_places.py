"""Place suggestions, the pure part: folding, abbreviations, ranking and bounds, against a brute-force oracle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from msp.directory.names import fold
from msp.places.matching import (
    ABBREVIATIONS,
    MAX_LIMIT,
    MAX_QUERY_LENGTH,
    Place,
    PlaceIndex,
    PlaceQuery,
    suggest_places,
)


def place(code, name, population, postcodes=("00000",), department="42", arrondissement=False) -> Place:
    return Place(code, name, department, tuple(postcodes), population, 45.0, 4.0, arrondissement)


SAMPLE = [
    place("42218", "Saint-Étienne", 173_136, ("42000", "42100", "42230")),
    place("76575", "Saint-Étienne-du-Rouvray", 29_518, ("76800",), "76"),
    place("01350", "Saint-Étienne-du-Bois", 2_584, ("01370",), "01"),
    place("93072", "Stains", 39_000, ("93240",), "93"),
    place("67482", "Strasbourg", 293_771, ("67000", "67100", "67200"), "67"),
    place("76351", "Le Havre", 165_000, ("76600", "76610", "76620"), "76"),
    place("01053", "Bourg-en-Bresse", 41_000, ("01000",), "01"),
    place("02104", "Bourg", 300, ("02160",), "02"),
    place("75056", "Paris", 2_103_778, ("75001", "75011"), "75"),
    place("75101", "Paris 1er Arrondissement", 16_000, ("75001",), "75", True),
    place("75111", "Paris 11e Arrondissement", 138_170, ("75011",), "75", True),
    place("33390", "Sainte-Colombe", 423, ("33350",), "33"),
    place("17310", "Sainte-Colombe", 180, ("17210",), "17"),
    place("95313", "L'Isle-Adam", 12_000, ("95290",), "95"),
    place("80829", "Y", 90, ("80190",), "80"),
    place("51001", "Œuilly", 600, ("51480",), "51"),
]
INDEX = PlaceIndex.build(SAMPLE)


def names(q: str, limit: int = 10, index: PlaceIndex = INDEX) -> list[str]:
    return [p.name for p in index.suggest(PlaceQuery(q=q, limit=limit))]


@pytest.mark.parametrize("typed", ["Saint-Étienne", "saint etienne", "SAINT-ETIENNE", "st etienne", "St-Étienne"])
def test_accents_case_hyphens_and_the_saint_abbreviation_do_not_matter(typed):
    assert names(typed)[0] == "Saint-Étienne"
    assert set(names(typed)) == {"Saint-Étienne", "Saint-Étienne-du-Rouvray", "Saint-Étienne-du-Bois"}


def test_an_abbreviation_still_being_typed_is_also_read_as_it_is():
    assert names("st") == [
        "Strasbourg",
        "Saint-Étienne",
        "Stains",
        "Saint-Étienne-du-Rouvray",
        "Saint-Étienne-du-Bois",
        "Sainte-Colombe",
        "Sainte-Colombe",
    ]
    assert names("ste colombe") == ["Sainte-Colombe", "Sainte-Colombe"]
    assert set(ABBREVIATIONS.values()) == {"saint", "sainte", "saints", "saintes"}


def test_the_exact_name_comes_first_then_names_starting_with_it_then_later_words_population_breaking_ties():
    assert names("bourg") == ["Bourg", "Bourg-en-Bresse"]
    assert names("havre") == ["Le Havre"]
    assert names("le h") == ["Le Havre"]
    assert names("paris") == ["Paris", "Paris 11e Arrondissement", "Paris 1er Arrondissement"]
    assert names("l isle") == ["L'Isle-Adam"] == names("l'isle")


def test_ligatures_and_one_letter_names_are_found():
    assert names("oeu") == ["Œuilly"]
    assert names("y") == ["Y"]


def test_a_whole_postcode_gives_its_arrondissement_before_its_city_and_a_prefix_gives_the_largest_first():
    assert names("75011") == ["Paris 11e Arrondissement", "Paris"]
    assert names("750") == ["Paris", "Paris 11e Arrondissement", "Paris 1er Arrondissement"]
    assert names("42 100") == ["Saint-Étienne"]
    assert names("99999") == []


def test_a_name_followed_by_a_department_or_postcode_keeps_that_area():
    assert [p.insee_code for p in INDEX.suggest(PlaceQuery(q="sainte colombe 17"))] == ["17310"]
    assert [p.insee_code for p in INDEX.suggest(PlaceQuery(q="ste colombe 333"))] == ["33390"]
    assert names("paris 11") == ["Paris 11e Arrondissement"]
    assert names("saint etienne 1") == ["Saint-Étienne-du-Bois"]  # department 01


def test_the_answer_is_bounded_by_the_limit():
    assert len(names("s", limit=2)) == 2
    with pytest.raises(ValidationError):
        PlaceQuery(q="s", limit=MAX_LIMIT + 1)
    with pytest.raises(ValidationError):
        PlaceQuery(q="s", limit=0)


@pytest.mark.parametrize("bad", ["", "   ", "-'-", "7", "x" * (MAX_QUERY_LENGTH + 1)])
def test_a_query_without_a_letter_or_two_digits_or_too_long_is_refused(bad):
    with pytest.raises(ValidationError):
        PlaceQuery(q=bad)


def test_a_stored_index_answers_as_the_built_one():
    stored = PlaceIndex.from_document(INDEX.to_document())
    for q in ["s", "st etienne", "750", "75011", "bourg", "havre", "ste colombe 33"]:
        assert stored.suggest(PlaceQuery(q=q)) == INDEX.suggest(PlaceQuery(q=q))
    assert len(stored) == len(SAMPLE)


def test_suggestions_carry_code_name_department_postcodes_and_centre():
    (first,) = suggest_places(INDEX, PlaceQuery(q="42000")).places
    assert first.model_dump() == {
        "insee_code": "42218",
        "name": "Saint-Étienne",
        "department": "42",
        "postcodes": ["42000", "42100", "42230"],
        "population": 173_136,
        "lat": 45.0,
        "lon": 4.0,
    }


# ---------------------------------------------------------------- against a brute-force oracle

WORDS = ["Saint", "Sainte", "Étienne", "Èze", "Bourg", "le", "Havre", "Isle", "Œuf", "Marie", "Mont", "sur", "Mer"]


def _oracle(places: list[Place], q: str, limit: int) -> list[Place]:
    """Every place's best tier, from the folded names directly, then the documented order."""
    folded = fold(q)
    compact = folded.replace(" ", "")

    def tier_of(name_query: str, candidate: Place) -> int | None:
        *complete, last = name_query.split(" ")
        head = [ABBREVIATIONS.get(word, word) for word in complete]
        variants = [" ".join([*head, word]) for word in {last, ABBREVIATIONS.get(last, last)}]
        words = fold(candidate.name).split(" ")
        tiers = []
        for variant in variants:
            if " ".join(words) == variant:
                tiers.append(0)
            elif " ".join(words).startswith(variant):
                tiers.append(1)
            elif any(" ".join(words[start:]).startswith(variant) for start in range(1, len(words))):
                tiers.append(2)
        return min(tiers, default=None)

    ranked = []
    for candidate in places:
        if compact.isdigit():
            matching = [code for code in candidate.postcodes if code.startswith(compact[:5])]
            tier = None if not matching else 0 if len(compact) == 5 and candidate.arrondissement else 1
        else:
            tier = tier_of(folded, candidate)
            words = folded.split(" ")
            if len(words) > 1 and (words[-1].isdigit() or words[-1] in {"2a", "2b"}):
                area = words[-1]
                in_area = candidate.department.lower() == area.zfill(2) or any(
                    code.startswith(area) for code in candidate.postcodes
                )
                filtered = tier_of(" ".join(words[:-1]), candidate) if in_area else None
                tier = min((t for t in (tier, filtered) if t is not None), default=None)
        if tier is not None:
            ranked.append(((tier, -candidate.population, candidate.name, candidate.insee_code), candidate))
    return [candidate for _, candidate in sorted(ranked)[:limit]]


@st.composite
def places_and_query(draw):
    count = draw(st.integers(min_value=1, max_value=25))
    places = []
    for number in range(count):
        name_words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4))
        separators = draw(
            st.lists(st.sampled_from(["-", " ", "'"]), min_size=len(name_words), max_size=len(name_words))
        )
        name = "".join(word + separator for word, separator in zip(name_words, separators, strict=True))[:-1]
        postcodes = draw(
            st.lists(st.sampled_from(["42000", "42100", "75011", "01370", "97400"]), min_size=1, max_size=2)
        )
        places.append(
            place(
                f"{number:05d}",
                name,
                draw(st.integers(min_value=0, max_value=50)),  # small populations: many ties
                tuple(sorted(set(postcodes))),
                draw(st.sampled_from(["42", "75", "01", "974", "2A"])),
                arrondissement=draw(st.booleans()),
            )
        )
    q = draw(
        st.one_of(
            st.sampled_from(["st", "st e", "ste", "saint et", "le", "bourg", "mer", "mont s", "isle", "oe", "e"]),
            st.sampled_from(["42", "420", "42000", "75011", "974", "01"]),
            st.sampled_from(["saint 42", "st 2a", "bourg 974", "le 75011", "e 01"]),
        )
    )
    return places, q, draw(st.integers(min_value=1, max_value=8))


@settings(max_examples=150, deadline=None)
@given(places_and_query())
def test_the_index_answers_as_a_scan_of_every_place(case):
    places, q, limit = case
    assert PlaceIndex.build(places).suggest(PlaceQuery(q=q, limit=limit)) == _oracle(places, q, limit)
