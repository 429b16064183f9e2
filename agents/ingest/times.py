"""Event times: parse ISO-8601 in the agency's zone, convert to UTC, refuse the implausible."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from agents.ingest.rejection import Rejected


def parse_time(field: str, text: str, zone: tzinfo) -> datetime:
    """An aware UTC datetime; a time without offset is read in `zone`."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected("invalid_time", field, f"not ISO-8601: {text[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 lies beyond datetime.max in UTC
        raise Rejected("time_out_of_range", field, f"{text[:40]!r} is beyond the year range") from None


def check_range(field: str, when: datetime, now: datetime, min_year: int, skew_s: float) -> None:
    if when.year < min_year:
        raise Rejected("time_out_of_range", field, f"{when.year} is before {min_year}")
    if when > now + timedelta(seconds=skew_s):
        raise Rejected("time_out_of_range", field, f"{(when - now).total_seconds():.0f} s in the future")


def iso_utc(when: datetime) -> str:
    """UTC ISO-8601 with a 'Z', to the second: the one time format of normalised events."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_utc(value: Any) -> datetime | None:
    """A time of a normalised event or an SA update (ISO-8601, a naive one taken as UTC) as
    an aware UTC datetime; None when missing or unreadable, so that a reader of derived
    data (a renderer, a measure) leaves it out instead of failing."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)
