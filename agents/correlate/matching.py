"""Which incidents are the same event, and which reports and crisis calls belong to one (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

import h3

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); exact enough at the scale of a city block."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class MatchRules:
    """Defaults follow dispatch paging practice: 0.05 mile (80 m) within 10 minutes."""

    duplicate_radius_m: float = 80.0
    duplicate_window_s: float = 600.0
    report_radius_m: float = 250.0
    report_window_s: float = 3600.0  # a report up to an hour after the call, while active
    crisis_radius_m: float = 250.0
    crisis_window_s: float = 1800.0
    # Categories that may describe one event; a category is always compatible with itself.
    compatible: tuple[frozenset[str], ...] = field(default_factory=lambda: (
        frozenset({"violent", "disorder"}),
        frozenset({"medical", "fire", "traffic"}),
        frozenset({"mental_health", "welfare", "medical"}),
    ))

    # Officer-initiated work and unclassified calls are never merged: two traffic stops at one
    # corner are two stops, and a "follow up" says nothing about the event it follows.
    never_merged: frozenset[str] = frozenset({"proactive", "other"})

    def categories_compatible(self, a: str, b: str) -> bool:
        if a in self.never_merged or b in self.never_merged:
            return False
        return a == b or any(a in group and b in group for group in self.compatible)


def rings_for(radius_m: float, resolution: int) -> int:
    """How many H3 rings around a cell cover every point within radius_m of the cell."""
    edge = h3.average_hexagon_edge_length(resolution, unit="m")
    return max(1, math.ceil(radius_m / (edge * math.sqrt(3) / 2)))


@lru_cache(maxsize=8192)
def disk(cell: str, rings: int) -> tuple[str, ...]:
    """`h3.grid_disk`, remembered: calls come again and again from the same few thousand
    cells of a city (one per block at resolution 9), and building the disk's list of
    strings was 5 % of a worker's samples (bench/NOTES.md, section 14). At most ~11 MiB
    (8,192 disks of up to 19 cells); the Milwaukee replay fills 2,096."""
    return tuple(h3.grid_disk(cell, rings))


class CellIndex:
    """Active subjects by H3 cell, for "what is near here" without scanning everything."""

    def __init__(self) -> None:
        self.by_cell: dict[str, set[str]] = {}
        self.cell_of: dict[str, str] = {}

    def add(self, subject_id: str, cell: str | None) -> None:
        if cell is None:
            return
        self.remove(subject_id)
        self.by_cell.setdefault(cell, set()).add(subject_id)
        self.cell_of[subject_id] = cell

    def remove(self, subject_id: str) -> None:
        cell = self.cell_of.pop(subject_id, None)
        if cell is not None:
            members = self.by_cell.get(cell)
            if members is not None:
                members.discard(subject_id)
                if not members:
                    del self.by_cell[cell]

    def near(self, cell: str, rings: int) -> list[str]:
        """Subjects in the cells within `rings` of `cell`, in a deterministic order."""
        found: set[str] = set()
        by_cell = self.by_cell
        for neighbour in disk(cell, rings):
            members = by_cell.get(neighbour)
            if members:
                found |= members
        return sorted(found)

    def __len__(self) -> int:
        return len(self.cell_of)


def closest(candidates: Iterable[tuple[float, str]]) -> str | None:
    """The nearest candidate; ties go to the smaller id, so the choice is deterministic."""
    best = min(candidates, default=None)
    return best[1] if best else None
