"""Fixtures of the replay tests: the real public data sets and small throwaway profiles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from streams.replay import profile as profiles
from streams.replay.mapping import MappedRow
from streams.replay.player import map_rows, read_rows
from tests.required import unavailable


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared public data sets: RTCC_SHARED_DATA_DIR, else /work/shared/data."""
    for candidate in (os.environ.get("RTCC_SHARED_DATA_DIR"), "/work/shared/data"):
        if candidate and (Path(candidate) / "milwaukee_pd_cfs").is_dir():
            return Path(candidate)
    unavailable("shared data sets not found (set RTCC_SHARED_DATA_DIR)")


Real = tuple[profiles.Profile, list[dict[str, Any]], list[MappedRow]]


@pytest.fixture(scope="session")
def real(data_dir: Path) -> Callable[[str], Real]:
    """name -> (shipped profile, raw rows of its real file, mapped rows); read once."""
    cache: dict[str, Real] = {}

    def get(name: str) -> Real:
        if name not in cache:
            prof = profiles.load(name)
            rows = read_rows(prof, prof.data_path(data_dir))
            cache[name] = (prof, rows, map_rows(prof, rows))
        return cache[name]

    return get


@pytest.fixture
def write_profile(tmp_path: Path) -> Callable[..., Path]:
    def write(data: dict[str, Any], name: str = "p.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def tiny_cad() -> dict[str, Any]:
    """A small valid CAD profile over a CSV with columns id, when, lat, lon, kind."""
    return {
        "name": "tiny",
        "source": "cad",
        "file": "tiny.csv",
        "timezone": "America/Chicago",
        "time_formats": ["%Y-%m-%d %H:%M:%S"],
        "constants": {"agency_id": "MPD", "event_type": "created"},
        "fields": {
            "event_id": "id",
            "incident_number": "id",
            "event_time": "when",
            "latitude": "lat",
            "longitude": "lon",
            "incident_type_text": "kind",
        },
    }
