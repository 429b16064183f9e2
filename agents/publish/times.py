"""Reading the ISO-8601 times of SA updates for the standards that render them (EIDO, CAP)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def as_utc(value: Any) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime (a naive one is taken as UTC); None when
    missing or unreadable, so that a renderer leaves the element out instead of failing."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)
