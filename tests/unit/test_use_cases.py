"""The candidature and session use cases on in-memory fakes of their ports: what each decides, without AWS."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
    NotConventioned,
    NotEditable,
    NotFound,
    QuotaExhausted,
    SessionNotCancellable,
    VersionMismatch,
)
from msp.sessions.declarations import cancel_recorded, record_session, sessions_used
from msp.sessions.policy import Amounts
from msp.sessions.rules import SessionRecord
from tests.unit.use_case_fakes import InMemoryCandidatures, InMemoryDocuments, InMemorySessions


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
        bucket.objects[upload_key(cid, ticket.document_id)] = SAMPLE_PDF
        assert verify_uploaded_document(store, bucket, upload_key(cid, ticket.document_id)) is DocumentStatus.VERIFIED


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
    bucket.objects[key] = b"MZ\x90\x00 an executable renamed .pdf"
    assert verify_uploaded_document(store, bucket, key) is DocumentStatus.REJECTED
    assert bucket.objects == {}
    (document,) = store.get(draft.id).documents
    assert document.status is DocumentStatus.REJECTED and document.reason


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

AMOUNTS = Amounts(price=Decimal("50.00"), amo=Decimal("30.00"), amc=Decimal("20.00"), patient_advance=Decimal("50.00"))


def session(
    number: int = 1, *, psychologist_sub: str = "psy-1", quota: int = 12, digest: str = "k1:a"
) -> SessionRecord:
    return SessionRecord(
        session_id=f"00000000-0000-4000-8000-{number:012d}",
        patient_key="k1:patient",
        psychologist_sub=psychologist_sub,
        date=dt.date(2026, 11, 20),
        year=2026,
        first_session=None,
        tiers_payant_reason=None,
        amounts=AMOUNTS,
        quota=quota,
        rule_valid_from=dt.date(2024, 6, 15),
        created_at="2026-11-20T10:00:00Z",
        request_digest=digest,
    )


def conventioned_sessions(*subs: str) -> InMemorySessions:
    store = InMemorySessions()
    for sub in subs or ("psy-1",):
        store.conventions[sub] = {"status": "accepted", "department": "75"}
    return store


def test_a_declaration_counts_once_per_session_id_and_stops_at_the_quota():
    store = conventioned_sessions()
    first = record_session(store, session(1, quota=2))
    assert (first.used, first.remaining) == (1, 1)
    assert record_session(store, session(1, quota=2)) == first
    with pytest.raises(IdempotencyKeyReused):
        record_session(store, session(1, quota=2, digest="k1:other"))
    assert record_session(store, session(2, quota=2)).used == 2
    with pytest.raises(QuotaExhausted):
        record_session(store, session(3, quota=2))
    assert sessions_used(store, "psy-1", "k1:patient", 2026) == 2


def test_only_a_conventioned_psychologist_declares():
    store = InMemorySessions()
    with pytest.raises(NotConventioned):
        record_session(store, session(1))
    store.conventions["psy-1"] = {"status": "deconventioned", "department": "75"}
    with pytest.raises(NotConventioned):
        record_session(store, session(1))
    assert store.writes == 0


def test_sessions_dated_after_the_conventions_end_are_refused():
    store = InMemorySessions()
    # The resignation takes effect on 19 November: a session on the 20th is refused, nothing is written.
    store.conventions["psy-1"] = {"status": "accepted", "department": "75", "end_date": "2026-11-19"}
    with pytest.raises(NotConventioned) as refused:
        record_session(store, session(1))
    assert "2026-11-19" in refused.value.message and store.writes == 0
    store.conventions["psy-1"]["end_date"] = "2026-11-20"  # its last day is still covered
    assert record_session(store, session(1)).used == 1


def test_a_declaration_racing_another_is_decided_again_on_the_refusals_state_without_reading_again():
    store = conventioned_sessions("psy-1", "psy-2")
    store.interleave.append(lambda: record_session(store, session(9, psychologist_sub="psy-2", quota=2)))
    answer = record_session(store, session(1, quota=2))
    assert answer.used == 2
    assert store.reads == 2  # one for each declaration: the retry used what the refusal showed


def test_a_deconvention_landing_between_read_and_write_refuses_the_declaration():
    store = conventioned_sessions()
    store.interleave.append(lambda: store.conventions.update({"psy-1": {"status": "deconventioned"}}))
    with pytest.raises(NotConventioned):
        record_session(store, session(1))
    assert store.counters == {}


def test_a_cancellation_is_the_declarers_and_of_the_current_year_only():
    store = conventioned_sessions("psy-1", "psy-2")
    record_session(store, session(1))
    with pytest.raises(NotFound):
        cancel_recorded(store, session(1).session_id, "psy-2", 2026)
    with pytest.raises(SessionNotCancellable):
        cancel_recorded(store, session(1).session_id, "psy-1", 2027)
    cancel_recorded(store, session(1).session_id, "psy-1", 2026)
    assert sessions_used(store, "psy-1", "k1:patient", 2026) == 0
    with pytest.raises(NotFound):
        cancel_recorded(store, session(1).session_id, "psy-1", 2026)


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
