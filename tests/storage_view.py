"""The storage package seen as one namespace, for the tests written against the storage layer as a whole.

Names resolve in the package's modules; `session_store()` pairs the session adapters with the use-case core that
decides on what they read (msp.sessions.declarations), which is how a declaration reaches DynamoDB.
"""

from __future__ import annotations

import importlib
from functools import cached_property
from types import ModuleType
from typing import Any

STORAGE_MODULES = (
    "access_journal",
    "aws",
    "candidatures",
    "conventions",
    "directory",
    "directory_cache",
    "documents",
    "messaging",
    "reports",
    "retention",
    "review_queue",
    "reviewer_scopes",
    "secret_versions",
    "secrets",
    "session_years",
    "sessions",
)


def storage_modules() -> list[ModuleType]:
    return [importlib.import_module(f"msp.storage.{name}") for name in STORAGE_MODULES]


def clear_storage_caches() -> None:
    """Forget every cached client and store, so the next call reads the environment again."""
    for module in storage_modules():
        for value in vars(module).values():
            if (
                callable(value)
                and hasattr(value, "cache_clear")
                and getattr(value, "__module__", "") == module.__name__
            ):
                value.cache_clear()


class SessionPaths:
    """A declaration, a quota look-up and a cancellation as the API runs them, plus the tally's year reads."""

    def __init__(self) -> None:
        from msp.storage.session_years import session_year_store
        from msp.storage.sessions import session_store

        self.store = session_store()
        self.years = session_year_store()

    def record_declaration(self, session):
        """Decide and record a SessionRequest as the declaring route does, journal entry included."""
        from msp.sessions.declarations import record_session
        from msp.sessions.journal import JournalEntry

        answer, _ = record_session(self.store, session, JournalEntry.declaring(session))
        return answer

    def sessions_used(self, psychologist_sub: str, patient_key: str, year: int) -> int:
        from msp.sessions.decisions import require_accepted

        state = self.store.declaration_state(psychologist_sub, patient_key, year)
        require_accepted(state.convention)
        return state.used

    def cancel(self, session_id: str, psychologist_sub: str, today) -> None:
        from msp.clock import now_iso
        from msp.sessions.decisions import decide_cancellation
        from msp.sessions.journal import JournalEntry

        stored = self.store.stored_session(session_id)
        patient_key, year = decide_cancellation(stored, psychologist_sub, today)
        entry = JournalEntry(psychologist_sub, "cancel", now_iso(), patient_key=patient_key, session_id=session_id)
        self.store.record_cancellation(entry, year)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.years, name)


class StorageView:
    @cached_property
    def _modules(self) -> list[ModuleType]:
        return storage_modules()

    def session_store(self) -> SessionPaths:
        return SessionPaths()

    def __getattr__(self, name: str) -> Any:
        for module in self._modules:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"no storage module defines {name}")
