"""Psychologists' conventions: one item per psychologist in the application table.

Written in the same transaction as the decision that starts or ends the convention (`convention_write`);
declaring and cancelling sessions check it inside their own transaction (`convention_check`), so a
psychologist deconventioned a millisecond earlier is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from msp.config import settings
from msp.storage.aws import aws_errors, dynamodb_client, from_item, get_item, to_item, without_keys

if TYPE_CHECKING:
    from msp.candidatures.convention import ConventionChange

CONVENTION_ACCEPTED = "accepted"
_STATUSES = ("accepted", "deconventioned")


def convention_key(psychologist_sub: str) -> dict[str, Any]:
    return {"pk": {"S": f"PSYCHOLOGIST#{psychologist_sub}"}, "sk": {"S": "CONVENTION"}}


def convention_put(
    *,
    psychologist_sub: str,
    status: str,
    candidature_id: str,
    psychologist_id: str,
    department: str | None,
    updated_at: str,
    start_date: str | None = None,
    end_date: str | None = None,
) -> dict[str, Any]:
    """The convention item as a transaction Put (`start_date`, `end_date`: ISO dates, the first and last day
    it covers; no end_date while no end is decided)."""
    if status not in _STATUSES:
        raise ValueError(f"unknown convention status {status!r}")
    data = {
        "status": status,
        "candidature_id": candidature_id,
        "psychologist_id": psychologist_id,
        "psychologist_sub": psychologist_sub,
        "department": department,
        "updated_at": updated_at,
        "start_date": start_date,
        "end_date": end_date,
    }
    return {"Put": {"TableName": settings().app_table, "Item": convention_key(psychologist_sub) | to_item(data)}}


def convention_write(change: ConventionChange) -> dict[str, Any]:
    """A decision's convention change as a conditional transaction Put: one live convention per psychologist
    (a second accepted candidature is refused), and only the candidature that holds it ends it."""
    put = convention_put(
        psychologist_sub=change.psychologist_sub,
        status=change.status,
        candidature_id=change.candidature_id,
        psychologist_id=change.candidature_id,
        department=change.department,
        updated_at=change.updated_at,
        start_date=change.start_date,
        end_date=change.end_date,
    )["Put"]
    if change.status == CONVENTION_ACCEPTED:
        put["ConditionExpression"] = "attribute_not_exists(pk) OR #status <> :accepted OR candidature_id = :id"
        put["ExpressionAttributeNames"] = {"#status": "status"}
        put["ExpressionAttributeValues"] = {
            ":accepted": {"S": CONVENTION_ACCEPTED},
            ":id": {"S": change.candidature_id},
        }
    else:
        put["ConditionExpression"] = "candidature_id = :id"
        put["ExpressionAttributeValues"] = {":id": {"S": change.candidature_id}}
    return {"Put": put}


def convention_check(psychologist_sub: str, department: str | None = None, *, whole_item: bool = False) -> dict:
    """A transaction ConditionCheck: the psychologist's convention is accepted (in `department`, when given as a
    string; `department=None` with whole_item checks it has none). `whole_item` asks the item back on refusal."""
    condition = "#status = :accepted"
    values = {":accepted": {"S": CONVENTION_ACCEPTED}}
    check: dict[str, Any] = {
        "TableName": settings().app_table,
        "Key": convention_key(psychologist_sub),
        "ExpressionAttributeNames": {"#status": "status"},
    }
    if whole_item:
        if department is None:
            condition += " AND attribute_not_exists(department)"
        else:
            condition += " AND department = :department"
            values[":department"] = {"S": department}
        check["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    check["ConditionExpression"] = condition
    check["ExpressionAttributeValues"] = values
    return {"ConditionCheck": check}


def read_convention(psychologist_sub: str) -> dict[str, Any] | None:
    item = get_item(settings().app_table, convention_key(psychologist_sub))
    return without_keys(from_item(item)) if item else None


def record_convention(**fields: Any) -> None:
    """Write the convention item on its own (demo data, tests); see convention_put for its fields."""
    with aws_errors():
        dynamodb_client().put_item(**convention_put(**fields)["Put"])
