"""The reviewers' admin page in headless Chromium, driven with the keyboard only, checked by axe-core.

A reviewer signs in with a dev token, filters the queue, opens a candidature and requests
information, then accepts a second candidature (after losing a race to another reviewer, which
the page must explain) and rejects a third with a reason. axe-core runs on every view and any
WCAG 2.1 A/AA violation fails the test. Screenshots of each view go to .local/screenshots/admin/.
"""

from __future__ import annotations

import uuid

import pytest

from tests.browser.pages import Keyboard, check_accessibility, fresh_folder

pytestmark = pytest.mark.browser

DEPARTMENT, OTHER = "71", "72"


@pytest.fixture(scope="module")
def screenshots():
    return fresh_folder("admin")


def wait_notice(page, kind: str, text: str) -> None:
    """Wait for the page's notice (shown once the candidature and its history are reloaded)."""
    page.wait_for_function(
        "([kind, text]) => { const f = document.querySelector('#flash');"
        " return !f.hidden && f.classList.contains(kind) && f.textContent.includes(text); }",
        arg=[kind, text],
    )


def _status(api, candidature_id) -> str:
    return api.call("GET", f"/v1/candidatures/{candidature_id}", token=api.token("admin")).json()["status"]


def test_a_reviewer_works_the_queue_with_the_keyboard_only(page, api, stack, make_candidature, screenshots):
    first = make_candidature(department=DEPARTMENT, files=True, first_name="Alice", last_name="Aubert")
    second = make_candidature(department=DEPARTMENT, files=True, first_name="Bruno", last_name="Blanc", civility="m")
    third = make_candidature(department=DEPARTMENT, files=True, first_name="Céline", last_name="Chevalier")
    elsewhere = make_candidature(department=OTHER, files=True, first_name="Denis", last_name="Dupont")
    keys = Keyboard(page)

    # ---------------------------------------------------------------- sign in
    page.goto("/admin/")
    page.get_by_role("heading", name="Connexion").wait_for()
    assert page.evaluate("document.documentElement.lang") == "fr"
    check_accessibility(page, screenshots, "01-connexion")

    keys.tab_to("button[type=submit]")  # an empty token is refused, next to the field
    keys.press("Enter")
    assert keys.focused("#token")
    assert page.get_attribute("#token", "aria-invalid") == "true"
    assert "token-error" in page.get_attribute("#token", "aria-describedby")
    assert "Collez le jeton" in page.inner_text("#token-error")
    check_accessibility(page, screenshots, "02-connexion-erreur")

    keys.type(api.token("reviewer", sub="rev-browser", departments=f"{DEPARTMENT},{OTHER}"))
    keys.tab_to("#signin-form button[type=submit]")
    keys.press("Enter")
    page.get_by_role("heading", name="File d'instruction").wait_for()
    page.wait_for_selector("#queue-rows tr")
    assert page.evaluate("() => Object.keys(sessionStorage)") == ["msp-admin-token"]
    assert page.evaluate("() => Object.keys(localStorage)") == []
    check_accessibility(page, screenshots, "03-file")

    # ---------------------------------------------------------------- filter the queue to one department
    keys.tab_to("#filter-department")
    keys.press("ArrowDown")  # "Tous mes départements" → the first department of the scope
    assert page.input_value("#filter-department") == DEPARTMENT
    keys.tab_to("#filters button[type=submit]")
    keys.press("Enter")
    page.wait_for_function("() => location.hash.includes('departement=71')")
    page.wait_for_function("n => document.querySelectorAll('#queue-rows tr').length === n", arg=3)
    names = page.locator("#queue-rows th a").all_inner_texts()
    assert names == ["Mme Alice Aubert", "M. Bruno Blanc", "Mme Céline Chevalier"], names
    assert elsewhere.id not in page.inner_html("#queue-rows")
    check_accessibility(page, screenshots, "04-file-filtree")

    # ---------------------------------------------------------------- open the first, request information
    keys.tab_to(f"a[href='#/candidatures/{first.id}']")
    keys.press("Enter")
    page.get_by_role("heading", name="Candidature de Mme Alice Aubert").wait_for()
    page.wait_for_selector("#history li")
    assert keys.focused("#candidature-title")
    check_accessibility(page, screenshots, "05-candidature")

    keys.tab_to("button[data-document]")  # a document opens through a short-lived link
    keys.press("Enter")
    page.wait_for_selector("#documents a")
    assert keys.focused("#documents a")
    assert page.get_attribute("#documents a", "href").startswith(stack.environment["AWS_ENDPOINT_URL_S3"])

    keys.tab_to("#action-start_review")
    keys.press("Space")
    keys.tab_to("#action-submit")
    keys.press("Enter")
    wait_notice(page, "success", "L'instruction a commencé")
    assert page.inner_text("#candidature-status") == "En cours d'instruction"

    keys.tab_to("#action-request_info")
    keys.press("Space")
    keys.tab_to("#action-submit")
    keys.press("Enter")  # no reason yet: refused next to the reason field
    assert keys.focused("#reason")
    assert page.get_attribute("#reason", "aria-invalid") == "true"
    assert "reason-error" in page.get_attribute("#reason", "aria-describedby")
    check_accessibility(page, screenshots, "06-motif-manquant")
    keys.type("Merci de joindre votre diplôme complet, recto et verso.")
    keys.tab_to("#action-submit")
    keys.press("Enter")
    wait_notice(page, "success", "La demande d'informations a été envoyée")
    assert page.inner_text("#candidature-status") == "Informations demandées"
    assert "Merci de joindre votre diplôme complet" in page.inner_text("#candidature-reason")
    assert "Demande d'informations" in page.inner_text("#history")
    check_accessibility(page, screenshots, "07-informations-demandees")
    assert _status(api, first.id) == "info_requested"

    # ---------------------------------------------------------------- back to the queue, accept the second
    keys.tab_to("#back-to-queue", backwards=True)
    keys.press("Enter")
    page.wait_for_function("n => document.querySelectorAll('#queue-rows tr').length === n", arg=2)
    keys.tab_to(f"a[href='#/candidatures/{second.id}']")
    keys.press("Enter")
    page.get_by_role("heading", name="Candidature de M. Bruno Blanc").wait_for()
    page.wait_for_selector("#history li")

    # another reviewer starts the review while this page still shows the old version
    raced = api.call(
        "POST",
        f"/v1/candidatures/{second.id}/transitions",
        token=api.token("reviewer", sub="rev-other", departments=DEPARTMENT),
        json={"action": "start_review", "expected_version": 1},
    )
    assert raced.status_code == 200
    keys.tab_to("#action-start_review")
    keys.press("Space")
    keys.tab_to("#action-submit")
    keys.press("Enter")
    wait_notice(page, "warning", "Un autre instructeur a modifié cette candidature avant vous")
    assert page.inner_text("#candidature-status") == "En cours d'instruction"  # reloaded
    assert keys.focused("#flash")
    check_accessibility(page, screenshots, "08-conflit")

    keys.tab_to("#action-request_info")
    keys.press("ArrowDown")  # arrows move through the radio group: request_info → accept
    assert page.is_checked("#action-accept")
    keys.tab_to("#action-submit")
    keys.press("Enter")
    wait_notice(page, "success", "La candidature est acceptée")
    assert page.inner_text("#candidature-status") == "Acceptée"
    check_accessibility(page, screenshots, "09-acceptee")
    assert _status(api, second.id) == "accepted"

    # ---------------------------------------------------------------- reject the third with a reason
    keys.tab_to("#back-to-queue", backwards=True)
    keys.press("Enter")
    page.wait_for_function("n => document.querySelectorAll('#queue-rows tr').length === n", arg=1)
    keys.tab_to(f"a[href='#/candidatures/{third.id}']")
    keys.press("Enter")
    page.get_by_role("heading", name="Candidature de Mme Céline Chevalier").wait_for()
    page.wait_for_selector("#history li")
    keys.tab_to("#action-start_review")
    keys.press("Space")
    keys.tab_to("#action-submit")
    keys.press("Enter")
    wait_notice(page, "success", "L'instruction a commencé")
    keys.tab_to("#action-request_info")
    keys.press("ArrowDown")
    keys.press("ArrowDown")
    assert page.is_checked("#action-reject")
    keys.tab_to("#reason")
    keys.type("Le diplôme fourni n'est pas un master de psychologie.")
    keys.tab_to("#action-submit")
    keys.press("Enter")
    wait_notice(page, "success", "La candidature est refusée")
    assert page.inner_text("#candidature-status") == "Refusée"
    assert "Le diplôme fourni n'est pas un master" in page.inner_text("#history")
    assert page.is_visible("#no-action")
    check_accessibility(page, screenshots, "10-refusee")
    assert _status(api, third.id) == "rejected"

    # ---------------------------------------------------------------- the psychologists were told
    stack.events.wait_idle()
    subjects = {
        candidature.id: [p.read_text(encoding="utf-8") for p in stack.outbox.glob(f"*-{candidature.id}-v*.eml")]
        for candidature in (first, second, third)
    }
    assert any("informations complémentaires" in m for m in subjects[first.id])
    assert any("acceptée" in m for m in subjects[second.id])
    assert any("Le diplôme fourni n'est pas un master" in m for m in subjects[third.id])

    # ---------------------------------------------------------------- sign out clears the token
    keys.tab_to("#sign-out", backwards=True)
    keys.press("Enter")
    page.get_by_role("heading", name="Connexion").wait_for()
    assert page.evaluate("() => sessionStorage.length") == 0
    # no CSP violation, no script error, no missing file; the one 409 is the lost race above
    unexpected = [p for p in page.problems if "status of 409" not in p]
    assert not unexpected, unexpected


