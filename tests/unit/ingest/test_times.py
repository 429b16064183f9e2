"""Reading event and update times: what the later stages rely on to never fail on a time."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from agents.ingest.times import as_utc


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    ("2024-05-01T07:00:00-05:00", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),  # naive: UTC
])
def test_as_utc_reads_iso_times_as_aware_utc(text, expected):
    when = as_utc(text)
    assert when == expected and when.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("value", [None, "", "not a time", 1714564800, "2024-13-01T00:00:00Z"])
def test_as_utc_gives_none_for_what_it_cannot_read(value):
    assert as_utc(value) is None
