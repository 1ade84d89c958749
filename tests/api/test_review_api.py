"""Review routes through the local gateway: scope, transitions, audit trail, convention, directory, e-mails."""

from __future__ import annotations

import uuid

import boto3
import pytest
import requests

from infra.api_client import SAMPLE_PDF
from msp.clock import programme_today


def _transition(api, token, candidature_id, action, version, reason=None):
    body = {"action": action, "expected_version": version}
    if reason is not None:
        body["reason"] = reason
    return api.call("POST", f"/v1/candidatures/{candidature_id}/transitions", token=token, json=body)


def _directory_items(stack, psychologist_id):
    """The psychologist's items in the directory: practices, then the public profile (pk PSYCHOLOGIST#)."""
    client = boto3.client("dynamodb", region_name="eu-west-3")
    table = stack.names.table("DirectoryTable")
    items = client.scan(TableName=table)["Items"]  # test inspection only; the API never scans
    from msp.storage.directory import practice_from_item

    practices = [i for i in items if "listing" in i]
    mine = [i for i in practices if practice_from_item(i["pk"]["S"], i).psychologist_id == psychologist_id]
    return mine + [i for i in items if i["pk"]["S"] == f"PSYCHOLOGIST#{psychologist_id}"]


def _convention(owner_sub):
    from msp.storage.candidatures import candidature_store

    return candidature_store().convention(owner_sub)


def _outbox(stack, candidature_id):
    stack.events.wait_idle()
    if not stack.outbox.exists():
        return []
    return sorted(p.read_text(encoding="utf-8") for p in stack.outbox.glob(f"*-{candidature_id}-v*.eml"))


def test_reviewers_read_in_scope_only_and_get_the_actions_open_to_them(api, make_candidature):
    candidature = make_candidature(department="92")
    path = f"/v1/candidatures/{candidature.id}"
    in_scope = api.call("GET", path, token=api.token("reviewer", departments="75,92"))
    assert in_scope.status_code == 200, in_scope.text
    assert in_scope.json()["allowed_actions"] == ["start_review"]
    assert in_scope.json()["department"] == "92"
    assert api.call("GET", path, token=api.token("reviewer", departments="*")).status_code == 200
    assert api.call("GET", path, token=api.token("admin")).status_code == 200
    out = api.call("GET", path, token=api.token("reviewer", departments="13"))
    assert out.status_code == 404 and out.json()["error"]["code"] == "not_found"
    missing = api.call("GET", f"/v1/candidatures/{uuid.uuid4()}", token=api.token("reviewer", departments="92"))
    assert missing.status_code == 404 and missing.json() == out.json()
    owner = api.call("GET", path, token=api.token("psychologist", sub=candidature.owner_sub))
    assert owner.status_code == 200 and "allowed_actions" not in owner.json()


