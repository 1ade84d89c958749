"""Time, in one place so tests can reason about it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

# The programme's calendar: a session held in Paris at 23:30 on 31 December counts in that year.
PROGRAMME_TIMEZONE = ZoneInfo("Europe/Paris")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(utc_now())


def programme_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Europe/Paris (metropolitan France), whatever the server's timezone."""
    return (now or utc_now()).astimezone(PROGRAMME_TIMEZONE).date()
