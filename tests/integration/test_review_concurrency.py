"""Two reviewers decide on the same candidature at the same instant, on DynamoDB Local.

Each round starts two threads behind a Barrier, so their requests leave together: one sends
accept, the other reject, both at the version they read. Exactly one may win.
"""

from __future__ import annotations

import threading

import pytest
import requests

pytestmark = pytest.mark.integration

ROUNDS = 50
DECISIONS = {"accept", "reject"}


def test_concurrent_accept_and_reject_decide_exactly_once(api, stack, make_candidature):
    from msp.storage.candidatures import candidature_store

    reviewers = [api.token("reviewer", sub=f"rev-{n}", departments="75") for n in (1, 2)]
    sessions = [requests.Session(), requests.Session()]  # one connection per reviewer
    for round_number in range(ROUNDS):
        candidature = make_candidature(department="75", status="in_review")
        barrier = threading.Barrier(2)
        answers: dict[str, requests.Response] = {}

        def decide(index: int, action: str, candidature=candidature, barrier=barrier, answers=answers) -> None:
            body = {"action": action, "expected_version": candidature.version}
            if action == "reject":
                body["reason"] = "Dossier incomplet."
            barrier.wait(timeout=10)
            answers[action] = sessions[index].post(
                f"{stack.base_url}/v1/candidatures/{candidature.id}/transitions",
                json=body,
                headers={"Authorization": f"Bearer {reviewers[index]}"},
                timeout=30,
            )

        threads = [
            threading.Thread(target=decide, args=(0, "accept")),
            threading.Thread(target=decide, args=(1, "reject")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        statuses = sorted(response.status_code for response in answers.values())
        assert statuses == [200, 409], f"round {round_number}: {[(a, r.text) for a, r in answers.items()]}"
        (winner,) = [action for action, response in answers.items() if response.status_code == 200]
        loser = answers[(DECISIONS - {winner}).pop()].json()["error"]
        assert loser["code"] in {"version_conflict", "invalid_transition"}

        history = api.call("GET", f"/v1/candidatures/{candidature.id}/history", token=reviewers[0]).json()["events"]
        decisions = [event for event in history if event["action"] in DECISIONS]
        assert [event["action"] for event in decisions] == [winner], f"round {round_number}: {history}"
        current = api.call("GET", f"/v1/candidatures/{candidature.id}", token=reviewers[0]).json()
        assert current["status"] == ("accepted" if winner == "accept" else "rejected")
        assert current["version"] == candidature.version + 1
        convention = candidature_store().convention(candidature.owner_sub)
        assert (convention or {}).get("status") == ("accepted" if winner == "accept" else None)
