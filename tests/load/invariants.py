"""What must hold in the tables after the load, read item by item (Scan: this is a check, not a route).

- Sessions: no counter above its quota; every counter equals its number of session items; the counts handed
  out to one patient's year are 1..n, each once; every declaration answered 201 is stored, once.
- Audit: every status change of every candidature has exactly one audit event (the events, in version order,
  chain from status to status and end at the current one); every transition answered 200 has its event.
- Listing: an accepted candidature holds the convention and lists each of its practices, a deconventioned one
  neither; nothing else is listed.
- Drafts: an edited draft's version is 1 plus the edits answered 200 (no edit lost, none applied twice).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

_deserializer = TypeDeserializer()


@dataclass
class Check:
    name: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, problem: str) -> None:
        self.problems.append(problem)


def scan(client, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend({name: _deserializer.deserialize(value) for name, value in item.items()} for item in page["Items"])
    return items


# ---------------------------------------------------------------- sessions


def session_checks(items: list[dict[str, Any]], declared: Counter | None = None) -> list[Check]:
    """`declared`: declarations answered 201, by patient key (None when the sessions are not all the load's)."""
    counters: dict[tuple[str, int], int] = {}
    sessions: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if item["pk"].startswith("PATIENT#"):
            counters[(item["patient_key"], int(item["year"]))] = int(item.get("used", 0))
        elif item["pk"].startswith("SESSION#") and "cancelled_at" not in item:  # a cancelled one no longer counts
            sessions[(item["patient_key"], int(item["year"]))].append(item)

    quota = Check("no counter above its quota")
    for key, used in counters.items():
        quota.checked += 1
        allowed = max((int(s["quota"]) for s in sessions.get(key, [])), default=None)
        if allowed is not None and used > allowed:
            quota.fail(f"patient {key[0][:12]}… {key[1]}: {used} sessions counted, quota {allowed}")
    for stored in sessions.values():
        for session in stored:
            if int(session["ordinal"]) > int(session["quota"]):
                quota.fail(f"session {session['session_id']} counted as #{session['ordinal']} of {session['quota']}")

    equal = Check("every counter equals its number of sessions")
    for key in counters.keys() | sessions.keys():
        equal.checked += 1
        used, stored = counters.get(key), len(sessions.get(key, []))
        if used != stored:
            equal.fail(f"patient {key[0][:12]}… {key[1]}: counter {used}, {stored} session items")

    once = Check("each count handed out once (ordinals 1..n)")
    for key, stored in sessions.items():
        once.checked += 1
        ordinals = sorted(int(session["ordinal"]) for session in stored)
        if ordinals != list(range(1, len(stored) + 1)):
            once.fail(f"patient {key[0][:12]}… {key[1]}: ordinals {ordinals}")

    priced = Check("the first session counted is the one assessment, and its payers add up to its price")
    for stored in sessions.values():
        for session in stored:
            priced.checked += 1
            first = int(session["ordinal"]) == 1
            if (session["kind"] == "assessment") != first:
                priced.fail(f"session {session['session_id']} is #{session['ordinal']} but a {session['kind']}")
            paid = sum(Decimal(str(session.get(payer, 0))) for payer in ("amo", "amc", "state"))
            if paid != Decimal(str(session["price"])):
                priced.fail(f"session {session['session_id']}: payers {paid}, price {session['price']}")

    checks = [quota, equal, once, priced]
    if declared is not None:
        answered = Check("every declaration answered 201 is stored, once")
        stored_by_patient = Counter({key[0]: len(items) for key, items in sessions.items()})
        for patient in declared.keys() | stored_by_patient.keys():
            answered.checked += 1
            if declared[patient] != stored_by_patient[patient]:
                answered.fail(
                    f"patient {patient[:12]}…: {declared[patient]} answered 201, {stored_by_patient[patient]} stored"
                )
        checks.append(answered)
    return checks


# ---------------------------------------------------------------- candidatures, audit trail, listing


def _by_candidature(items: list[dict[str, Any]]) -> tuple[dict[str, dict], dict[str, list[dict]], dict[str, dict]]:
    candidatures, audits, conventions = {}, defaultdict(list), {}
    for item in items:
        pk, sk = item["pk"], item["sk"]
        if pk.startswith("CANDIDATURE#") and sk == "CANDIDATURE":
            candidatures[item["id"]] = item
        elif pk.startswith("CANDIDATURE#") and sk.startswith("AUDIT#"):
            audits[item["candidature_id"]].append(item)
        elif pk.startswith("PSYCHOLOGIST#") and sk == "CONVENTION":
            conventions[item["psychologist_sub"]] = item
    for events in audits.values():
        events.sort(key=lambda event: int(event["version"]))
    return candidatures, audits, conventions


def audit_checks(items: list[dict[str, Any]], decisions: dict[str, list[tuple[int, str]]]) -> list[Check]:
    """`decisions`: the transitions answered 200, (version written, action) by candidature id."""
    candidatures, audits, _ = _by_candidature(items)

    chain = Check("every status change has exactly one audit event")
    for candidature_id, candidature in candidatures.items():
        chain.checked += 1
        status = None
        for event in audits.get(candidature_id, []):
            if event.get("from_status") != status:
                chain.fail(f"{candidature_id} v{event['version']}: from {event.get('from_status')}, was {status}")
            if int(event["version"]) > int(candidature["version"]):
                chain.fail(
                    f"{candidature_id}: audit event v{event['version']} after the item's v{candidature['version']}"
                )
            status = event["to_status"]
        if status != candidature["status"]:
            chain.fail(f"{candidature_id}: {candidature['status']} but its audit trail ends at {status}")
    orphans = audits.keys() - candidatures.keys()
    for candidature_id in orphans:
        chain.fail(f"audit events for {candidature_id}, which is not stored")

    answered = Check("every transition answered 200 has its audit event")
    for candidature_id, made in decisions.items():
        answered.checked += 1
        events = {int(event["version"]): event for event in audits.get(candidature_id, [])}
        for version, action in made:
            event = events.get(version)
            if event is None or event["action"] != action:
                answered.fail(f"{candidature_id} v{version} {action}: audit event {event and event['action']}")
        reviewer_events = [e for e in events.values() if e["role"] in {"reviewers", "admins"}]
        if len(reviewer_events) != len(made):
            answered.fail(f"{candidature_id}: {len(made)} transitions answered 200, {len(reviewer_events)} audited")
    return [chain, answered]


def listing_check(app_items: list[dict[str, Any]], directory_items: list[dict[str, Any]]) -> Check:
    candidatures, _, conventions = _by_candidature(app_items)
    from msp.directory.listing import LISTING_FIELDS

    owner = LISTING_FIELDS.index("psychologist_id")
    # Practice items carry the public fields as a JSON array; profiles and density counters are not practices.
    listed = Counter(json.loads(item["listing"])[owner] for item in directory_items if "listing" in item)
    check = Check("accepted candidatures hold their convention and list each practice; others list nothing")
    for candidature_id, candidature in candidatures.items():
        status = candidature["status"]
        if status not in {"accepted", "deconventioned"}:
            if listed[candidature_id]:
                check.fail(f"{candidature_id} ({status}) has {listed[candidature_id]} listed practices")
            continue
        check.checked += 1
        convention = conventions.get(candidature["owner_sub"]) or {}
        holder, held = convention.get("candidature_id"), convention.get("status")
        if holder != candidature_id or held != status:
            check.fail(f"{candidature_id} ({status}): convention {held} held by {holder}")
        practices = len(candidature["fields"].get("practices") or []) if status == "accepted" else 0
        if listed[candidature_id] != practices:
            check.fail(f"{candidature_id} ({status}): {listed[candidature_id]} listed practices, expected {practices}")
    for psychologist_id in listed.keys() - candidatures.keys():
        check.fail(f"listed practices of {psychologist_id}, which is not stored")
    return check


def drafts_check(app_items: list[dict[str, Any]], edits: dict[str, int]) -> Check:
    """`edits`: PATCHes answered 200, by draft id (the drafts change by edits only)."""
    candidatures, _, _ = _by_candidature(app_items)
    check = Check("every edit answered 200 landed once (version = 1 + edits)")
    for candidature_id, landed in edits.items():
        check.checked += 1
        version = int(candidatures[candidature_id]["version"]) if candidature_id in candidatures else None
        if version != 1 + landed:
            check.fail(f"draft {candidature_id}: version {version} after {landed} edits answered 200")
    return check