def test_full_review_with_info_request_acceptance_and_deconvention(api, stack, make_candidature):
    candidature = make_candidature(department="13")
    cid, owner = candidature.id, api.token("psychologist", sub=candidature.owner_sub)
    reviewer = api.token("reviewer", sub="rev-" + uuid.uuid4().hex[:6], departments="13")

    started = _transition(api, reviewer, cid, "start_review", 1)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_review" and started.json()["version"] == 2

    no_reason = _transition(api, reviewer, cid, "request_info", 2, reason="  ")
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["details"][0]["field"] == "reason"

    asked = _transition(api, reviewer, cid, "request_info", 2, reason="Diplôme illisible : merci de le renvoyer.")
    assert asked.status_code == 200 and asked.json()["status"] == "info_requested"

    # the psychologist sees the reason, edits and resubmits
    seen = api.call("GET", f"/v1/candidatures/{cid}", token=owner).json()
    assert seen["status_reason"] == "Diplôme illisible : merci de le renvoyer."
    edited = api.call(
        "PATCH", f"/v1/candidatures/{cid}", token=owner, json={"experience_years": 12}, headers={"If-Match": "3"}
    )
    assert edited.status_code == 200, edited.text
    resubmitted = api.call("POST", f"/v1/candidatures/{cid}/submit", token=owner)
    assert resubmitted.status_code == 200 and resubmitted.json()["status"] == "submitted"
    assert resubmitted.json()["status_reason"] is None

    version = resubmitted.json()["version"]
    assert _transition(api, reviewer, cid, "start_review", version).status_code == 200
    accepted = _transition(api, reviewer, cid, "accept", version + 1)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"

    convention = _convention(candidature.owner_sub)
    assert convention == {
        "psychologist_sub": candidature.owner_sub,
        "status": "accepted",
        "candidature_id": cid,
        "psychologist_id": cid,
        "department": "13",
        "updated_at": accepted.json()["updated_at"],
        "start_date": accepted.json()["convention_start"],
    }
    listed = _directory_items(stack, cid)
    assert len(listed) == 2  # the practice and the public profile
    assert listed[1]["pk"]["S"] == f"PSYCHOLOGIST#{cid}"
    from msp.directory.listing import listing_items_for

    (expected,) = listing_items_for(cid, candidature.fields)
    assert (listed[0]["pk"]["S"], listed[0]["sk"]["S"]) == (expected.partition, expected.sort_key)
    from msp.storage.directory import practice_from_item

    assert practice_from_item(listed[0]["pk"]["S"], listed[0]) == expected
    assert listed[0]["sk"]["S"].endswith(f"#{cid}-1")

    ended = _transition(api, reviewer, cid, "deconvention", version + 2, reason="Cessation d'activité déclarée.")
    assert ended.status_code == 200 and ended.json()["status"] == "deconventioned"
    ended_convention = _convention(candidature.owner_sub)
    assert ended_convention["status"] == "deconventioned"
    assert ended_convention["end_date"] == ended.json()["convention_end"] == ended_convention["start_date"]
    assert _directory_items(stack, cid) == []

    history = api.call("GET", f"/v1/candidatures/{cid}/history", token=reviewer)
    assert history.status_code == 200
    events = history.json()["events"]
    assert [e["action"] for e in events] == [
        "fixture",
        "start_review",
        "request_info",
        "submit",
        "start_review",
        "accept",
        "deconvention",
    ]
    assert [e["version"] for e in events] == sorted(e["version"] for e in events)
    assert events[2]["reason"] == "Diplôme illisible : merci de le renvoyer."
    assert events[2]["role"] == "reviewers" and events[2]["actor"].startswith("rev-")
    assert events[3]["role"] == "psychologists" and events[3]["from_status"] == "info_requested"

    mails = _outbox(stack, cid)
    # request_info, the resubmission's acknowledgement, accept, deconvention; start_review is not a decision
    assert len(mails) == 4
    joined = "\n".join(mails)
    assert "Subject: Mon soutien psy : nous avons bien reçu votre candidature" in joined
    assert "Subject: Mon soutien psy : des informations complémentaires sont nécessaires" in joined
    assert "Diplôme illisible : merci de le renvoyer." in joined
    assert "Subject: Mon soutien psy : votre candidature est acceptée" in joined
    assert "Cessation d'activité déclarée." in joined
    assert f"To: {candidature.fields.email}" in joined


def test_invalid_and_stale_transitions_get_409_and_change_nothing(api, make_candidature):
    candidature = make_candidature(department="75")
    cid = candidature.id
    reviewer = api.token("reviewer", departments="75")

    invalid = _transition(api, reviewer, cid, "accept", 1)
    assert invalid.status_code == 409
    error = invalid.json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"][0]["allowed_actions"] == ["start_review"]

    stale = _transition(api, reviewer, cid, "start_review", 7)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "version_conflict"
    assert stale.json()["error"]["details"][0]["current_version"] == 1

    after = api.call("GET", f"/v1/candidatures/{cid}", token=reviewer).json()
    assert after["version"] == 1 and after["status"] == "submitted"
    history = api.call("GET", f"/v1/candidatures/{cid}/history", token=reviewer).json()["events"]
    assert [e["action"] for e in history] == ["fixture"]

    for bad in ({"action": "approve", "expected_version": 1}, {"action": "accept"}, {"action": "accept", "x": 1}):
        response = api.call("POST", f"/v1/candidatures/{cid}/transitions", token=reviewer, json=bad)
        assert response.status_code == 422, bad


def test_psychologists_cannot_decide_and_reviewers_cannot_act_out_of_scope(api, make_candidature):
    candidature = make_candidature(department="75", status="in_review")
    owner = api.token("psychologist", sub=candidature.owner_sub)
    assert _transition(api, owner, candidature.id, "accept", 1).status_code == 403
    outsider = api.token("reviewer", departments="92")
    assert _transition(api, outsider, candidature.id, "accept", 1).status_code == 404
    reviewer = api.token("reviewer", departments="75")
    assert _transition(api, reviewer, candidature.id, "submit", 1).status_code == 403
    assert api.call("GET", f"/v1/candidatures/{candidature.id}/history", token=owner).status_code == 403
    assert api.call("GET", f"/v1/candidatures/{candidature.id}/history", token=outsider).status_code == 404


def test_a_second_accepted_candidature_of_the_same_psychologist_is_refused(api, make_candidature):
    first = make_candidature(department="75", status="accepted")
    second = make_candidature(department="75", status="in_review", owner_sub=first.owner_sub)
    response = _transition(api, api.token("admin"), second.id, "accept", 1)
    assert response.status_code == 409 and response.json()["error"]["code"] == "already_conventioned"
    assert api.call("GET", f"/v1/candidatures/{second.id}", token=api.token("admin")).json()["version"] == 1


