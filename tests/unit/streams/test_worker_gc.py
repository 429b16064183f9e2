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


def test_cycles_are_still_collected(restored_gc):
    tune_gc(20_000)

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