def _advance(candidature_id: str, status: str) -> None:
    """Move a candidature straight to `status` in storage (the submission path is tested elsewhere)."""
    from msp.candidatures.models import Status
    from msp.clock import now_iso
    from msp.storage.candidatures import candidature_store

    store = candidature_store()
    current = store.get(candidature_id)
    changes = {"status": Status(status), "version": current.version + 1, "submitted_at": now_iso()}
    store.save(current.model_copy(update=changes), previous=current, audit=None)


def test_a_reviewer_reads_a_psychologists_history_across_candidatures_and_conventions(
    page, api, stack, make_candidature, unique_fields, screenshots
):
    admin = api.token("admin", sub="admin-lineage")

    def decide(candidature_id, action, **extra):
        version = api.call("GET", f"/v1/candidatures/{candidature_id}", token=admin).json()["version"]
        body = {"action": action, "expected_version": version} | extra
        response = api.call("POST", f"/v1/candidatures/{candidature_id}/transitions", token=admin, json=body)
        assert response.status_code == 200, response.text

    fields = unique_fields(first_name="Hélène", last_name="Henry")
    refused = make_candidature(status="in_review", department=DEPARTMENT, identifier=fields["identifier"])
    decide(refused.id, "reject", reason="Diplôme non reconnu.")
    psychologist = api.token("psychologist", sub=refused.owner_sub)
    fields["practices"] = [refused.fields.practices[0].model_dump(mode="json")]
    conventioned = api.create_candidature(psychologist, fields).json()
    assert conventioned["previous_candidature_id"] == refused.id
    _advance(conventioned["id"], "in_review")
    decide(conventioned["id"], "accept")
    decide(conventioned["id"], "deconvention", reason="Cessation d'activité déclarée.")
    latest = api.create_candidature(psychologist, fields).json()
    assert latest["previous_candidature_id"] == conventioned["id"]

    keys = Keyboard(page)
    page.goto("/admin/")
    page.fill("#token", api.token("reviewer", sub="rev-lineage", departments=DEPARTMENT))
    keys.tab_to("#signin-form button[type=submit]")
    keys.press("Enter")
    page.get_by_role("heading", name="File d'instruction").wait_for()
    page.evaluate("id => { location.hash = '#/candidatures/' + id; }", latest["id"])
    page.get_by_role("heading", name="Candidature de Mme Hélène Henry").wait_for()
    page.wait_for_function("() => document.querySelectorAll('#lineage > li').length === 3")
    entries = page.locator("#lineage > li").all_inner_texts()
    assert "Candidature affichée — Brouillon" in entries[0]
    assert "Déconventionnement" in entries[1] and "Cessation d'activité déclarée." in entries[1]
    assert "conventionné du" in entries[1]
    assert "Refus" in entries[2] and "Diplôme non reconnu." in entries[2]
    assert "jamais conventionné" in entries[2]
    check_accessibility(page, screenshots, "20-historique-du-psychologue")

    keys.tab_to(f"#lineage a[href='#/candidatures/{conventioned['id']}']")
    keys.press("Enter")
    page.wait_for_function("id => location.hash.endsWith(id)", arg=conventioned["id"])
    page.wait_for_function("() => document.querySelectorAll('#lineage > li').length === 2")
    assert keys.focused("#candidature-title")
    assert "Déconventionnée" in page.inner_text("#candidature-status")
    assert "Diplôme non reconnu." in page.locator("#lineage > li").nth(1).inner_text()
    check_accessibility(page, screenshots, "21-candidature-precedente")


