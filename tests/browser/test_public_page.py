"""The patients' page in headless Chromium, with the keyboard only, checked by axe-core on every view.

A patient finds psychologists by a commune's name (through the suggestions), by a postcode and by "near me"
(geolocation granted), filters, pages through the results, opens a profile (then opens its address afresh,
as someone it was shared with would) and reads the statistics. Every view: 0 WCAG 2.1 A/AA violations, the
results announced in the live region, no horizontal scrolling at 320 px nor at 200 % zoom, screenshots at
1280 and 375 px under .local/screenshots/public/. Map tiles are answered by the test (no network), proving the
CSP lets the page load them; a run without tiles shows the list alone is enough.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import uuid
import zlib

import pytest

from infra.seed import demo_fields, rpps_with_key
from msp.directory.spherical import haversine_km
from tests.browser.pages import Keyboard, check_accessibility, fresh_folder, opened_page
from tests.stored_candidatures import store_candidature

pytestmark = pytest.mark.browser

# Centres the places route gives (town halls), and where the test lists psychologists around them.
SAINT_ETIENNE = (45.439587, 4.387475)
SAINT_CHAMOND = (45.476646, 4.5125)
FIRMINY = (45.388262, 4.287255)
TILES = "https://tile.openstreetmap.org/**"
FIRST_NAMES = ["Agathe", "Basile", "Capucine", "Dorian", "Elsa", "Fabien", "Gaëlle", "Hector", "Iris", "Jules"]
FIRST_NAMES += ["Katia", "Lison", "Marius"]


def _tile() -> bytes:
    """A 1x1 grey PNG, served for every map tile."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xcc")) + chunk(b"IEND", b"")
    )


def _near(centre: tuple[float, float], north_km: float, east_km: float) -> tuple[float, float]:
    lat, lon = centre
    return round(lat + north_km / 111.2, 6), round(lon + east_km / (111.2 * math.cos(math.radians(lat))), 6)


def _list(first: str, last: str, point: tuple[float, float], city: str, postcode: str, **overrides) -> dict:
    fields = demo_fields(0) | {
        "first_name": first,
        "last_name": last,
        "identifier": {"type": "rpps", "value": rpps_with_key(f"{uuid.uuid4().int % 10**10:010d}")},
        "practices": [
            {
                "address": f"{len(last)} rue de l'Exemple",
                "postcode": postcode,
                "city": city,
                "department": "42",
                "lat": point[0],
                "lon": point[1],
            }
        ],
        "languages": ["fr"],
        "publics": ["adultes"],
        "teleconsultation": False,
    }
    fields |= overrides
    candidature = store_candidature(fields, owner_sub=f"psy-public-{uuid.uuid4().hex[:8]}", status="accepted")
    return {"id": candidature.id, "practice_id": f"{candidature.id}-1", "name": f"{first} {last}", "point": point} | {
        "teleconsultation": fields["teleconsultation"],
        "publics": fields["publics"],
    }


@pytest.fixture(scope="module")
def listed(stack):
    """Thirteen psychologists within 3 km of Saint-Étienne's centre (every third offers teleconsultation, two
    see children), two by Saint-Chamond and two by Firminy."""
    people = [
        _list(
            first,
            "Essai",
            _near(SAINT_ETIENNE, 0.3 + 0.2 * n, 0.05 * n),
            "Saint-Étienne",
            "42000",
            teleconsultation=n % 3 == 0,
            publics=["enfants", "adolescents"] if n in (4, 9) else ["adultes"],
            languages=["fr", "es"] if n == 4 else ["fr"],
        )
        for n, first in enumerate(FIRST_NAMES)
    ]
    people += [
        _list(first, "Chamonet", _near(SAINT_CHAMOND, d, 0), "Saint-Chamond", "42400")
        for first, d in [("Noé", 0.3), ("Olga", 0.6)]
    ]
    people += [
        _list(first, "Firmin", _near(FIRMINY, 0, d), "Firminy", "42700") for first, d in [("Paul", 0.2), ("Rose", 0.5)]
    ]
    return people