def test_decision_events_carry_identifiers_only_and_e_mails_are_sent_once(api, stack, make_candidature):
    candidature = make_candidature(department="2A", status="in_review")
    response = _transition(api, api.token("admin"), candidature.id, "reject", 1, reason="Dossier incomplet.")
    assert response.status_code == 200
    stack.events.wait_idle()
    (function, event), *_ = [d for d in stack.events.delivered if d[1]["detail"]["candidature_id"] == candidature.id]
    assert function == "NotifyDecisionFunction"
    assert event["source"] == "msp.review" and event["detail-type"] == "CandidatureDecision"
    assert set(event["detail"]) == {"candidature_id", "version", "action", "to_status", "at"}
    # EventBridge delivers at least once: a redelivery sends nothing more
    assert stack.runtime.invoke("NotifyDecisionFunction", event) == {"sent": False}
    (mail,) = _outbox(stack, candidature.id)
    assert "Subject: Mon soutien psy : votre candidature n'a pas été retenue" in mail
    assert "Dossier incomplet." in mail and "Bonjour" in mail


def test_document_download_urls_are_short_lived_and_for_owner_and_scope_only(api, make_candidature):
    candidature = make_candidature(department="92", files=True)
    document = candidature.documents[0]
    path = f"/v1/candidatures/{candidature.id}/documents/{document.document_id}"
    for token in (
        api.token("psychologist", sub=candidature.owner_sub),
        api.token("reviewer", departments="92"),
        api.token("admin"),
    ):
        response = api.call("GET", path, token=token)
        assert response.status_code == 200, response.text
        ticket = response.json()
        assert ticket["expires_in"] <= 300 and "X-Amz-Expires=300" in ticket["url"]
        download = requests.get(ticket["url"], timeout=10)
        assert download.status_code == 200 and download.content == SAMPLE_PDF
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment;")  # saved, never shown by the browser
    for token in (api.token("psychologist"), api.token("reviewer", departments="75")):
        assert api.call("GET", path, token=token).status_code == 404
    unknown = api.call("GET", f"/v1/candidatures/{candidature.id}/documents/{uuid.uuid4()}", token=api.token("admin"))
    assert unknown.status_code == 404


def test_pending_documents_cannot_be_downloaded(api, psychologist, unique_fields):
    _, token = psychologist
    created = api.create_candidature(token, unique_fields()).json()
    ticket = api.call(
        "POST",
        f"/v1/candidatures/{created['id']}/documents",
        token=token,
        json={"kind": "diploma", "content_type": "application/pdf", "size": 100},
    ).json()
    response = api.call("GET", f"/v1/candidatures/{created['id']}/documents/{ticket['document_id']}", token=token)
    assert response.status_code == 409 and response.json()["error"]["code"] == "document_not_available"


# ---------------------------------------------------------------- queue


