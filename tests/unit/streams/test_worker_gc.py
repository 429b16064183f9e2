"""The worker's collector settings (streams/worker.py, `tune_gc`; bench/NOTES.md, section 14)."""

from __future__ import annotations

import gc

import pytest

from streams.worker import tune_gc


@pytest.fixture
def restored_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_young_generation_is_collected_less_often_and_start_up_is_never_walked(restored_gc):
    gc.set_threshold(700, 10, 10)
    tune_gc(20_000)
    assert gc.get_threshold() == (20_000, 10, 10)
    assert gc.get_freeze_count() > 0  # what start-up made is out of every collection


def test_zero_leaves_pythons_settings(restored_gc):
    gc.set_threshold(700, 10, 10)
    tune_gc(0)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_collector_still_runs_on_its_own(restored_gc):
    """Less often, not never: past the threshold an allocation starts a collection."""
    tune_gc(20_000)
    generations: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "stop":
            generations.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        kept = [[] for _ in range(50_000)]  # more container allocations than the threshold
    finally:
        gc.callbacks.remove(seen)
    assert len(kept) == 50_000
    assert generations, "no automatic collection after 50,000 allocations"
