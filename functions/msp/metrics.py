"""Business events as CloudWatch metrics, in the embedded metric format (EMF), through Powertools.

One EMF line per event, written when the handler or the use case (through its port) has decided it: each event is
a document of its own (Powertools' EphemeralMetrics, which shares nothing between instances), so nothing waits in
memory for the end of an invocation, nothing leaks into the next one, and an invocation without an event writes
nothing (no "no metrics to publish" warning). The namespace is POWERTOOLS_METRICS_NAMESPACE (the template's
MetricsNamespace); the `service` dimension names the emitting function. Other dimensions come from small closed
sets only (an outcome, a session's kind and situation): never an identifier, a key, a sub or a NIR, and no
metadata. Only the handlers that emit import this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

if TYPE_CHECKING:
    from msp.candidatures.models import DocumentStatus
    from msp.candidatures.workflow import Action
    from msp.sessions.policy import Kind

# A session in no particular situation (`situation: null`, "droit commun") as a dimension value.
COMMON_SITUATION = "common"


class BusinessMetrics:
    """The business events of one function (its `service`); the method names are the events."""

    def __init__(self, service: str):
        self.service = service

    def candidature_created(self) -> None:
        self._emit({"CandidaturesCreated": 1})

    def candidature_submitted(self) -> None:
        self._emit({"CandidaturesSubmitted": 1})

    def decision_taken(self, action: Action) -> None:
        self._emit({"Decisions": 1}, outcome=action.value)

    def document_checked(self, status: DocumentStatus) -> None:
        self._emit({"DocumentsChecked": 1}, outcome=status.value)

    def session_declared(self, kind: Kind, situation: str | None) -> None:
        self._emit({"SessionsDeclared": 1}, kind=kind, situation=situation or COMMON_SITUATION)

    def quota_refused(self) -> None:
        self._emit({"QuotaRefusals": 1})

    def search_answered(self, results: int) -> None:
        self._emit({"Searches": 1, "SearchResults": results})

    def tally_finished(self, drifts_found: int, drifts_repaired: int | None) -> None:
        """A run complete; the drifts it repaired only when it was asked to repair."""
        values = {"TallyFinished": 1, "TallyDriftsFound": drifts_found}
        if drifts_repaired is not None:
            values["TallyDriftsRepaired"] = drifts_repaired
        self._emit(values)

    def _emit(self, values: dict[str, int], **dimensions: str) -> None:
        event = EphemeralMetrics(service=self.service)
        for name, value in dimensions.items():
            event.add_dimension(name=name, value=value)
        for name, count in values.items():
            event.add_metric(name=name, unit=MetricUnit.Count, value=count)
        event.flush_metrics()
