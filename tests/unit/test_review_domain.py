"""Review use cases on in-memory fakes: scope, queue departments, transitions and e-mails."""

from __future__ import annotations

import pytest

from msp.auth import Caller, Role
from msp.candidatures.models import (
    AuditEvent,
    Candidature,
    CandidatureFields,
    DecisionEvent,
    EmailMessage,
    QueuePage,
    Status,
)
from msp.candidatures.notifications import decision_email, notify_decision
from msp.candidatures.review import (
    QueueQuery,
    TransitionRequest,
    read_candidature,
    review_queue,
    transition_candidature,
)
from msp.candidatures.workflow import Action
from msp.cursors import LIST_CURSOR_LIFETIME, CursorKeys, open_sealed, seal
from msp.errors import NotFound, OutOfScope, RoleNotAllowed, StaleDecision, VersionMismatch
from msp.http_errors import answer_for


def _candidature(status=Status.SUBMITTED, department="75", owner="psy-1", version=1) -> Candidature:
    from infra.seed import demo_fields, practice_in

    fields = demo_fields(0) | {"practices": [practice_in(department)]}
    return Candidature(
        id="c-1",
        owner_sub=owner,
        status=status,
        version=version,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        submitted_at="2026-01-01T00:00:00Z",
        fields=CandidatureFields.model_validate(fields),
    )


class FakeStore:
    def __init__(self, candidature: Candidature, *, lose_race: bool = False):
        self.candidature = candidature
        self.lose_race = lose_race
        self.saved: list[tuple[Candidature, AuditEvent | None]] = []
        self.audits: dict[int, AuditEvent] = {}
        self.claimed: set[int] = set()

    def get(self, candidature_id):
        if candidature_id != self.candidature.id:
            raise NotFound("No candidature with this id.")
        return self.candidature

    def save(self, candidature, *, previous, audit, effects=None):
        if self.lose_race:
            self.candidature = previous.model_copy(update={"status": Status.ACCEPTED, "version": previous.version + 1})
            raise VersionMismatch("changed")
        self.saved.append((candidature, audit))
        self.candidature = candidature
        if audit:
            self.audits[audit.version] = audit

    def audit_event(self, candidature_id, version):
        return self.audits.get(version)

    def claim_notification(self, candidature_id, version):
        if version in self.claimed:
            return False
        self.claimed.add(version)
        return True

    def release_notification(self, candidature_id, version):
        self.claimed.discard(version)


class FakePublisher:
    def __init__(self):
        self.events: list[DecisionEvent] = []

    def publish(self, event):
        self.events.append(event)
        return True


class FakeQueue:
    def __init__(self):
        self.calls = []

    def page(self, status, departments, limit, cursor):
        self.calls.append((status, departments, limit, cursor))
        return QueuePage(results=[])


REVIEWER_75 = Caller(sub="rev-1", roles=frozenset({Role.REVIEWER}), departments=frozenset({"75"}))
ADMIN = Caller(sub="adm-1", roles=frozenset({Role.ADMIN}))


def test_out_of_scope_reads_look_like_missing_candidatures():
    store = FakeStore(_candidature(department="13"))
    with pytest.raises(NotFound):
        read_candidature(store, REVIEWER_75, "c-1")
    assert read_candidature(store, ADMIN, "c-1")["allowed_actions"] == ["start_review"]
    owner = Caller(sub="psy-1", roles=frozenset({Role.PSYCHOLOGIST}))
    assert "allowed_actions" not in read_candidature(store, owner, "c-1")
    nobody = Caller(sub="x", roles=frozenset())
    with pytest.raises(RoleNotAllowed):
        read_candidature(store, nobody, "c-1")


def test_transition_saves_one_version_with_its_audit_and_publishes_decisions_only():
    store, publisher = FakeStore(_candidature()), FakePublisher()
    started = transition_candidature(
        store, publisher, REVIEWER_75, "c-1", TransitionRequest(action=Action.START_REVIEW, expected_version=1)
    )
    assert started.status is Status.IN_REVIEW and started.version == 2 and publisher.events == []
    rejected = transition_candidature(
        store,
        publisher,
        REVIEWER_75,
        "c-1",
        TransitionRequest(action=Action.REJECT, reason="  Pas de master.  ", expected_version=2),
    )
    assert rejected.status_reason == "Pas de master."
    audit = store.saved[-1][1]
    assert (audit.actor, audit.role, audit.from_status, audit.to_status, audit.reason) == (
        "rev-1",
        "reviewers",
        Status.IN_REVIEW,
        Status.REJECTED,
        "Pas de master.",
    )
    (event,) = publisher.events
    assert event.model_dump() == {
        "candidature_id": "c-1",
        "version": 3,
        "action": "reject",
        "to_status": Status.REJECTED,
        "at": rejected.updated_at,
    }