def test_an_admin_reads_a_psychologists_access_journal_with_the_keyboard_only(
    page, api, screenshots, conventioned, new_patient
):
    sub, token = conventioned()
    patients = [new_patient() for _ in range(27)]
    for patient in patients:
        assert api.call("POST", "/v1/sessions/quota", token=token, json=patient).status_code == 200
    declared = api.declare_session(token, {"patient": patients[0], "date": programme_today_iso()})
    assert declared.status_code == 201, declared.text
    refused = api.declare_session(token, {"patient": patients[0], "date": "2099-01-01"})
    assert refused.status_code == 422
    keys = Keyboard(page)

    page.goto("/admin/")
    page.get_by_role("heading", name="Connexion").wait_for()
    keys.tab_to("#token")
    keys.type(api.token("admin", sub="admin-browser"))
    keys.tab_to("#signin-form button[type=submit]")
    keys.press("Enter")
    page.get_by_role("heading", name="File d'instruction").wait_for()
    keys.tab_to("#journal-link a")
    keys.press("Enter")
    page.get_by_role("heading", name="Journal d'accès").wait_for()
    assert keys.focused("#journal-title")
    check_accessibility(page, screenshots, "11-journal")

    keys.tab_to("#journal-form button[type=submit]")  # no account given: said next to the field
    keys.press("Enter")
    assert keys.focused("#journal-sub")
    assert page.get_attribute("#journal-sub", "aria-invalid") == "true"
    assert "journal-sub-error" in page.get_attribute("#journal-sub", "aria-describedby")
    check_accessibility(page, screenshots, "12-journal-erreur")

    keys.type(sub)
    keys.tab_to("#journal-form button[type=submit]")
    keys.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#journal-rows tr').length === 25")
    assert page.get_attribute("#journal-sub", "aria-invalid") is None
    first_rows = page.locator("#journal-rows tr").all_inner_texts()
    assert "Déclaration de séance" in first_rows[0] and "Refusée : données invalides" in first_rows[0]
    assert "Déclaration de séance" in first_rows[1] and "Acceptée" in first_rows[1]
    assert "Consultation du quota" in first_rows[2]
    assert not [row for row in first_rows if patients[0]["nir"][:13] in row]
    check_accessibility(page, screenshots, "13-journal-entrees")

    keys.tab_to("#journal-more")  # older entries, appended; focus moves to the first of them
    keys.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#journal-rows tr').length === 29")
    assert keys.focused("#journal-rows tr:nth-child(26) th")
    assert page.is_hidden("#journal-more")
    assert "29 accès affichés" in page.inner_text("#journal-summary")
    check_accessibility(page, screenshots, "14-journal-suite")
    assert not page.problems, page.problems