def _queue(api, token, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.call("GET", f"/v1/review/candidatures?{query}", token=token)


def test_queue_merges_departments_oldest_first_across_pages(api, make_candidature):
    made = [make_candidature(department=dept) for dept in ("29", "56", "29", "22", "56", "29", "56")]
    other = make_candidature(department="35")  # same status, outside the reviewer's scope
    reviewer = api.token("reviewer", departments="29,56,22")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"status": "submitted", "limit": 3} | ({"cursor": cursor} if cursor else {})
        response = _queue(api, reviewer, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["results"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [e["id"] for e in seen] == [c.id for c in made]
    assert pages == 3 and other.id not in {e["id"] for e in seen}
    first = seen[0]
    assert first["department"] == "29" and first["status"] == "submitted" and first["last_name"]
    assert [e["submitted_at"] for e in seen] == sorted(e["submitted_at"] for e in seen)

    only_56 = _queue(api, reviewer, department="56").json()["results"]
    assert [e["id"] for e in only_56] == [c.id for c in made if c.department == "56"]


def test_queue_of_national_scope_uses_one_index_and_filters_by_status(api, make_candidature):
    made = make_candidature(department="85", status="info_requested")
    for token in (api.token("admin"), api.token("reviewer", departments="*")):
        ids = []
        cursor = None
        while True:
            params = {"status": "info_requested", "limit": 100} | ({"cursor": cursor} if cursor else {})
            body = _queue(api, token, **params).json()
            ids += [e["id"] for e in body["results"]]
            assert all(e["status"] == "info_requested" for e in body["results"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert made.id in ids
    assert made.id not in {e["id"] for e in _queue(api, api.token("admin"), department="85").json()["results"]}


def test_queue_cursors_are_tamper_evident_and_bound_to_their_filters(api, make_candidature):
    for _ in range(3):
        make_candidature(department="46")
    reviewer = api.token("reviewer", departments="46,47")
    cursor = _queue(api, reviewer, limit=1).json()["next_cursor"]
    assert cursor
    payload, mac = cursor.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    for bad in (forged, cursor + "x", "not-a-cursor", cursor.replace(".", "")):
        response = _queue(api, reviewer, cursor=bad, limit=1)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_cursor"
    assert _queue(api, reviewer, cursor=cursor, limit=1, department="46").status_code == 400
    assert _queue(api, reviewer, cursor=cursor, limit=1, status="in_review").status_code == 400
    assert _queue(api, api.token("reviewer", departments="46"), cursor=cursor, limit=1).status_code == 400
    assert _queue(api, reviewer, cursor=cursor, limit=1).status_code == 200


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"status": "draft"}, 422, "validation_error"),
        ({"status": "nope"}, 422, "validation_error"),
        ({"department": "99"}, 422, "validation_error"),
        ({"limit": "0"}, 422, "validation_error"),
        ({"limit": "1000"}, 422, "validation_error"),
        ({"department": "13"}, 403, "out_of_scope"),
    ],
)
def test_queue_refuses_bad_filters(api, params, status, code):
    response = _queue(api, api.token("reviewer", departments="75"), **params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_queue_is_for_reviewers_and_admins(api):
    assert _queue(api, api.token("psychologist")).status_code == 403
    assert api.call("GET", "/v1/review/candidatures").status_code == 401
    assert _queue(api, api.token("reviewer", departments="")).json() == {"results": [], "next_cursor": None}


def test_acceptance_lets_the_psychologist_declare_sessions_until_deconvention(api, make_candidature):
    import datetime as dt
    import random

    from tests.conftest import nir_for

    candidature = make_candidature(department="92", status="in_review")
    place = f"{random.SystemRandom().randint(1, 19):02d}{random.SystemRandom().randint(1, 999):03d}"
    nir = nir_for(dt.date(1990, 5, 14), place=place, order=f"{random.SystemRandom().randint(1, 999):03d}")
    owner = api.token("psychologist", sub=candidature.owner_sub)
    admin = api.token("admin")
    session = {
        "patient": {"nir": nir, "birth_date": "1990-05-14"},
        "date": programme_today().isoformat(),
    }
    assert api.declare_session(owner, session).status_code == 403  # not conventioned yet
    assert _transition(api, admin, candidature.id, "accept", 1).status_code == 200
    assert api.declare_session(owner, session).status_code == 201  # the convention starts on the decision's day
    yesterday = {**session, "date": (programme_today() - dt.timedelta(days=1)).isoformat()}
    before = api.declare_session(owner, yesterday)
    assert before.status_code == 422 and before.json()["error"]["details"][0]["field"] == "date"
    assert _transition(api, admin, candidature.id, "deconvention", 2, reason="Radiation.").status_code == 200
    refused = api.declare_session(owner, session)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_conventioned"


def test_every_download_is_in_the_audit_trail_with_who_asked_and_leaves_the_version_alone(api, make_candidature):
    candidature = make_candidature(department="92", files=True)
    identity = next(d for d in candidature.documents if d.kind.value == "identity")
    reviewer_sub = f"rev-{uuid.uuid4().hex[:8]}"
    reviewer = api.token("reviewer", sub=reviewer_sub, departments="92")
    path = f"/v1/candidatures/{candidature.id}/documents/{identity.document_id}"
    assert api.call("GET", path, token=reviewer).status_code == 200
    assert api.call("GET", path, token=api.token("psychologist", sub=candidature.owner_sub)).status_code == 200
    assert api.call("GET", path, token=api.token("reviewer", departments="75")).status_code == 404  # not recorded

    events = api.call("GET", f"/v1/candidatures/{candidature.id}/history", token=reviewer).json()["events"]
    downloads = [e for e in events if e["action"] == "download_document"]
    assert [(e["actor"], e["role"], e["reason"]) for e in downloads] == [
        (reviewer_sub, "reviewers", f"identity {identity.document_id}"),
        (candidature.owner_sub, "psychologists", f"identity {identity.document_id}"),
    ]
    assert all(e["version"] == candidature.version and e["to_status"] == "submitted" for e in downloads)
    # The candidature's version did not move: a decision at the version read still goes through.
    decided = api.call(
        "POST",
        f"/v1/candidatures/{candidature.id}/transitions",
        token=reviewer,
        json={"action": "start_review", "expected_version": candidature.version},
    )
    assert decided.status_code == 200, decided.text
