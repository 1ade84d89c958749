"""The candidature and session use cases on in-memory fakes of their ports: what each decides, without AWS."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from infra.api_client import SAMPLE_PDF
from infra.seed import demo_fields, practice_in, rpps_with_key
from msp.auth import Caller, Role
from msp.candidatures.models import CandidatureFields, DocumentKind, DocumentStatus, DocumentUploadRequest, Status
from msp.candidatures.review import TransitionRequest, document_download, transition_candidature
from msp.candidatures.use_cases import (
    create_candidature,
    patch_candidature,
    request_document_upload,
    stored_document_key,
    submit_candidature,
    upload_key,
    verify_uploaded_document,
    withdraw_candidature,
)
from msp.candidatures.workflow import Action
from msp.errors import (
    AlreadyConventioned,
    IdempotencyKeyReused,
    IdentifierTaken,
    IncompleteCandidature,
    InvalidFields,
    LookupLimitReached,
    NotConventioned,
    NotEditable,
    NotFound,
    QuotaExhausted,
    VersionMismatch,
    YearClosed,
)
from msp.sessions import policy
from msp.sessions.declarations import cancel_session, declare_session, patient_quota, record_session
from msp.sessions.journal import JournalEntry
from msp.sessions.rules import PatientKeyring, QuotaQuery, SessionDeclaration, SessionRequest
from tests.conftest import nir_for
from tests.unit.use_case_fakes import (
    InMemoryCandidatures,
    InMemoryDocuments,
    InMemoryJournal,
    InMemorySessions,
    RecordedMetrics,
)


class Published:
    """A bus that takes every event."""

    def publish(self, event) -> bool:
        return True


ADMIN = Caller(sub="admin-1", roles=frozenset({Role.ADMIN}))


def psychologist(sub: str = "psy-1") -> Caller:
    return Caller(sub=sub, roles=frozenset({Role.PSYCHOLOGIST}))


def fields(rpps_body: str = "0000000001", department: str = "75") -> CandidatureFields:
    data = demo_fields(0) | {"practices": [practice_in(department)]}
    data["identifier"] = {"type": "rpps", "value": rpps_with_key(rpps_body)}
    return CandidatureFields.model_validate(data)


def with_verified_documents(store: InMemoryCandidatures, bucket: InMemoryDocuments, caller: Caller, cid: str) -> None:
    for kind in DocumentKind:
        ticket = request_document_upload(
            store, bucket, caller, cid, DocumentUploadRequest(kind=kind, content_type="application/pdf", size=200)
        )
        bucket.put(upload_key(cid, ticket.document_id), SAMPLE_PDF)
        assert (
            verify_uploaded_document(store, bucket, RecordedMetrics(), upload_key(cid, ticket.document_id))
            is DocumentStatus.VERIFIED
        )


def submitted(store, bucket, caller: Caller, rpps_body: str = "0000000001") -> str:
    candidature = create_candidature(store, caller, fields(rpps_body))
    with_verified_documents(store, bucket, caller, candidature.id)
    return submit_candidature(store, Published(), caller, candidature.id).id


def decide(store, candidature_id: str, action: Action, reason: str | None = None):
    current = store.get(candidature_id)
    request = TransitionRequest(action=action, reason=reason, expected_version=current.version)
    return transition_candidature(store, Published(), ADMIN, candidature_id, request)


# ---------------------------------------------------------------- candidatures


def test_an_edit_needs_the_current_version_and_an_editable_status():
    store, bucket, caller = InMemoryCandidatures(), InMemoryDocuments(), psychologist()
    draft = create_candidature(store, caller, fields())
    changes = CandidatureFields.model_validate({"experience_years": 9})
    with pytest.raises(VersionMismatch):
        patch_candidature(store, caller, draft.id, changes, if_match=draft.version + 1)
    edited = patch_candidature(store, caller, draft.id, changes, if_match=draft.version)
    assert (edited.version, edited.fields.experience_years) == (2, 9)
    with_verified_documents(store, bucket, caller, draft.id)
    submit_candidature(store, Published(), caller, draft.id)
    with pytest.raises(NotEditable):
        patch_candidature(store, caller, draft.id, changes, if_match=store.get(draft.id).version)


def test_another_psychologists_candidature_answers_like_a_missing_one():
    store = InMemoryCandidatures()
    draft = create_candidature(store, psychologist("psy-1"), fields())
    with pytest.raises(NotFound):
        withdraw_candidature(store, psychologist("psy-2"), draft.id)
    assert store.get(draft.id).status is Status.DRAFT


def test_submission_lists_what_is_missing_and_a_withdrawal_frees_the_identifier():
    store, bucket, caller = InMemoryCandidatures(), InMemoryDocuments(), psychologist()
    draft = create_candidature(store, caller, fields())
    with pytest.raises(IncompleteCandidature) as refused:
        submit_candidature(store, Published(), caller, draft.id)
    assert {detail["field"] for detail in refused.value.details} == {f"documents.{kind.value}" for kind in DocumentKind}
    with_verified_documents(store, bucket, caller, draft.id)
    assert submit_candidature(store, Published(), caller, draft.id).status is Status.SUBMITTED
    with pytest.raises(IdentifierTaken):
        submitted(store, bucket, psychologist("psy-2"))
    withdraw_candidature(store, caller, draft.id)
    assert store.get(submitted(store, bucket, psychologist("psy-2"))).status is Status.SUBMITTED


def test_an_upload_that_is_not_what_it_claims_is_rejected_and_never_stored():
    store, bucket, caller = InMemoryCandidatures(), InMemoryDocuments(), psychologist()
    draft = create_candidature(store, caller, fields())
    request = DocumentUploadRequest(kind=DocumentKind.DIPLOMA, content_type="application/pdf", size=200)
    ticket = request_document_upload(store, bucket, caller, draft.id, request)
    key = upload_key(draft.id, ticket.document_id)
    bucket.put(key, b"MZ\x90\x00 an executable renamed .pdf")
    metrics = RecordedMetrics()
    assert verify_uploaded_document(store, bucket, metrics, key) is DocumentStatus.REJECTED
    assert metrics.events == [("document_checked", DocumentStatus.REJECTED)]
    assert bucket.objects == {}
    (document,) = store.get(draft.id).documents
    assert document.status is DocumentStatus.REJECTED and document.reason


def _pending_pdf(store, bucket, caller) -> tuple[str, str]:
    draft = create_candidature(store, caller, fields())
    request = DocumentUploadRequest(kind=DocumentKind.DIPLOMA, content_type="application/pdf", size=len(SAMPLE_PDF))
    ticket = request_document_upload(store, bucket, caller, draft.id, request)
    return draft.id, ticket.document_id


def test_an_upload_landing_between_the_check_and_the_copy_is_not_the_file_stored():
    store, bucket, caller = InMemoryCandidatures(), InMemoryDocuments(), psychologist()
    cid, document_id = _pending_pdf(store, bucket, caller)
    key = upload_key(cid, document_id)
    swapped = b"%PDF-1.4\n<< /JavaScript (swapped in after the check) >>\n%%EOF\n"
    bucket.put(key, SAMPLE_PDF)
    bucket.after_inspect.append(lambda: bucket.put(key, swapped))  # the presigned POST used a second time
    assert verify_uploaded_document(store, bucket, RecordedMetrics(), key) is DocumentStatus.VERIFIED
    assert bucket.objects[stored_document_key(cid, document_id)] == SAMPLE_PDF
    assert key not in bucket.objects


def test_an_upload_after_the_verdict_is_deleted_unread_and_changes_nothing():
    store, bucket, caller = InMemoryCandidatures(), InMemoryDocuments(), psychologist()
    cid, document_id = _pending_pdf(store, bucket, caller)
    key = upload_key(cid, document_id)
    bucket.put(key, SAMPLE_PDF)
    metrics = RecordedMetrics()
    assert verify_uploaded_document(store, bucket, metrics, key) is DocumentStatus.VERIFIED
    bucket.put(key, b"MZ\x90\x00 an executable uploaded with the same presigned POST")
    bucket.after_inspect.append(lambda: pytest.fail("a second upload under a checked key must not be read"))
    assert verify_uploaded_document(store, bucket, metrics, key) is DocumentStatus.VERIFIED
    assert metrics.events == [("document_checked", DocumentStatus.VERIFIED)]  # counted by the run that recorded it
    assert bucket.objects == {stored_document_key(cid, document_id): SAMPLE_PDF}
    (document,) = store.get(cid).documents
    assert document.status is DocumentStatus.VERIFIED and document.size == len(SAMPLE_PDF)


def test_a_truncated_pdf_is_rejected_with_the_reason():
    store, bucket, caller = InMemoryCandidatures(), InMemoryDocuments(), psychologist()
    cid, document_id = _pending_pdf(store, bucket, caller)
    key = upload_key(cid, document_id)
    bucket.put(key, SAMPLE_PDF[: len(SAMPLE_PDF) // 2])
    assert verify_uploaded_document(store, bucket, RecordedMetrics(), key) is DocumentStatus.REJECTED
    (document,) = store.get(cid).documents
    assert "%%EOF" in document.reason and stored_document_key(cid, document_id) not in bucket.objects


def test_acceptance_lists_every_practice_and_deconvention_counts_them_back_out():
    store, bucket = InMemoryCandidatures(), InMemoryDocuments()
    cid = submitted(store, bucket, psychologist())
    decide(store, cid, Action.START_REVIEW)
    decide(store, cid, Action.ACCEPT)
    assert set(store.practices.values()) == {cid} and store.profiles == {cid}
    assert sum(store.density.values()) == 1
    assert store.conventions["psy-1"]["status"] == "accepted"
    decide(store, cid, Action.DECONVENTION, reason="Fin du conventionnement.")
    assert store.practices == {} and store.profiles == set() and sum(store.density.values()) == 0
    assert store.conventions["psy-1"]["status"] == "deconventioned"


def test_a_psychologist_holds_one_convention_at_a_time():
    store, bucket = InMemoryCandidatures(), InMemoryDocuments()
    first = submitted(store, bucket, psychologist(), rpps_body="0000000001")
    decide(store, first, Action.START_REVIEW)
    decide(store, first, Action.ACCEPT)
    second = submitted(store, bucket, psychologist(), rpps_body="0000000002")
    decide(store, second, Action.START_REVIEW)
    with pytest.raises(AlreadyConventioned):
        decide(store, second, Action.ACCEPT)
    assert store.get(second).status is Status.IN_REVIEW
    assert set(store.practices.values()) == {first}


# ---------------------------------------------------------------- sessions

RULE = policy.rule_for(dt.date(2026, 11, 20))
TODAY = dt.date(2026, 11, 20)
KEYRING = PatientKeyring.from_secret(json.dumps({"key_id": "k1", "secret": "s" * 64}))
PATIENT = {"nir": "290057505612384", "birth_date": "1990-05-14"}


def session(
    number: int = 1, *, psychologist_sub: str = "psy-1", quota: int = 12, digest: str = "k1:a"
) -> SessionRequest:
    return SessionRequest(
        session_id=f"00000000-0000-4000-8000-{number:012d}",
        patient_key="k1:patient",
        psychologist_sub=psychologist_sub,
        date=dt.date(2026, 11, 20),
        situation=policy.checked_situation(RULE, None),
        referral=None,
        rule=RULE.model_copy(update={"sessions_per_year": quota}),
        created_at="2026-11-20T10:00:00Z",
        request_digest=digest,
    )


def declared(store: InMemorySessions, request: SessionRequest):
    answer, _ = record_session(store, request, JournalEntry.declaring(request))
    return answer


def conventioned_sessions(*subs: str) -> InMemorySessions:
    store = InMemorySessions()
    for sub in subs or ("psy-1",):
        store.conventions[sub] = {"status": "accepted", "department": "75", "convention_start": "2022-04-05"}
    return store


def test_a_declaration_counts_once_per_session_id_and_stops_at_the_quota():
    store = conventioned_sessions()
    first = declared(store, session(1, quota=2))
    assert (first.used, first.remaining, first.kind) == (1, 1, "assessment")
    assert declared(store, session(1, quota=2)) == first
    with pytest.raises(IdempotencyKeyReused):
        declared(store, session(1, quota=2, digest="k1:other"))
    second = declared(store, session(2, quota=2))
    assert (second.used, second.kind) == (2, "follow_up")
    with pytest.raises(QuotaExhausted):
        declared(store, session(3, quota=2))
    assert store.counters == {("k1:patient", 2026): 2}
    assert [entry.action for entry in store.journal] == ["declare", "declare"]


def test_only_a_conventioned_psychologist_declares():
    store = InMemorySessions()
    with pytest.raises(NotConventioned):
        declared(store, session(1))
    store.conventions["psy-1"] = {"status": "deconventioned", "department": "75"}
    with pytest.raises(NotConventioned):
        declared(store, session(1))
    assert store.writes == 0


def test_sessions_dated_after_the_conventions_end_are_refused():
    store = InMemorySessions()
    # The resignation takes effect on 19 November: a session on the 20th is refused, nothing is written.
    store.conventions["psy-1"] = {"status": "accepted", "department": "75", "end_date": "2026-11-19"}
    with pytest.raises(InvalidFields) as refused:  # a date outside the convention: 422 naming the date
        declared(store, session(1))
    assert refused.value.details == [
        {"field": "date", "message": "the session is after your convention ended on 2026-11-19"}
    ]
    assert store.writes == 0
    store.conventions["psy-1"]["end_date"] = "2026-11-20"  # its last day is still covered
    assert declared(store, session(1)).used == 1
    store.conventions["psy-1"]["start_date"] = "2026-11-21"  # nor a day before it started
    with pytest.raises(InvalidFields):
        declared(store, session(2))


def test_a_declaration_racing_another_is_decided_again_on_the_refusals_state_without_reading_again():
    store = conventioned_sessions("psy-1", "psy-2")
    store.interleave.append(lambda: declared(store, session(9, psychologist_sub="psy-2", quota=2)))
    answer = declared(store, session(1, quota=2))
    # Read as the patient's first, counted as their second: a follow-up, the other one is the assessment.
    assert (answer.used, answer.kind) == (2, "follow_up")
    assert store.sessions[session(9).session_id]["kind"] == "assessment"
    assert store.reads == 2  # one for each declaration: the retry used what the refusal showed


def test_a_deconvention_landing_between_read_and_write_refuses_the_declaration():
    store = conventioned_sessions()
    store.interleave.append(lambda: store.conventions.update({"psy-1": {"status": "deconventioned"}}))
    with pytest.raises(NotConventioned):
        declared(store, session(1))
    assert store.counters == {}


def test_a_declaration_refused_once_the_patient_is_known_is_journaled():
    store, journal = conventioned_sessions(), InMemoryJournal()
    late = SessionDeclaration.model_validate({"patient": PATIENT, "date": "2024-12-01"})
    with pytest.raises(YearClosed):
        declare_session(store, journal, KEYRING, RecordedMetrics(), psychologist(), late, TODAY)
    (entry,) = journal.entries
    assert (entry.action, entry.outcome) == ("declare", "refused:year_closed")
    assert entry.patient_key == KEYRING.patient_key(PATIENT["nir"], 2024)
    assert PATIENT["nir"] not in repr(entry)


def test_a_declaration_counts_one_business_event_and_its_replay_none():
    store, journal, metrics = conventioned_sessions(), InMemoryJournal(), RecordedMetrics()
    body = SessionDeclaration.model_validate({"patient": PATIENT, "date": TODAY.isoformat(), "situation": "css"})
    first = declare_session(store, journal, KEYRING, metrics, psychologist(), body, TODAY, "s-1")
    assert declare_session(store, journal, KEYRING, metrics, psychologist(), body, TODAY, "s-1") == first
    assert metrics.events == [("session_declared", "assessment", "css")]
    common = body.model_copy(update={"situation": None})
    declare_session(store, journal, KEYRING, metrics, psychologist(), common, TODAY, "s-2")
    assert metrics.events[-1] == ("session_declared", "follow_up", None)

    # Refused for the patient's exhausted quota: counted as such; any other refusal is not a business event.
    store.counters[(KEYRING.patient_key(PATIENT["nir"], TODAY.year), TODAY.year)] = first.quota
    with pytest.raises(QuotaExhausted):
        declare_session(store, journal, KEYRING, metrics, psychologist(), body, TODAY, "s-3")
    late = SessionDeclaration.model_validate({"patient": PATIENT, "date": "2024-12-01"})
    with pytest.raises(YearClosed):
        declare_session(store, journal, KEYRING, metrics, psychologist(), late, TODAY, "s-4")
    assert metrics.events[2:] == [("quota_refused",)]


def test_a_cancellation_is_the_declarers_and_of_an_open_year_only():
    store, journal = conventioned_sessions("psy-1", "psy-2"), InMemoryJournal()
    declared(store, session(1))
    session_id = session(1).session_id
    with pytest.raises(NotFound):
        cancel_session(store, journal, psychologist("psy-2"), session_id, TODAY)
    with pytest.raises(YearClosed):
        cancel_session(store, journal, psychologist(), session_id, dt.date(2027, 4, 1))
    cancel_session(store, journal, psychologist(), session_id, dt.date(2027, 3, 31))
    assert store.counters[("k1:patient", 2026)] == 0
    with pytest.raises(NotFound):
        cancel_session(store, journal, psychologist(), session_id, TODAY)
    assert [entry.outcome for entry in journal.entries] == [
        "refused:not_found",
        "refused:year_closed",
        "refused:not_found",
    ]
    assert [(entry.action, entry.outcome) for entry in store.journal][-1] == ("cancel", "accepted")


def test_looking_up_more_distinct_patients_than_the_daily_limit_is_refused_and_journaled(monkeypatch):
    store, journal = conventioned_sessions(), InMemoryJournal()
    monkeypatch.setattr(policy, "year_settings", lambda: policy.YearSettings(daily_lookup_limit=2))
    first, second, third = (
        QuotaQuery.model_validate({"nir": nir_for(dt.date(1990, 5, 14), order=order), "birth_date": "1990-05-14"})
        for order in ("101", "102", "103")
    )
    assert patient_quota(store, journal, KEYRING, psychologist(), first, TODAY).used == 0
    assert patient_quota(store, journal, KEYRING, psychologist(), second, TODAY).remaining == 12
    assert patient_quota(store, journal, KEYRING, psychologist(), first, TODAY).used == 0  # not a new patient
    with pytest.raises(LookupLimitReached) as refused:
        patient_quota(store, journal, KEYRING, psychologist(), third, TODAY)
    assert refused.value.retry_after_seconds > 0
    assert [entry.outcome for entry in journal.entries] == ["accepted"] * 3 + ["refused:lookup_limit_reached"]
    # Another day, or another psychologist, starts again.
    assert patient_quota(store, journal, KEYRING, psychologist(), third, TODAY + dt.timedelta(days=1)).used == 0


def test_a_download_is_recorded_with_who_asked_before_its_url_is_given_and_keeps_the_version():
    store, bucket = InMemoryCandidatures(), InMemoryDocuments()
    owner = psychologist()
    cid = submitted(store, bucket, owner)
    version = store.get(cid).version
    reviewer = Caller(sub="rev-9", roles=frozenset({Role.REVIEWER}), departments=frozenset({"75"}))
    identity = next(d for d in store.get(cid).documents if d.kind is DocumentKind.IDENTITY)
    document_download(store, bucket, reviewer, cid, identity.document_id)
    document_download(store, bucket, owner, cid, identity.document_id)
    with pytest.raises(NotFound):
        document_download(
            store, bucket, Caller(sub="rev-0", roles=frozenset({Role.REVIEWER})), cid, identity.document_id
        )
    recorded = [(event.actor, event.role, event.action, event.version, document) for event, document in store.downloads]
    assert recorded == [
        ("rev-9", "reviewers", "download_document", version, identity.document_id),
        ("psy-1", "psychologists", "download_document", version, identity.document_id),
    ]
    assert store.get(cid).version == version
