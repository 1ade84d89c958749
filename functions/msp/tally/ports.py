"""What the tally job and the statistics route need from storage, as Protocols (msp.storage.session_years and
msp.storage.reports implement them), and the business event of a finished run (msp.metrics.BusinessMetrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from msp.tally.rules import Row


class YearSessions(Protocol):
    def year_pages(
        self, year: int, shard: int, start_key: dict[str, Any] | None = None, page_size: int | None = None
    ) -> Iterator[tuple[list[Row], dict[str, Any] | None]]:
        """A shard's rows page by page, each with the key to resume after it (None after the last page)."""
        ...

    def repair_counter(
        self,
        patient_key: str,
        year: int,
        *,
        seen: int | None,
        seen_updated_at: str | None,
        sessions: int,
        run_id: str,
        now: str,
    ) -> str:
        """Set a drifted counter to the sessions found if it still holds what was read: REPAIRED or
        CHANGED_SINCE_READ."""
        ...


class ReportReader(Protocol):
    def latest(self, year: int) -> dict[str, Any] | None:
        """The pointer to the year's last complete report; None when none has completed."""
        ...

    def read_json(self, key: str) -> Any: ...


class Reports(ReportReader, Protocol):
    def run_state(self, year: int, run_id: str) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]: ...

    def save_run(self, year: int, run_id: str, manifest: dict[str, Any]) -> None: ...

    def save_checkpoint(self, year: int, run_id: str, shard: int, checkpoint: dict[str, Any]) -> None: ...

    def write_report(self, year: int, run_id: str, files: dict[str, tuple[bytes, str]]) -> None: ...

    def set_latest(self, year: int, pointer: dict[str, Any]) -> None: ...


class TallyMetrics(Protocol):
    def tally_finished(self, drifts_found: int, drifts_repaired: int | None) -> None:
        """Counted once per run, by the invocation that completes it; drifts repaired only when asked to repair."""
        ...
