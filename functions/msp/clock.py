"""Time, in one place so tests can reason about it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

# The programme's calendar: a session held in Paris at 23:30 on 31 December counts in that year.
PROGRAMME_TIMEZONE = ZoneInfo("Europe/Paris")

# How far the clock is moved from the real one: zero unless the local stack was started on a chosen day
# (make run TODAY=...). Nothing deployed moves it: no setting, variable or route reaches shift_to.
_shift = dt.timedelta(0)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + _shift


def shift_to(day: dt.date | None) -> None:
    """Run as if today in Paris were `day`, the time of day kept and going on (None: the real clock again).

    For the local stack and the tests only: the rules of any period (prices, referrals, closing dates, tallies)
    can then be tried as they applied on that day."""
    global _shift
    if day is None:
        _shift = dt.timedelta(0)
        return
    _shift = dt.timedelta(days=(day - programme_today(dt.datetime.now(dt.UTC))).days)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(utc_now())


def programme_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Europe/Paris (metropolitan France), whatever the server's timezone."""
    return (now or utc_now()).astimezone(PROGRAMME_TIMEZONE).date()
