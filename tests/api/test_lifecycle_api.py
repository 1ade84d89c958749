"""A psychologist's life after acceptance, through the local gateway: their account, listing edits and availability,
leaving and coming back, the reviewers' dated deconvention and the daily end of conventions, and the e-mails.

The module runs on an AppTable and a DirectoryTable of its own (`own_tables`), so after every scenario the whole
directory is checked against every accepted candidature (tests/directory_consistency.py).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest

from infra.api_client import SAMPLE_PDF
from msp.clock import programme_today
from tests.directory_consistency import assert_directory_consistent

OTHER_PARIS_PRACTICE = {
    "address": "5 rue de Lyon",
    "postcode": "75012",
    "city": "Paris",
    "department": "75",
    "lat": 48.8443,
    "lon": 2.3744,
}
LYON_PRACTICE = {
    "address": "12 quai Saint-Antoine",
    "postcode": "69002",
    "city": "Lyon",
    "department": "69",
    "lat": 45.7629,
    "lon": 4.8301,
}


@pytest.fixture(autouse=True)
def consistent_directory(own_tables):
    """Every scenario ends with a directory that matches the accepted candidatures exactly."""
    yield
    assert_directory_consistent(own_tables["AppTable"], own_tables["DirectoryTable"])


@pytest.fixture(autouse=True)
def search_reads_the_directory(own_tables, monkeypatch):
    """These scenarios check what the directory holds after each edit, so the search function keeps nothing in
    its cache here; the cache's freshness contract (at most the public max-age) is tested on its own."""
    from msp.storage.directory_cache import cached_directory_store

    monkeypatch.setattr(cached_directory_store(), "max_age", 0)


def _transition(api, token, candidature_id, action, version, **extra):
    body = {"action": action, "expected_version": version} | extra
    return api.call("POST", f"/v1/candidatures/{candidature_id}/transitions", token=token, json=body)


@pytest.fixture
def accepted(api, make_candidature):
    """make(department="75", **field overrides) -> (candidature id, the psychologist's token, their sub), accepted
    by an admin through the API (so convention and listing are written as in production)."""

    def make(department: str = "75", **overrides):
        candidature = make_candidature(status="in_review", department=department, **overrides)
        response = _transition(api, api.token("admin"), candidature.id, "accept", candidature.version)
        assert response.status_code == 200, response.text
        return candidature.id, api.token("psychologist", sub=candidature.owner_sub), candidature.owner_sub

    return make