def programme_today_iso() -> str:
    from msp.clock import programme_today

    return programme_today().isoformat()


def test_an_admin_sets_a_reviewers_departments_with_the_keyboard_only(page, api, stack, screenshots):
    reviewer_sub = f"rev-page-{uuid.uuid4().hex[:8]}"
    api.token("reviewer", sub=reviewer_sub, departments="13")  # assigned once already, by another admin
    keys = Keyboard(page)
    page.goto("/admin/")
    page.get_by_role("heading", name="Connexion").wait_for()
    keys.tab_to("#token")
    keys.type(api.token("admin", sub="admin-page"))
    keys.tab_to("#signin-form button[type=submit]")
    keys.press("Enter")
    page.get_by_role("heading", name="File d'instruction").wait_for()
    page.wait_for_function("() => !document.querySelector('#queue-summary').textContent.startsWith('Chargement')")

    keys.tab_to("#reviewers-link", backwards=True)
    keys.press("Enter")
    page.get_by_role("heading", name="Départements des instructeurs").wait_for()
    assert keys.focused("#reviewers-title")
    check_accessibility(page, screenshots, "11-instructeurs")

    keys.tab_to("#reviewer-sub")
    keys.type(reviewer_sub)
    keys.press("Enter")
    page.wait_for_function(
        "s => document.querySelector('#reviewer-scope-title').textContent.includes(s)", arg=reviewer_sub
    )
    assert keys.focused("#reviewer-scope-title")
    assert page.input_value("#scope-departments") == "13"
    assert "département 13" in page.inner_text("#scope-history")

    keys.tab_to("#scope-departments")
    page.keyboard.press("Control+A")
    keys.type("75, 2a, 99")  # 99 is no department: refused next to the field
    keys.press("Enter")
    assert keys.focused("#scope-departments")
    assert page.get_attribute("#scope-departments", "aria-invalid") == "true"
    assert "99" in page.inner_text("#scope-departments-error")
    check_accessibility(page, screenshots, "12-instructeur-erreur")

    page.keyboard.press("Control+A")
    keys.type("75, 2a")
    keys.tab_to("#scope-submit")
    keys.press("Enter")
    wait_notice(page, "success", "Les départements de l'instructeur sont enregistrés")
    assert keys.focused("#flash")
    assert "départements 2A, 75" in page.inner_text("#scope-history")
    check_accessibility(page, screenshots, "13-instructeur-enregistre")

    # The reviewer's next token carries what the admin set.
    token = api.issuer.mint("reviewer", sub=reviewer_sub)
    history = api.call("GET", f"/v1/admin/reviewers/{reviewer_sub}/departments", token=api.token("admin")).json()
    assert history["history"][-1]["actor"] == "admin-page" and history["scope"]["departments"] == ["2A", "75"]
    queue = api.call("GET", "/v1/review/candidatures", token=token, params={"department": "2A"})
    assert queue.status_code == 200
    assert not page.problems, page.problems
