"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agents.ingest.geo import ServiceAreas
from agents.ingest.normalise import IngestPolicy, Origin
from agents.ingest.taxonomy import Taxonomy
from streams.config import DEFAULTS_DIR, load

# The tests read topics with kafka-python consumers outside any group, on purpose; each
# one's warning that auto-commit is off drowned the report of a failing test in CI.
logging.getLogger("kafka.coordinator.consumer").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's public data sets (../shared/data beside the clone, or RTCC_SHARED_DATA_DIR)."""
    path = load().shared_data_dir
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path}: set RTCC_SHARED_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def policy() -> IngestPolicy:
    """The default ingest policy, with the clock fixed in 2026 so 2018 data is in the past."""
    return IngestPolicy(
        areas=ServiceAreas.load(DEFAULTS_DIR / "service_areas.yaml"),
        taxonomy=Taxonomy.load(DEFAULTS_DIR / "taxonomy.yaml"),
        clock=lambda: datetime(2026, 11, 1, tzinfo=timezone.utc),
    )


@pytest.fixture
def origin() -> Origin:
    return Origin(topic="cad.events", partition=2, offset=41, timestamp_ms=1_700_000_000_000)