def _search(api, lat, lon, **filters):
    params = {"lat": str(lat), "lon": str(lon), "radius_km": "3"} | filters
    response = api.call("GET", "/v1/psychologists/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _outbox(stack, pattern):
    stack.events.wait_idle()
    return sorted(p.read_text(encoding="utf-8") for p in stack.outbox.glob(pattern)) if stack.outbox.exists() else []


# ---------------------------------------------------------------- GET /v1/me


def test_me_lists_the_callers_candidatures_current_first_with_the_convention(api, make_candidature, accepted):
    psychologist_id, token, sub = accepted()
    older = make_candidature(status="withdrawn", owner_sub=sub)
    me = api.call("GET", "/v1/me", token=token)
    assert me.status_code == 200, me.text
    body = me.json()
    assert [c["id"] for c in body["candidatures"]] == [psychologist_id, older.id]
    assert body["candidatures"][0]["status"] == "accepted"
    assert body["convention"]["status"] == "accepted"
    assert body["convention"]["candidature_id"] == psychologist_id
    assert body["convention"]["start_date"] == programme_today().isoformat()
    assert body["convention"]["end_date"] is None

    stranger = api.call("GET", "/v1/me", token=api.token("psychologist", sub=f"psy-{uuid.uuid4().hex[:8]}"))
    assert stranger.status_code == 200 and stranger.json() == {
        "sub": stranger.json()["sub"],
        "candidatures": [],
        "convention": None,
    }
    assert api.call("GET", "/v1/me", token=api.token("reviewer", departments="75")).status_code == 403
    assert api.call("GET", "/v1/me").status_code == 401


# ---------------------------------------------------------------- listing edits


def test_a_listing_edit_relists_at_once_and_is_audited(api, accepted):
    psychologist_id, token, _ = accepted(public_phone="+33612345678")
    read = api.call("GET", "/v1/me/listing", token=token)
    assert read.status_code == 200, read.text
    listing = read.json()
    assert read.headers["ETag"] == f'"{listing["version"]}"'
    (first,) = listing["practices"]
    assert first["practice_id"] == f"{psychologist_id}-1"
    assert [r for r in _search(api, first["lat"], first["lon"]) if r["psychologist_id"] == psychologist_id]

    edit = {
        "public_phone": "+33698765432",
        "languages": ["fr", "es"],
        "practices": [OTHER_PARIS_PRACTICE, LYON_PRACTICE],
    }
    changed = api.call("PATCH", "/v1/me/listing", token=token, json=edit, headers={"If-Match": str(listing["version"])})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["version"] == listing["version"] + 1
    assert [p["city"] for p in after["practices"]] == ["Paris", "Lyon"]

    # The old place is gone from the search, both new ones are found, with the new contact details.
    near_old = [r for r in _search(api, first["lat"], first["lon"]) if r["psychologist_id"] == psychologist_id]
    assert [r["address"] for r in near_old] == (["5 rue de Lyon"] if _km(first, OTHER_PARIS_PRACTICE) < 3 else [])
    (in_lyon,) = [r for r in _search(api, 45.7629, 4.8301) if r["psychologist_id"] == psychologist_id]
    assert in_lyon["phone"] == "+33698765432" and in_lyon["languages"] == ["fr", "es"]
    profile = api.call("GET", f"/v1/psychologists/{psychologist_id}").json()
    assert [p["city"] for p in profile["practices"]] == ["Paris", "Lyon"] and profile["phone"] == "+33698765432"

    history = api.call(
        "GET", f"/v1/candidatures/{psychologist_id}/history", token=api.token("reviewer", departments="75")
    ).json()["events"]
    assert history[-1]["action"] == "edit_listing" and history[-1]["role"] == "psychologists"
    assert history[-1]["changed_fields"] == ["languages", "practices", "public_phone"]
    assert history[-1]["from_status"] == history[-1]["to_status"] == "accepted"

    # Removing a practice: it leaves the directory, the other stays.
    removed = api.call(
        "PATCH",
        "/v1/me/listing",
        token=token,
        json={"practices": [LYON_PRACTICE]},
        headers={"If-Match": str(after["version"])},
    )
    assert removed.status_code == 200, removed.text
    assert not [r for r in _search(api, 48.8443, 2.3744) if r["psychologist_id"] == psychologist_id]


def _km(a, b) -> float:
    from msp.directory.spherical import haversine_km

    return haversine_km(a["lat"], a["lon"], b["lat"], b["lon"])


def test_a_listing_edit_refuses_identity_fields_stale_versions_and_an_empty_listing(api, accepted):
    _, token, _ = accepted()
    version = api.call("GET", "/v1/me/listing", token=token).json()["version"]

    identity = api.call(
        "PATCH",
        "/v1/me/listing",
        token=token,
        json={"last_name": "Autre", "phone": "+33600000000"},
        headers={"If-Match": str(version)},
    )
    assert identity.status_code == 422
    error = identity.json()["error"]
    assert error["code"] == "identity_locked" and "reviewer" in error["message"]
    assert {d["field"] for d in error["details"]} == {"last_name", "phone"}

    for empty in ({"practices": []}, {"practices": None}, {"languages": None}):
        refused = api.call("PATCH", "/v1/me/listing", token=token, json=empty, headers={"If-Match": str(version)})
        assert refused.status_code == 422, (empty, refused.text)

    stale = api.call(
        "PATCH", "/v1/me/listing", token=token, json={"teleconsultation": False}, headers={"If-Match": "1"}
    )
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "version_mismatch"
    unversioned = api.call("PATCH", "/v1/me/listing", token=token, json={"teleconsultation": False})
    assert unversioned.status_code == 428
    assert api.call("GET", "/v1/me/listing", token=token).json()["version"] == version


def test_only_the_conventioned_psychologist_reads_or_edits_their_listing(api, accepted, make_candidature):
    accepted()
    not_yet = make_candidature(status="submitted")
    candidate = api.token("psychologist", sub=not_yet.owner_sub)
    for method, extra in (("GET", {}), ("PATCH", {"json": {"teleconsultation": True}, "headers": {"If-Match": "1"}})):
        refused = api.call(method, "/v1/me/listing", token=candidate, **extra)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_conventioned", method
        for role in ("reviewer", "admin"):
            token = api.token(role, departments="75")
            assert api.call(method, "/v1/me/listing", token=token, **extra).status_code == 403
        assert api.call(method, "/v1/me/listing", **extra).status_code == 401


# ---------------------------------------------------------------- availability


def test_availability_shows_in_search_and_profile_and_filters_the_search(api, accepted):
    psychologist_id, token, _ = accepted()
    listing = api.call("GET", "/v1/me/listing", token=token).json()
    assert listing["accepting_new_patients"] is True
    (practice,) = listing["practices"]
    mine = lambda results: [r for r in results if r["psychologist_id"] == psychologist_id]  # noqa: E731
    assert mine(_search(api, practice["lat"], practice["lon"]))[0]["accepting_new_patients"] is True

    until = (programme_today() + dt.timedelta(days=30)).isoformat()
    full = api.call(
        "PATCH",
        "/v1/me/listing",
        token=token,
        json={"accepting_new_patients": False, "full_until": until},
        headers={"If-Match": str(listing["version"])},
    )
    assert full.status_code == 200, full.text
    assert full.json()["accepting_new_patients"] is False and full.json()["full_until"] == until
    (found,) = mine(_search(api, practice["lat"], practice["lon"]))
    assert found["accepting_new_patients"] is False  # still listed: not taking patients does not unlist
    assert not mine(_search(api, practice["lat"], practice["lon"], accepting="true"))
    assert mine(_search(api, practice["lat"], practice["lon"], accepting="false"))
    profile = api.call("GET", f"/v1/psychologists/{psychologist_id}").json()
    assert profile["accepting_new_patients"] is False and profile["full_until"] == until

    past = api.call(
        "PATCH",
        "/v1/me/listing",
        token=token,
        json={"full_until": programme_today().isoformat()},
        headers={"If-Match": str(full.json()["version"])},
    )
    assert past.status_code == 422 and past.json()["error"]["details"][0]["field"] == "full_until"
    again = api.call(
        "PATCH",
        "/v1/me/listing",
        token=token,
        json={"accepting_new_patients": True},
        headers={"If-Match": str(full.json()["version"])},
    )
    assert again.status_code == 200 and again.json()["full_until"] is None
    assert mine(_search(api, practice["lat"], practice["lon"], accepting="true"))


# ---------------------------------------------------------------- an edit racing a deconvention


def _race_edit_against_deconvention(api, psychologist_id: str, token: str, version: int) -> dict[str, int]:
    """The psychologist's edit and an admin's deconvention, both based on `version`, sent at the same moment."""
    answers: dict[str, int] = {}
    start = threading.Barrier(2)

    def edit():
        start.wait()
        answers["edit"] = api.call(
            "PATCH",
            "/v1/me/listing",
            token=token,
            json={"practices": [LYON_PRACTICE]},
            headers={"If-Match": str(version)},
        ).status_code

    def deconvention():
        start.wait()
        answers["deconvention"] = _transition(
            api, api.token("admin"), psychologist_id, "deconvention", version, reason="Cessation d'activité."
        ).status_code

    threads = [threading.Thread(target=edit), threading.Thread(target=deconvention)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_an_edit_racing_a_deconvention_one_wins_and_the_directory_matches_the_winner(api, accepted, own_tables):
    for _ in range(3):
        psychologist_id, token, _ = accepted()
        version = api.call("GET", "/v1/me/listing", token=token).json()["version"]
        answers = _race_edit_against_deconvention(api, psychologist_id, token, version)
        # The deconvention loses with 409 (stale decision); the edit with 412, or 403 once no longer conventioned.
        assert sorted(answers.values()) in ([200, 409], [200, 403], [200, 412]), answers
        status = api.call("GET", f"/v1/candidatures/{psychologist_id}", token=api.token("admin")).json()["status"]
        assert status == ("deconventioned" if answers["deconvention"] == 200 else "accepted")
        listed = api.call("GET", f"/v1/psychologists/{psychologist_id}")
        if status == "accepted":
            assert [p["city"] for p in listed.json()["practices"]] == ["Lyon"]
        else:
            assert listed.status_code == 404
        assert_directory_consistent(own_tables["AppTable"], own_tables["DirectoryTable"])


# ---------------------------------------------------------------- leaving and coming back


def test_resigning_today_unlists_frees_the_identifier_and_tells_the_reviewers(api, stack, accepted, unique_fields):
    fields = unique_fields()
    psychologist_id, token, _ = accepted(identifier=fields["identifier"])
    today = programme_today().isoformat()
    past = api.call("POST", "/v1/convention/resign", token=token, json={"effective_date": "2020-01-01"})
    assert past.status_code == 422 and past.json()["error"]["details"][0]["field"] == "effective_date"

    resigned = api.call(
        "POST", "/v1/convention/resign", token=token, json={"effective_date": today, "reason": "Départ en retraite."}
    )
    assert resigned.status_code == 200, resigned.text
    assert resigned.json()["status"] == "deconventioned" and resigned.json()["convention_end"] == today
    assert api.call("GET", f"/v1/psychologists/{psychologist_id}").status_code == 404
    me = api.call("GET", "/v1/me", token=token).json()
    assert me["convention"]["status"] == "deconventioned" and me["convention"]["end_date"] == today
    again = api.call("POST", "/v1/convention/resign", token=token, json={"effective_date": today})
    assert again.status_code == 403 and again.json()["error"]["code"] == "not_conventioned"

    (mail,) = _outbox(stack, f"*-{psychologist_id}-v*.eml")[-1:]
    assert "To: instruction@monsoutienpsy.example.fr" in mail and "Départ en retraite." in mail
    assert any(
        function == "NotifyDecisionFunction" and event["detail"]["action"] == "resign"
        for function, event in stack.events.delivered
        if event["detail"].get("candidature_id") == psychologist_id
    )

    # Coming back: the same identifier is free, and the new candidature links the previous one.
    back = api.create_candidature(token, fields)
    assert back.status_code == 201, back.text
    assert back.json()["previous_candidature_id"] == psychologist_id
    me = api.call("GET", "/v1/me", token=token).json()
    assert [c["id"] for c in me["candidatures"]] == [back.json()["id"], psychologist_id]


def test_a_later_end_keeps_the_listing_until_the_daily_job_ends_it(api, stack, accepted, monkeypatch):
    psychologist_id, token, _ = accepted()
    tomorrow = programme_today() + dt.timedelta(days=1)
    later = api.call("POST", "/v1/convention/resign", token=token, json={"effective_date": tomorrow.isoformat()})
    assert later.status_code == 200 and later.json()["status"] == "accepted"
    assert later.json()["convention_end"] == tomorrow.isoformat()
    assert api.call("GET", f"/v1/psychologists/{psychologist_id}").status_code == 200
    assert api.call("GET", "/v1/me", token=token).json()["convention"]["end_date"] == tomorrow.isoformat()
    repeated = api.call("POST", "/v1/convention/resign", token=token, json={"effective_date": tomorrow.isoformat()})
    assert repeated.status_code == 200 and repeated.json()["version"] == later.json()["version"]

    assert stack.runtime.invoke("EndConventionsFunction", {})["ended"] == []  # not due today
    job = stack.runtime.handler("EndConventionsFunction")
    monkeypatch.setattr(__import__(job.__module__, fromlist=["x"]), "programme_today", lambda: tomorrow)
    assert stack.runtime.invoke("EndConventionsFunction", {})["ended"] == [psychologist_id]
    assert stack.runtime.invoke("EndConventionsFunction", {})["ended"] == []  # done once
    ended = api.call("GET", f"/v1/candidatures/{psychologist_id}", token=api.token("admin")).json()
    assert ended["status"] == "deconventioned" and ended["convention_end"] == tomorrow.isoformat()
    assert api.call("GET", f"/v1/psychologists/{psychologist_id}").status_code == 404


def test_a_reviewer_deconventions_from_a_later_date_with_a_reason(api, stack, accepted, monkeypatch):
    psychologist_id, token, _ = accepted()
    reviewer = api.token("reviewer", departments="75")
    current = api.call("GET", f"/v1/candidatures/{psychologist_id}", token=reviewer).json()
    in_a_week = programme_today() + dt.timedelta(days=7)
    wrong = _transition(api, reviewer, psychologist_id, "accept", current["version"], effective_date="2030-01-01")
    assert wrong.status_code == 422
    dated = _transition(
        api,
        reviewer,
        psychologist_id,
        "deconvention",
        current["version"],
        reason="Manquements répétés.",
        effective_date=in_a_week.isoformat(),
    )
    assert dated.status_code == 200, dated.text
    assert dated.json()["status"] == "accepted" and dated.json()["convention_end"] == in_a_week.isoformat()
    assert api.call("GET", f"/v1/psychologists/{psychologist_id}").status_code == 200
    mails = _outbox(stack, f"*-{psychologist_id}-v{dated.json()['version']}.eml")
    assert len(mails) == 1 and in_a_week.strftime("%d/%m/%Y") in mails[0] and "Manquements répétés." in mails[0]

    job = stack.runtime.handler("EndConventionsFunction")
    monkeypatch.setattr(__import__(job.__module__, fromlist=["x"]), "programme_today", lambda: in_a_week)
    assert psychologist_id in stack.runtime.invoke("EndConventionsFunction", {})["ended"]
    assert api.call("GET", "/v1/me", token=token).json()["convention"]["status"] == "deconventioned"


# ---------------------------------------------------------------- notifications


def test_submission_is_acknowledged_and_a_refused_document_is_explained(api, stack, psychologist, unique_fields):
    _, token = psychologist
    created = api.create_candidature(token, unique_fields())
    candidature_id = created.json()["id"]
    api.upload_document(token, candidature_id, "identity", b"not a pdf at all", content_type="application/pdf")
    stack.notifier.deliver_pending()
    (refused,) = _outbox(stack, f"*-{candidature_id}-document-*.eml")
    assert "n'a pas été accepté" in refused and "ni un PDF" in refused

    for kind in ("diploma", "identity", "identifier_proof"):
        upload = api.upload_document(token, candidature_id, kind, SAMPLE_PDF)
        stack.notifier.deliver_pending()
        api.wait_document(token, candidature_id, upload["document_id"])
    submitted = api.call("POST", f"/v1/candidatures/{candidature_id}/submit", token=token)
    assert submitted.status_code == 200, submitted.text
    (ack,) = _outbox(stack, f"*-{candidature_id}-v{submitted.json()['version']}.eml")
    assert "Subject: Mon soutien psy : nous avons bien reçu votre candidature" in ack
    assert f"To: {created.json()['email']}" in ack


def test_reviewers_get_a_daily_digest_of_the_new_candidatures_by_department(api, stack, make_candidature, monkeypatch):
    fresh = [make_candidature(department="75"), make_candidature(department="69"), make_candidature(department="75")]
    job = stack.runtime.handler("SendReviewDigestFunction")
    monkeypatch.setattr(
        __import__(job.__module__, fromlist=["x"]), "programme_today", lambda: programme_today() + dt.timedelta(days=1)
    )
    sent = stack.runtime.invoke("SendReviewDigestFunction", {})
    assert sent["candidatures"] >= 3
    (digest,) = _outbox(stack, f"*-digest-{programme_today().isoformat()}-all.eml")
    assert "Département 69" in digest and "Département 75" in digest
    assert all(c.id in digest for c in fresh)
    assert stack.runtime.invoke("SendReviewDigestFunction", {})["candidatures"] == 0  # once a day