def test_stale_version_and_lost_race_are_409_with_the_current_state():
    store = FakeStore(_candidature(status=Status.IN_REVIEW, version=4))
    with pytest.raises(StaleDecision) as stale:
        transition_candidature(
            store, FakePublisher(), ADMIN, "c-1", TransitionRequest(action=Action.ACCEPT, expected_version=3)
        )
    assert answer_for(stale.value).code == "version_conflict" and store.saved == []
    assert stale.value.details[0]["allowed_actions"] == ["request_info", "accept", "reject"]
    racing = FakeStore(_candidature(status=Status.IN_REVIEW), lose_race=True)
    publisher = FakePublisher()
    with pytest.raises(StaleDecision) as lost:
        transition_candidature(
            racing,
            publisher,
            ADMIN,
            "c-1",
            TransitionRequest(action=Action.REJECT, reason="x", expected_version=1),
        )
    assert answer_for(lost.value).code == "version_conflict" and lost.value.details[0]["status"] == "accepted"
    assert publisher.events == []


@pytest.mark.parametrize(
    ("caller", "department", "expected"),
    [
        (ADMIN, None, None),
        (Caller(sub="r", roles=frozenset({Role.REVIEWER}), departments=frozenset({"*"})), None, None),
        (
            Caller(sub="r", roles=frozenset({Role.REVIEWER}), departments=frozenset({"92", "75", "zz"})),
            None,
            ["75", "92"],
        ),
        (REVIEWER_75, "75", ["75"]),
        (ADMIN, "2A", ["2A"]),
    ],
)
def test_queue_reads_the_departments_of_the_scope(caller, department, expected):
    queue = FakeQueue()
    review_queue(queue, caller, QueueQuery(department=department))
    assert queue.calls == [(Status.SUBMITTED, expected, 20, None)]


def test_queue_refuses_departments_out_of_scope_and_other_roles():
    with pytest.raises(OutOfScope) as caught:
        review_queue(FakeQueue(), REVIEWER_75, QueueQuery(department="13"))
    assert answer_for(caught.value).code == "out_of_scope"
    with pytest.raises(RoleNotAllowed):
        review_queue(FakeQueue(), Caller(sub="p", roles=frozenset({Role.PSYCHOLOGIST})), QueueQuery())


def test_cursors_are_bound_to_their_context_and_secret():
    keys = CursorKeys(b"s" * 32)
    cursor = seal({"after": "2026#x"}, context="a", keys=keys, lifetime=LIST_CURSOR_LIFETIME)
    assert open_sealed(cursor, context="a", keys=keys) == {"after": "2026#x"}
    for context, other in (("b", keys), ("a", CursorKeys(b"t" * 32))):
        with pytest.raises(Exception) as caught:
            open_sealed(cursor, context=context, keys=other)
        assert answer_for(caught.value).code == "invalid_cursor"


def _decision(action, reason=None, version=3):
    return AuditEvent(
        candidature_id="c-1",
        version=version,
        actor="rev",
        role="reviewers",
        action=action,
        from_status=Status.IN_REVIEW,
        to_status=Status.REJECTED,
        reason=reason,
        at="2026-01-01T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("action", "subject", "phrase"),
    [
        ("request_info", "informations complémentaires", "soumettre à nouveau"),
        ("accept", "acceptée", "annuaire"),
        ("reject", "n'a pas été retenue", "motif suivant"),
        ("deconvention", "fin de votre conventionnement", "quittent alors l'annuaire"),
    ],
)
def test_decision_emails_are_french_and_quote_the_reason(action, subject, phrase):
    message = decision_email(_candidature(), _decision(action, reason="Ligne 1\nLigne 2"))
    assert subject in message.subject and phrase in message.body
    assert message.body.startswith("Bonjour Madame Martin,")
    assert "    Ligne 1\n    Ligne 2" in message.body
    assert message.to == "camille.martin@example.fr" and message.reference == "c-1-v3"


def test_a_decision_is_mailed_once_and_a_failed_send_is_retried():
    store = FakeStore(_candidature())
    store.audits[3] = _decision("reject", reason="Incomplet")
    sent: list[EmailMessage] = []

    class Flaky:
        failures = 1

        def send(self, message):
            if self.failures:
                self.failures -= 1
                raise OSError("SES down")
            sent.append(message)

    mailer = Flaky()
    event = DecisionEvent(candidature_id="c-1", version=3, action="reject", to_status=Status.REJECTED, at="t")
    with pytest.raises(OSError):
        notify_decision(store, mailer, event)
    assert notify_decision(store, mailer, event) is True
    assert notify_decision(store, mailer, event) is False
    assert len(sent) == 1
    unknown = DecisionEvent(candidature_id="c-1", version=9, action="reject", to_status=Status.REJECTED, at="t")
    assert notify_decision(store, mailer, unknown) is False
