"""The domain of a psychologist's life after acceptance, on in-memory fakes: availability, listing edits and what they
re-list, ends of convention, the retention purge, statements and the reviewers' digest."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from infra.seed import demo_fields, practice_in
from msp.auth import Caller, Role
from msp.candidatures.convention import decision_effects
from msp.candidatures.leaving import ResignationRequest, dated_end, end_due_conventions, resign
from msp.candidatures.listing_edits import ListingChanges, edit_listing
from msp.candidatures.models import Candidature, CandidatureFields, QueueEntry, Status
from msp.candidatures.notifications import digest_emails, send_daily_digest
from msp.candidatures.retention import PurgeReport, RetentionPolicy, purge_due, purge_expired, skeleton
from msp.directory.listing import accepts_new_patients, listing_items_for
from msp.errors import IdentityLocked, InvalidFields, NotConventioned, VersionMismatch
from msp.sessions.rules import PatientKeyring
from msp.sessions.statements import (
    MonthQuery,
    month_statement,
    patient_reference,
    statement_csv,
    statement_line,
)
from tests.unit.use_case_fakes import InMemoryCandidatures

TODAY = dt.date(2026, 6, 10)
OWNER = Caller(sub="psy-1", roles=frozenset({Role.PSYCHOLOGIST}))
OTHER_PARIS = {"address": "5 rue de Lyon", "postcode": "75012", "city": "Paris", "department": "75"} | {
    "lat": 48.8443,
    "lon": 2.3744,
}


def _accepted(version: int = 3, **changes) -> Candidature:
    fields = demo_fields(0) | {"practices": [practice_in("75")]}
    return Candidature(
        id=str(uuid.uuid4()),
        owner_sub=OWNER.sub,
        status=Status.ACCEPTED,
        version=version,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        submitted_at="2026-01-01T00:00:00Z",
        fields=CandidatureFields.model_validate(fields),
        convention_start=dt.date(2026, 2, 1),
    ).model_copy(update=changes)


def _stored(*candidatures: Candidature) -> InMemoryCandidatures:
    """The in-memory candidature port holding these candidatures as stored already decided: an accepted one
    with its convention and listing."""
    store = InMemoryCandidatures()
    for candidature in candidatures:
        store.save(candidature, previous=None, audit=None, effects=decision_effects(None, candidature))
    return store


class Publisher:
    def __init__(self):
        self.events = []

    def publish(self, event):
        self.events.append(event)
        return True


# ---------------------------------------------------------------- availability


@pytest.mark.parametrize(
    ("accepting", "full_until", "today", "expected"),
    [
        (True, None, TODAY, True),
        (False, None, TODAY, False),
        (False, "2026-06-10", TODAY, False),  # full on its last day
        (False, "2026-06-09", TODAY, True),  # and taking patients again the day after, by itself
    ],
)
def test_availability_turns_back_by_itself_after_full_until(accepting, full_until, today, expected):
    assert accepts_new_patients(accepting, full_until, today) is expected


def test_full_until_goes_only_with_not_accepting():
    with pytest.raises(ValidationError):
        CandidatureFields(full_until=TODAY)
    assert CandidatureFields(accepting_new_patients=False, full_until=TODAY).full_until == TODAY


# ---------------------------------------------------------------- listing edits


def test_identity_fields_are_refused_with_the_reviewer_to_contact():
    with pytest.raises(IdentityLocked) as refused:
        ListingChanges.model_validate({"first_name": "Autre", "identifier": {"type": "rpps", "value": "1"}})
    assert "reviewer" in refused.value.message
    assert [d["field"] for d in refused.value.details] == ["first_name", "identifier"]


@pytest.mark.parametrize("cleared", [{"practices": None}, {"practices": []}, {"publics": None}, {"languages": []}])
def test_a_listing_keeps_at_least_one_practice_language_and_public(cleared):
    with pytest.raises(ValidationError):
        ListingChanges.model_validate(cleared)


def test_moving_a_practice_relists_it_in_the_edit_itself():
    current = _accepted()
    store = _stored(current)
    (old,) = listing_items_for(current.id, current.fields)
    assert set(store.practices) == {(old.partition, old.sort_key)}
    density_before = dict(store.density)
    view = edit_listing(store, OWNER, ListingChanges(practices=[OTHER_PARIS]), current.version, TODAY)
    assert view.version == current.version + 1 and view.practices[0]["postcode"] == "75012"
    audit = store.audits[(current.id, view.version)]
    assert audit.action == "edit_listing" and audit.changed_fields == ["practices"]
    (new,) = listing_items_for(current.id, store.get(current.id).fields)
    assert set(store.practices) == {(new.partition, new.sort_key)} and new.postcode == "75012"
    assert sum(store.density.values()) == sum(density_before.values()) == 1  # moved, not added


def test_an_edit_on_a_stale_version_or_without_convention_is_refused():
    current = _accepted()
    with pytest.raises(VersionMismatch):
        edit_listing(_stored(current), OWNER, ListingChanges(teleconsultation=False), current.version - 1, TODAY)
    with pytest.raises(NotConventioned):
        edit_listing(_stored(), OWNER, ListingChanges(teleconsultation=False), 1, TODAY)
    with pytest.raises(InvalidFields):
        changes = ListingChanges(accepting_new_patients=False, full_until=TODAY)
        edit_listing(_stored(current), OWNER, changes, current.version, TODAY)


# ---------------------------------------------------------------- ends of convention


def test_an_end_today_deconventions_and_unlists_a_later_one_only_dates_the_convention():
    current = _accepted()
    now = dated_end(current, TODAY, TODAY, "Retraite")
    assert now.status is Status.DECONVENTIONED and now.convention_end == TODAY
    effects = decision_effects(current, now)
    assert effects.convention.status == "deconventioned" and effects.convention.end_date == "2026-06-10"
    assert effects.convention.start_date == "2026-02-01" and effects.listing.delete_profile

    later = dated_end(current, TODAY + dt.timedelta(days=5), TODAY, None)
    assert later.status is Status.ACCEPTED
    effects = decision_effects(current, later)
    assert effects.convention.status == "accepted" and effects.convention.end_date == "2026-06-15"
    with pytest.raises(InvalidFields):
        dated_end(current, TODAY - dt.timedelta(days=1), TODAY, None)


def test_resigning_twice_the_same_way_changes_nothing_and_tells_the_reviewers_once():
    current = _accepted()
    store, publisher = _stored(current), Publisher()
    request = ResignationRequest(effective_date=TODAY + dt.timedelta(days=3))
    first = resign(store, publisher, OWNER, request, TODAY)
    again = resign(store, publisher, OWNER, request, TODAY)
    assert first.version == again.version == current.version + 1
    assert [e.action for e in publisher.events] == ["resign"]
    assert store.audits[(current.id, first.version)].effective_date == request.effective_date
    assert store.conventions[OWNER.sub]["end_date"] == request.effective_date.isoformat()


def test_the_daily_job_ends_what_is_due_once_and_rereads_an_edited_candidature():
    due = _accepted(convention_end=TODAY)
    later = _accepted(convention_end=TODAY + dt.timedelta(days=1))
    later = later.model_copy(
        update={"owner_sub": "psy-2", "fields": later.fields.model_copy(update={"identifier": None})}
    )
    store = _stored(due, later)
    original_save = store.save
    raced = []

    def save_losing_once(candidature, *, previous, audit, effects=None):
        if not raced:  # the psychologist edited their listing just before the job's write
            raced.append(True)
            store.candidatures[candidature.id] = previous.model_copy(update={"version": previous.version + 1})
        original_save(candidature, previous=previous, audit=audit, effects=effects)

    store.save = save_losing_once  # type: ignore[method-assign]
    assert end_due_conventions(store, TODAY) == [due.id]
    ended = store.get(due.id)
    assert ended.status is Status.DECONVENTIONED and store.get(later.id).status is Status.ACCEPTED
    audit = store.audits[(due.id, ended.version)]
    assert audit.action == "convention_end" and audit.role == "system" and audit.effective_date == TODAY
    assert store.conventions[OWNER.sub]["status"] == "deconventioned" and not store.profiles - {later.id}
    assert end_due_conventions(store, TODAY) == []


# ---------------------------------------------------------------- retention


@pytest.mark.parametrize(
    ("status", "days", "due"),
    [
        (Status.DRAFT, 184, True),
        (Status.DRAFT, 182, False),
        (Status.WITHDRAWN, 184, True),
        (Status.REJECTED, 700, False),
        (Status.REJECTED, 731, True),
        (Status.ACCEPTED, 10_000, False),
        (Status.DECONVENTIONED, 3000, False),
    ],
)
def test_what_is_due_for_purging(status, days, due):
    candidature = _accepted(status=status)
    now = dt.datetime.fromisoformat(candidature.updated_at) + dt.timedelta(days=days)
    assert purge_due(candidature, RetentionPolicy(), now) is due
    assert purge_due(skeleton(candidature, "2030-01-01T00:00:00Z"), RetentionPolicy(), now) is False


def test_a_skeleton_keeps_states_and_dates_and_no_name():
    kept = skeleton(_accepted(status=Status.REJECTED, status_reason="Mme Martin : dossier incomplet"), "2030-01-01")
    text = kept.model_dump_json()
    assert "Martin" not in text and "Camille" not in text and kept.owner_sub == ""
    assert kept.status is Status.REJECTED and kept.submitted_at and kept.purged_at == "2030-01-01"


def test_a_purge_stopped_by_its_budget_resumes_after_the_last_one_done():
    candidatures = [_accepted(status=Status.WITHDRAWN) for _ in range(4)]

    class PurgeStore(InMemoryCandidatures):
        def purge_candidates(self, start):
            ids = sorted(self.candidatures)
            for candidature_id in ids[ids.index(start) + 1 :] if start else ids:
                if not self.candidatures[candidature_id].purged_at:
                    yield self.candidatures[candidature_id], candidature_id

        def anonymise_history(self, candidature_id):
            return 1

        def erase_markers(self, candidature):
            return 0

    class Bucket:
        def erase_prefix(self, prefix):
            return 2

    store = PurgeStore()
    for candidature in candidatures:
        store.save(candidature, previous=None, audit=None)
    budget = iter([True, True])
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    first = purge_expired(store, Bucket(), RetentionPolicy(), now, time_left=lambda: next(budget, False))
    assert not first.complete and len(first.purged) == 2 and first.resume_from == sorted(store.candidatures)[1]
    rest = purge_expired(store, Bucket(), RetentionPolicy(), now, start=first.resume_from)
    assert rest.complete and sorted(first.purged + rest.purged) == sorted(store.candidatures)
    assert rest.object_versions_erased == 2 * 2 * 2 and isinstance(rest, PurgeReport)
    assert purge_expired(store, Bucket(), RetentionPolicy(), now).purged == []


# ---------------------------------------------------------------- statements


KEYRING = PatientKeyring.from_secret('{"key_id": "k1", "secret": "' + "s" * 40 + '"}')


def test_patient_references_are_stable_per_psychologist_and_unlinkable_across():
    key = "k1:" + "ab" * 32
    mine = patient_reference(KEYRING, "psy-1", key)
    assert mine == patient_reference(KEYRING, "psy-1", key)
    assert mine != patient_reference(KEYRING, "psy-2", key)
    assert mine != patient_reference(KEYRING, "psy-1", "k1:" + "cd" * 32)
    assert key.split(":")[1][:12].upper() not in mine


def _session(price="50", amo="30", amc="20", cancelled=False, first=False, day="2026-06-03"):
    item = {
        "session_id": str(uuid.uuid4()),
        "psychologist_sub": "psy-1",
        "date": day,
        "first_session": first,
        "price": Decimal(price),
        "amo": Decimal(amo),
        "amc": Decimal(amc),
        "patient_advance": Decimal(price),
    }
    if cancelled:
        item["cancelled_at"] = "2026-06-04T00:00:00Z"
    else:
        item["patient_key"] = "k1:" + uuid.uuid4().hex * 2
    return item


class Sessions:
    def __init__(self, items):
        self.items = items

    def sessions_of(self, psychologist_sub, first_day, last_day, after, limit):
        return [i for i in self.items if first_day <= i["date"] <= last_day], None


def test_a_statement_line_and_the_month_totals_in_french_csv():
    items = [_session(first=True), _session(price="30", amo="18", amc="12"), _session(cancelled=True)]
    line = statement_line(items[0], KEYRING)
    assert line.kind == "assessment" and line.amounts == {
        "price": "50.00",
        "amo": "30.00",
        "amc": "20.00",
        "patient_advance": "50.00",
    }
    assert statement_line(items[2], KEYRING).patient_reference is None
    totals = month_statement(Sessions(items), OWNER, MonthQuery(year=2026, month=6))
    assert (totals.sessions, totals.cancelled, totals.total_price) == (2, 1, "80.00")
    assert totals.by_kind == {"assessment": 1, "follow_up": 1}
    assert {t.payer: t.amount for t in totals.payers} == {
        "amo": "48.00",
        "amc": "32.00",
        "state": "0.00",
        "patient_advance": "80.00",
    }
    sheet = statement_csv(totals)
    assert sheet.startswith("\ufeffMois;Payeur;Montant (€)\r\n")
    assert "2026-06;Assurance Maladie (AMO);48,00\r\n" in sheet and "Total des séances;80,00" in sheet
    assert MonthQuery(year=2024, month=2).last_day == dt.date(2024, 2, 29)
    assert MonthQuery(year=2026, month=12).last_day == dt.date(2026, 12, 31)


# ---------------------------------------------------------------- the reviewers' digest


def _entry(department, name):
    return QueueEntry(
        id=str(uuid.uuid4()),
        status=Status.SUBMITTED,
        version=2,
        department=department,
        submitted_at="2026-06-09T10:00:00Z",
        updated_at="2026-06-09T10:00:00Z",
        last_name=name,
        city="Ville",
        postcode="75001",
    )


def test_the_digest_groups_by_department_and_goes_out_once_a_day():
    entries = [_entry("75", "Martin"), _entry("13", "Durand"), _entry("75", "Petit")]
    ((message, count),) = digest_emails(TODAY, entries, "instruction@example.fr")
    assert message.to == "instruction@example.fr" and "3 nouvelle(s)" in message.subject and count == 3
    assert message.body.index("Département 13 (1)") < message.body.index("Département 75 (2)")
    assert digest_emails(TODAY, [], "instruction@example.fr") == []

    per_department = digest_emails(TODAY, entries, "instruction-{department}@example.fr")
    assert [(m.to, n) for m, n in per_department] == [
        ("instruction-13@example.fr", 1),
        ("instruction-75@example.fr", 2),
    ]
    assert "Martin" not in per_department[0][0].body and "Durand" not in per_department[1][0].body

    claimed: set[str] = set()

    class Source:
        def submitted_between(self, start, end):
            assert start == "2026-06-09T22:00:00.000000Z" and end == "2026-06-10T22:00:00.000000Z"
            return entries

        def claim_digest(self, reference):
            fresh = reference not in claimed
            claimed.add(reference)
            return fresh

        def release_digest(self, reference):
            claimed.discard(reference)

    sent = []

    class Mailer:
        def send(self, message):
            sent.append(message)

    assert send_daily_digest(Source(), Mailer(), TODAY, "instruction-{department}@example.fr") == 3
    assert send_daily_digest(Source(), Mailer(), TODAY, "instruction-{department}@example.fr") == 0
    assert [m.to for m in sent] == ["instruction-13@example.fr", "instruction-75@example.fr"]


def test_a_new_candidature_with_a_freed_identifier_links_the_last_one_that_held_it():
    from msp.candidatures.use_cases import create_candidature

    store = InMemoryCandidatures()
    first = _accepted(status=Status.IN_REVIEW)
    store.save(first, previous=None, audit=None)
    held = first.fields.identifier
    assert store.identifiers[(held.type, held.value)] == first.id
    rejected = first.model_copy(update={"status": Status.REJECTED, "version": first.version + 1})
    store.save(rejected, previous=first, audit=None)
    again = create_candidature(store, OWNER, first.fields)
    assert again.previous_candidature_id == first.id
    assert store.identifiers[(held.type, held.value)] == again.id
    unrelated = create_candidature(store, OWNER, CandidatureFields())
    assert unrelated.previous_candidature_id is None
