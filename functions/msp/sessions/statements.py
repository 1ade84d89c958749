"""A psychologist's statements: the sessions they declared in a month, and the month's totals per payer, to
reconcile with what the Assurance Maladie and the complémentaires paid.

Patients appear under a reference that is stable for one psychologist and says nothing to anyone else: an HMAC
of the patient key under a key derived from the patient-key secret for that psychologist alone. It is neither
the NIR nor the patient key, and two psychologists' references to the same patient differ.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from msp import cursors
from msp.auth import Caller, Role
from msp.documented import Documented

if TYPE_CHECKING:
    from msp.sessions.rules import PatientKeyring

# Who pays what, in the order a statement lists them; a payer absent from a session counts zero.
PAYERS = {
    "amo": "Assurance Maladie (AMO)",
    "amc": "Complémentaire santé (AMC)",
    "state": "État (AME)",
    "patient_advance": "Avance du patient",
}
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_REFERENCE_CONTEXT = b"msp statement patient reference\x00"


class MonthQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int = Field(ge=2022, le=2100)
    month: int = Field(ge=1, le=12)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        following = dt.date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return following - dt.timedelta(days=1)


class SessionsQuery(MonthQuery):
    cursor: (
        Annotated[
            str,
            StringConstraints(max_length=1000),
            Documented(description="The next_cursor of the previous page, for the same month (valid for 8 hours)."),
        ]
        | None
    ) = None
    limit: int = Field(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class StatementLine(BaseModel):
    session_id: str
    date: dt.date
    patient_reference: str | None = Field(description="Stable for this psychologist; none once cancelled")
    kind: str
    situation: str | None
    amounts: dict[str, str] = Field(description="Euros with 2 decimals: price, then each payer's share")
    cancelled: bool


class StatementPage(BaseModel):
    year: int
    month: int
    sessions: list[StatementLine]
    next_cursor: str | None


class PayerTotal(BaseModel):
    payer: str
    label: str
    amount: str


class MonthStatement(BaseModel):
    year: int
    month: int
    sessions: int = Field(description="Sessions counted (cancelled ones left out)")
    cancelled: int
    by_kind: dict[str, int]
    total_price: str
    payers: list[PayerTotal]


class SessionsOfPsychologist(Protocol):
    def sessions_of(
        self, psychologist_sub: str, first_day: str, last_day: str, after: str | None, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Stored session items by date, after the position `after`; the next position when more are left."""
        ...


def patient_reference(keyring: PatientKeyring, psychologist_sub: str, patient_key: str) -> str:
    """`P-` and 12 hex digits: the same patient gets the same reference from one psychologist, always."""
    key_id = patient_key.split(":", 1)[0]
    version = next(key for key in keyring.keys if key.key_id == key_id)
    derived = hmac.new(
        version.secret.get_secret_value().encode(), _REFERENCE_CONTEXT + psychologist_sub.encode(), hashlib.sha256
    ).digest()
    return "P-" + hmac.new(derived, patient_key.encode(), hashlib.sha256).hexdigest()[:12].upper()


def _euros(value: Any) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.01'))}"


def statement_line(item: dict[str, Any], keyring: PatientKeyring) -> StatementLine:
    """One stored session as its psychologist sees it."""
    patient_key = item.get("patient_key")
    return StatementLine(
        session_id=item["session_id"],
        date=dt.date.fromisoformat(item["date"]),
        patient_reference=patient_reference(keyring, item["psychologist_sub"], patient_key) if patient_key else None,
        kind=item.get("kind") or ("assessment" if item.get("first_session") else "follow_up"),
        situation=item.get("situation", item.get("tiers_payant_reason")),
        amounts={name: _euros(item[name]) for name in ("price", *PAYERS) if name in item},
        cancelled="cancelled_at" in item,
    )


def _context(caller: Caller, query: SessionsQuery) -> str:
    return f"statement|{caller.sub}|{query.year}-{query.month:02d}"


def list_sessions(
    port: SessionsOfPsychologist,
    keyring: PatientKeyring,
    caller: Caller,
    query: SessionsQuery,
    cursor_keys: cursors.CursorKeys,
) -> StatementPage:
    """The caller's sessions of the month, by date, a page at a time."""
    caller.require(Role.PSYCHOLOGIST)
    context = _context(caller, query)
    after = None
    if query.cursor:
        after = cursors.open_sealed(query.cursor, context=context, keys=cursor_keys).get("after")
    items, position = port.sessions_of(
        caller.sub, query.first_day.isoformat(), query.last_day.isoformat(), after, query.limit
    )
    next_cursor = None
    if position is not None:
        lifetime = cursors.LIST_CURSOR_LIFETIME
        next_cursor = cursors.seal({"after": position}, context=context, keys=cursor_keys, lifetime=lifetime)
    return StatementPage(
        year=query.year,
        month=query.month,
        sessions=[statement_line(item, keyring) for item in items],
        next_cursor=next_cursor,
    )


def month_statement(port: SessionsOfPsychologist, caller: Caller, query: MonthQuery) -> MonthStatement:
    """The month's totals: sessions by kind, the price and each payer's share, cancelled sessions left out."""
    caller.require(Role.PSYCHOLOGIST)
    items, _ = port.sessions_of(caller.sub, query.first_day.isoformat(), query.last_day.isoformat(), None, None)
    counted = [item for item in items if "cancelled_at" not in item]
    by_kind: dict[str, int] = {}
    for item in counted:
        kind = item.get("kind") or ("assessment" if item.get("first_session") else "follow_up")
        by_kind[kind] = by_kind.get(kind, 0) + 1
    return MonthStatement(
        year=query.year,
        month=query.month,
        sessions=len(counted),
        cancelled=len(items) - len(counted),
        by_kind=by_kind,
        total_price=_euros(sum(Decimal(str(item.get("price", 0))) for item in counted)),
        payers=[
            PayerTotal(
                payer=payer, label=label, amount=_euros(sum(Decimal(str(item.get(payer, 0))) for item in counted))
            )
            for payer, label in PAYERS.items()
        ],
    )


def statement_csv(statement: MonthStatement) -> str:
    """The totals as a French spreadsheet opens them: UTF-8 with a BOM, `;` between columns, decimal comma."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Mois", "Payeur", "Montant (€)"])
    month = f"{statement.year}-{statement.month:02d}"
    for total in statement.payers:
        writer.writerow([month, total.label, total.amount.replace(".", ",")])
    writer.writerow([month, "Total des séances", statement.total_price.replace(".", ",")])
    writer.writerow([month, "Nombre de séances", statement.sessions])
    return "\ufeff" + out.getvalue()