def expected(listed, centre, radius_km=10.0, keep=lambda person: True) -> list[str]:
    """Names in the order the search must give them: by exact distance, then practice id."""
    found = [
        (haversine_km(*centre, *person["point"]), person["practice_id"], person["name"])
        for person in listed
        if keep(person) and haversine_km(*centre, *person["point"]) <= radius_km
    ]
    return [name for _, _, name in sorted(found)]


@pytest.fixture(scope="module")
def screenshots():
    return fresh_folder("public")


@pytest.fixture
def tiles(page):
    served = []

    def answer(route):
        served.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=_tile())

    page.route(TILES, answer)
    return served


def result_names(page) -> list[str]:
    return page.locator("#results .result-name").all_inner_texts()


def wait_results(page, announced: str) -> None:
    page.wait_for_function("text => document.querySelector('#announcer').textContent.includes(text)", arg=announced)


def check_reflow(page, folder, view: str) -> None:
    """Usable at 320 px (no horizontal scrolling), photographed at 375 px, back to 1280 px."""
    for width in (320, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{view}: {overflow} px of horizontal scrolling at {width} px"
    page.screenshot(path=str(folder / f"{view}-375.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 1000})


def choose_place(page, keys: Keyboard, typed: str, expected_value: str) -> None:
    """Type in the commune field, move to the first suggestion with the arrow key and take it with Enter."""
    keys.tab_to("#place")
    keys.type(typed)
    page.wait_for_selector("#place-list [role=option]")
    assert page.get_attribute("#place", "aria-expanded") == "true"
    keys.press("ArrowDown")
    assert page.get_attribute("#place", "aria-activedescendant") == "place-option-0"
    assert page.get_attribute("#place-option-0", "aria-selected") == "true"
    keys.press("Enter")
    assert page.input_value("#place") == expected_value
    assert page.get_attribute("#place", "aria-expanded") == "false"
    assert page.is_hidden("#place-list")


def test_a_patient_searches_by_commune_filters_pages_and_opens_a_profile(
    page, listed, tiles, screenshots, browser, stack
):
    keys = Keyboard(page)
    page.goto("/")
    page.get_by_role("heading", name="Trouver un psychologue près de chez vous").wait_for()
    assert page.evaluate("document.documentElement.lang") == "fr"
    assert page.evaluate("() => document.cookie") == ""
    check_accessibility(page, screenshots, "01-accueil")
    check_reflow(page, screenshots, "01-accueil")

    # ---------------------------------------------------------------- an empty field is explained next to it
    keys.tab_to("#search-submit")
    keys.press("Enter")
    assert keys.focused("#place")
    assert page.get_attribute("#place", "aria-invalid") == "true"
    assert "place-error" in page.get_attribute("#place", "aria-describedby")

    # ---------------------------------------------------------------- by name, abbreviated, without accents
    keys.type("st etienne")
    page.wait_for_selector("#place-list [role=option]")
    check_accessibility(page, screenshots, "02-propositions")
    check_reflow(page, screenshots, "02-propositions")
    assert page.inner_text("#place-option-0").startswith("Saint-Étienne (42)")
    assert "communes proposées" in page.inner_text("#place-status")
    keys.press("ArrowDown")
    keys.press("Enter")
    assert page.input_value("#place") == "Saint-Étienne (42)"
    keys.tab_to("#search-submit")
    keys.press("Enter")
    wait_results(page, "à moins de 10 km de Saint-Étienne, page 1. D'autres résultats suivent.")
    nearest = expected(listed, SAINT_ETIENNE)
    assert len(nearest) > 10
    assert result_names(page) == nearest[:10]
    assert page.locator(".result-marker").count() == 10
    assert tiles, "the CSP let no map tile load"
    assert "lieu=Saint-%C3%89tienne" in page.url
    check_accessibility(page, screenshots, "03-resultats")
    check_reflow(page, screenshots, "03-resultats")

    # ---------------------------------------------------------------- paging with the cursor
    keys.tab_to("#next-page")
    keys.press("Enter")
    wait_results(page, "page 2.")
    assert result_names(page) == nearest[10:20]
    assert keys.focused("#results-title")
    assert page.get_attribute("#results", "start") == "11"
    check_accessibility(page, screenshots, "04-page-2")
    check_reflow(page, screenshots, "04-page-2")
    keys.tab_to("#previous-page")
    keys.press("Enter")
    wait_results(page, "page 1.")
    assert result_names(page) == nearest[:10]

    # ---------------------------------------------------------------- filters
    keys.tab_to("#filter-teleconsultation", backwards=True)
    keys.press("ArrowDown")  # "Indifférent" → "Proposée"
    assert page.input_value("#filter-teleconsultation") == "true"
    keys.tab_to("#filter-public", backwards=True)
    keys.press("ArrowDown")  # "Tous les publics" → "Enfants"
    assert page.input_value("#filter-public") == "enfants"
    keys.tab_to("#search-submit")
    keys.press("Enter")
    wait_results(page, "1 psychologue à moins de 10 km de Saint-Étienne, page 1.")
    children_online = expected(
        listed, SAINT_ETIENNE, keep=lambda p: p["teleconsultation"] and "enfants" in p["publics"]
    )
    assert result_names(page) == children_online == ["Jules Essai"]
    assert "Téléconsultation proposée" in page.inner_text("#results")
    assert page.is_hidden("#next-page") and page.is_hidden("#previous-page")
    check_accessibility(page, screenshots, "05-filtres")
    check_reflow(page, screenshots, "05-filtres")

    # ---------------------------------------------------------------- a profile, and its shareable address
    profile = next(person for person in listed if person["name"] == children_online[0])
    keys.tab_to(f"#results a[href='#/psychologue/{profile['id']}']", backwards=True)
    keys.press("Enter")
    page.get_by_role("heading", name=profile["name"], level=1).wait_for()
    assert keys.focused("#profile-title")
    assert page.url.endswith(f"#/psychologue/{profile['id']}")
    assert "Cabinet" in page.inner_text("#profile-body") and "42000 Saint-Étienne" in page.inner_text("#profile-body")
    check_accessibility(page, screenshots, "06-profil")
    check_reflow(page, screenshots, "06-profil")
    keys.tab_to("#back-to-search", backwards=True)
    keys.press("Enter")
    page.wait_for_function("() => !document.querySelector('#results-area').hidden")
    assert result_names(page) == children_online  # the same results, kept

    with opened_page(browser, stack.base_url, screenshots) as shared:
        shared.route(TILES, lambda route: route.fulfill(status=200, content_type="image/png", body=_tile()))
        shared.goto(f"/#/psychologue/{profile['id']}")
        shared.get_by_role("heading", name=profile["name"], level=1).wait_for()
        assert not shared.problems, shared.problems
    assert not page.problems, page.problems


def test_a_patient_searches_by_postcode_and_at_200_percent_zoom(browser, stack, listed, screenshots):
    # 200 % zoom of a 1280 px wide window: a 640 px wide layout drawn with twice the pixels.
    with opened_page(
        browser, stack.base_url, screenshots, viewport={"width": 640, "height": 900}, device_scale_factor=2
    ) as page:
        page.route(TILES, lambda route: route.fulfill(status=200, content_type="image/png", body=_tile()))
        keys = Keyboard(page)
        page.goto("/")
        choose_place(page, keys, "42400", "Saint-Chamond (42)")
        keys.press("Enter")  # the list is closed: Enter sends the form
        wait_results(page, "à moins de 10 km de Saint-Chamond, page 1.")
        assert result_names(page) == expected(listed, SAINT_CHAMOND)[:10]
        assert result_names(page)[:2] == ["Noé Chamonet", "Olga Chamonet"]
        assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
        check_accessibility(page, screenshots, "07-code-postal-zoom-200")
        assert not page.problems, page.problems


def test_a_patient_searches_near_them(browser, stack, listed, screenshots):
    here = _near(FIRMINY, 0.1, 0.1)
    with opened_page(
        browser,
        stack.base_url,
        screenshots,
        geolocation={"latitude": here[0], "longitude": here[1]},
        permissions=["geolocation"],
    ) as page:
        page.route(TILES, lambda route: route.fulfill(status=200, content_type="image/png", body=_tile()))
        keys = Keyboard(page)
        page.goto("/")
        keys.tab_to("#near-me")
        keys.press("Enter")
        wait_results(page, "à moins de 10 km de votre position, page 1.")
        assert page.input_value("#place") == "Ma position"
        sent = (round(here[0], 3), round(here[1], 3))  # the page rounds the position to about 100 m
        assert f"lat={sent[0]}&lon={sent[1]}" in page.url
        assert result_names(page) == expected(listed, sent)[:10]
        assert result_names(page)[:2] == ["Paul Firmin", "Rose Firmin"]
        assert "À " in page.inner_text("#result-0 .distance")
        check_accessibility(page, screenshots, "08-autour-de-moi")
        check_reflow(page, screenshots, "08-autour-de-moi")
        assert not page.problems, page.problems


def test_without_map_tiles_the_list_is_the_whole_answer(page, listed, screenshots):
    page.route(TILES, lambda route: route.abort())
    keys = Keyboard(page)
    page.goto("/")
    choose_place(page, keys, "saint-etienne", "Saint-Étienne (42)")
    keys.press("Enter")
    wait_results(page, "à moins de 10 km de Saint-Étienne, page 1.")
    assert result_names(page) == expected(listed, SAINT_ETIENNE)[:10]
    page.wait_for_function("() => document.querySelector('#map-note').textContent.includes(\"n'a pas pu\")")
    check_accessibility(page, screenshots, "09-sans-fond-de-carte")
    check_reflow(page, screenshots, "09-sans-fond-de-carte")
    # The only errors are the tiles refused above.
    assert all("ERR_FAILED" in problem for problem in page.problems), page.problems


def test_the_statistics_view_shows_closed_months_with_small_counts_suppressed(page, stack, tally_storage, screenshots):
    from infra.synthetic import load_year, plan_year
    from msp.clock import programme_today
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store

    today = programme_today()
    load_year(
        session_year_store(), plan_year(today.year, 2500, seed=3, tag="public-page", until=today), patient_keyring()
    )
    outcome = stack.runtime.invoke("TallySessionsFunction", {"kind": "nightly"})
    assert outcome["status"] == "complete", outcome

    keys = Keyboard(page)
    page.goto("/")
    keys.tab_to("#nav-stats")
    keys.press("Enter")
    page.wait_for_selector("#stats-body table")
    assert keys.focused("#stats-title")
    assert page.get_attribute("#nav-stats", "aria-current") == "page"
    caption = page.inner_text("#stats-body caption")
    assert caption == "Séances par mois — France entière"
    closed = [dt.date(today.year, month, 1) for month in range(1, today.month)]
    assert page.locator("#stats-body tbody tr").count() == len(closed)
    check_accessibility(page, screenshots, "10-statistiques")
    check_reflow(page, screenshots, "10-statistiques")

    keys.tab_to("#stats-department")
    keys.type("75")  # the select's type-ahead: "75 — Paris"
    assert page.input_value("#stats-department") == "75"
    keys.tab_to("#stats-form button[type=submit]")
    keys.press("Enter")
    page.wait_for_function("() => document.querySelector('#stats-body caption')?.textContent.includes('(75)')")
    wait_results(page, "Statistiques")
    cells = page.locator("#stats-body tbody td").all_inner_texts()
    assert len(cells) == len(closed)
    for cell in cells:
        if cell not in ("moins de 11", "secret statistique"):
            assert int(cell.replace("\u202f", "").replace("\xa0", "")) >= 11, cell
    assert any(cell[0].isdigit() for cell in cells)
    check_accessibility(page, screenshots, "11-statistiques-departement")
    check_reflow(page, screenshots, "11-statistiques-departement")
    assert not page.problems, page.problems
