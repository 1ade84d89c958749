"""What the load sends: the mix, the data each action draws from, and what each answer is worth.

Every request is named after its template route ("POST /v1/sessions"), which locust's statistics group by;
the answers a busy real programme gives as a matter of course (a patient at quota, an edit or a decision on a
stale version) are expected, anything else that is not 2xx is an error.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.seed import DEMO_PRACTICES

# ---------------------------------------------------------------- the mix

SEARCH = "GET /v1/psychologists/search"
QUEUE = "GET /v1/review/candidatures"
DECLARE = "POST /v1/sessions"
PATCH = "PATCH /v1/candidatures/{candidature_id}"
READ_ONE = "GET /v1/candidatures/{candidature_id}"
TRANSITION = "POST /v1/candidatures/{candidature_id}/transitions"

# The read-heavy share goes to the public directory search; until the template declares that route, the
# reviewers' queue stands in for it (`--read` chooses explicitly).
READS = {"search": SEARCH, "queue": QUEUE}


def mix(read: str) -> dict[str, int]:
    """Percent of the actions, by action name."""
    return {read: 80, "declare": 10, "edit": 5, "transition": 5}


def default_read(routes: set[str]) -> str:
    return "search" if SEARCH in routes else "queue"


EXPECTED_REFUSALS = frozenset(
    {
        (DECLARE, 409, "quota_exhausted"),  # the patient used the year's sessions
        (PATCH, 412, "version_mismatch"),  # another edit of the same draft landed first
        (TRANSITION, 409, "version_conflict"),  # another reviewer decided first
    }
)


# ---------------------------------------------------------------- answers


def error_code(status: int, body: Any) -> str:
    """The error code an answer that is not 2xx carries ("" if none)."""
    if 200 <= status < 300 or not isinstance(body, dict):
        return ""
    return (body.get("error") or {}).get("code", "")


def is_expected(route: str, status: int, code: str) -> bool:
    return 200 <= status < 300 or (route, status, code) in EXPECTED_REFUSALS


# One simulated user's connection: call(route, path, token=, json=, params=, headers=) sends a request of `route`
# (its template route key) to `path`, records the answer and returns (status, JSON body or None).
Call = Callable[..., tuple[int, Any]]


# ---------------------------------------------------------------- patients


@dataclass(frozen=True)
class Patient:
    nir: str
    birth_date: dt.date


def random_patient(rng: random.Random, today: dt.date) -> Patient:
    """A made-up patient aged 4 or more, with a well-formed NIR (key included; Corsica as 2A/2B too)."""
    from msp.sessions.nir import control_key

    birth = dt.date(rng.randint(1940, today.year - 4), rng.randint(1, 12), rng.randint(1, 28))
    department = rng.choice([f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"])
    first_13 = f"{rng.choice('12')}{birth.year % 100:02d}{birth.month:02d}{department}{rng.randint(1, 999):03d}"
    first_13 += f"{rng.randint(1, 999):03d}"
    return Patient(f"{first_13}{control_key(first_13):02d}", birth)


# ---------------------------------------------------------------- what the users share


@dataclass
class Draft:
    candidature_id: str
    token: str
    version: int = 1
    landed: int = 0  # PATCHes answered 200


@dataclass
class UnderReview:
    candidature_id: str
    version: int
    status: str
    decisions: list[tuple[int, str]] = field(default_factory=list)  # (version written, action) answered 200


class Shared:
    """The data the simulated users draw from, and what they saw succeed (checked against the tables after)."""

    def __init__(
        self,
        *,
        today: dt.date,
        patient_key: Callable[[str, int], str],
        declarers: list[str],
        readers: list[str],
        deciders: list[str],
        drafts: list[Draft],
        hot_patients: int = 5,
        cold_patients: int = 5000,
        hot_share: float = 0.3,
        seed: int = 2026,
    ):
        rng = random.Random(seed)
        self.today = today
        self.patient_key = patient_key
        self.declarers = declarers  # tokens of accepted psychologists
        self.readers = readers  # reviewers' and admins' tokens reading the queue (departments 75, 92, 13 or all)
        self.deciders = deciders  # national reviewers' and admins' tokens, for any candidature of the pool
        self.drafts = drafts
        self.hot = [random_patient(rng, today) for _ in range(hot_patients)]
        self.cold = [random_patient(rng, today) for _ in range(cold_patients)]
        self.hot_share = hot_share
        self.under_review: dict[str, UnderReview] = {}
        self.open_for_review: list[str] = []
        self.declared: Counter = Counter()  # patient key -> declarations answered 201
        self.refused: Counter = Counter()  # (route, status, error code) -> answers that were not 2xx
        self.lock = threading.Lock()

    def add_for_review(self, candidature_id: str, version: int, status: str) -> None:
        with self.lock:
            self.under_review[candidature_id] = UnderReview(candidature_id, version, status)
            self.open_for_review.append(candidature_id)

    def pick_for_review(self, rng: random.Random) -> UnderReview | None:
        with self.lock:
            while self.open_for_review:
                index = rng.randrange(len(self.open_for_review))
                entry = self.under_review[self.open_for_review[index]]
                if next_action(entry.status) is not None:
                    return UnderReview(entry.candidature_id, entry.version, entry.status)
                self.open_for_review[index] = self.open_for_review[-1]
                self.open_for_review.pop()
            return None

    def reviewed(self, candidature_id: str, version: int, status: str, action: str | None) -> None:
        with self.lock:
            entry = self.under_review[candidature_id]
            if version >= entry.version:
                entry.version, entry.status = version, status
            if action is not None:
                entry.decisions.append((version, action))

    @property
    def open_count(self) -> int:
        with self.lock:
            return len(self.open_for_review)


# ---------------------------------------------------------------- the actions


def next_action(status: str) -> str | None:
    """What a reviewer does next from `status`; None once no reviewer action is left."""
    return {"submitted": "start_review", "in_review": "decide", "accepted": "deconvention"}.get(status)


REASONS = {
    "reject": "Le master de psychologie n'est pas encore obtenu.",
    "request_info": "Merci de joindre l'attestation de diplôme complète.",
    "deconvention": "Fin de conventionnement à la demande du psychologue.",
}


def read_queue(call: Call, shared: Shared, rng: random.Random) -> None:
    token = rng.choice(shared.readers)
    params: dict[str, Any] = {"status": rng.choice(["submitted", "in_review", "info_requested", "accepted"])}
    if rng.random() < 0.5:
        params["department"] = rng.choice(["75", "92", "13"])
    params["limit"] = rng.choice([10, 20, 50])
    call(QUEUE, "/v1/review/candidatures", token=token, params=params)


def read_search(call: Call, shared: Shared, rng: random.Random) -> None:
    """A patient looking for a psychologist near a demo address (the search contract of DESIGN.md)."""
    *_, lat, lon = rng.choice(DEMO_PRACTICES)
    params: dict[str, Any] = {
        "lat": round(lat + rng.uniform(-0.05, 0.05), 5),
        "lon": round(lon + rng.uniform(-0.05, 0.05), 5),
        "radius_km": rng.choice([5, 10, 25, 50]),
        "limit": rng.choice([10, 20]),
    }
    if rng.random() < 0.2:
        params["teleconsultation"] = "true"
    if rng.random() < 0.2:
        params["public"] = rng.choice(["enfants", "adolescents", "adultes"])
    call(SEARCH, "/v1/psychologists/search", params=params)


def declare(call: Call, shared: Shared, rng: random.Random) -> None:
    token = rng.choice(shared.declarers)
    patient = rng.choice(shared.hot if rng.random() < shared.hot_share else shared.cold)
    # The demo psychologists were accepted when the stack was seeded: their convention starts today.
    day = shared.today
    body = {
        "patient": {"nir": patient.nir, "birth_date": patient.birth_date.isoformat()},
        "date": day.isoformat(),
        "situation": rng.choice([None, None, None, "css", "ald", "ame"]),
    }
    status, _ = call(DECLARE, "/v1/sessions", token=token, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    if status == 201:
        patient_key = shared.patient_key(patient.nir, day.year)
        with shared.lock:
            shared.declared[patient_key] += 1


def edit(call: Call, shared: Shared, rng: random.Random) -> None:
    draft = rng.choice(shared.drafts)
    change = rng.choice(
        [
            {"experience_years": rng.randint(0, 40)},
            {"website": f"https://cabinet-{rng.randint(1, 9999)}.example.fr"},
            {"languages": rng.sample(["fr", "en", "es", "de", "it", "ar", "pt"], k=rng.randint(1, 3))},
            {"teleconsultation": rng.random() < 0.5},
        ]
    )
    path = f"/v1/candidatures/{draft.candidature_id}"
    with shared.lock:
        version = draft.version
    status, body = call(PATCH, path, token=draft.token, json=change, headers={"If-Match": str(version)})
    if status == 200:
        with shared.lock:
            draft.landed += 1
            draft.version = max(draft.version, body["version"])
    elif status == 412:  # someone edited it meanwhile: read it again, as the psychologist's page would
        status, body = call(READ_ONE, path, token=draft.token)
        if status == 200:
            with shared.lock:
                draft.version = max(draft.version, body["version"])


def transition(call: Call, shared: Shared, rng: random.Random) -> None:
    entry = shared.pick_for_review(rng)
    if entry is None:
        raise RuntimeError("no candidature left to review: the pool is topped up too slowly for this rate")
    action = next_action(entry.status)
    if action == "decide":
        action = rng.choices(["accept", "reject", "request_info"], weights=[60, 20, 20])[0]
    body = {"action": action, "reason": REASONS.get(action), "expected_version": entry.version}
    path = f"/v1/candidatures/{entry.candidature_id}/transitions"
    status, answer = call(TRANSITION, path, token=rng.choice(shared.deciders), json=body)
    if status == 200:
        shared.reviewed(entry.candidature_id, answer["version"], answer["status"], action)
    elif status == 409 and answer["error"]["code"] == "version_conflict":
        latest = answer["error"]["details"][0]
        shared.reviewed(entry.candidature_id, latest["current_version"], latest["status"], None)


ACTIONS: dict[str, Callable[[Call, Shared, random.Random], None]] = {
    "search": read_search,
    "queue": read_queue,
    "declare": declare,
    "edit": edit,
    "transition": transition,
}
