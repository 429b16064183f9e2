"""bench/ab.py: the order of alternating runs and the figures it compares."""

from __future__ import annotations

import json

from bench import ab
from streams.config import REPO_ROOT

REPORT = REPO_ROOT / "bench" / "results" / "pipeline-2026-11-30T145224Z.json"


def test_each_arm_runs_first_in_half_of_the_pairs():
    assert ab.order(3) == ["new", "base", "base", "new", "new", "base"]
    runs = ab.order(4)
    assert runs.count("new") == runs.count("base") == 4
    assert [runs[i] for i in range(0, 8, 2)] == ["new", "base", "new", "base"]


def test_figures_of_a_real_report():
    figs = ab.figures(json.loads(REPORT.read_text()))
    assert round(figs["events/s"]) == 1177
    assert round(figs["CPU s/1k"], 3) == 0.861
    assert round(figs["records/event"], 1) == 12.7
    assert (figs["500/s p50 ms"], figs["500/s p99 ms"]) == (71.0, 309.0)
    assert (figs["1000/s p95 ms"], figs["1000/s p99 ms"]) == (558.0, 610.0)
    assert round(figs["1000/s CPU s/1k"], 3) == 0.944


def test_medians_per_arm_and_the_table():
    runs = [("new", {"events/s": 1500.0, "500/s p99 ms": 190.0}),
            ("base", {"events/s": 1300.0, "500/s p99 ms": 200.0}),
            ("base", {"events/s": 1400.0, "500/s p99 ms": 260.0}),
            ("new", {"events/s": 1600.0}),
            ("new", {"events/s": 1550.0, "500/s p99 ms": 210.0}),
            ("base", {"events/s": 1350.0, "500/s p99 ms": 180.0})]
    assert ab.medians(runs) == {"new": {"events/s": 1550.0, "500/s p99 ms": 200.0},
                                "base": {"events/s": 1350.0, "500/s p99 ms": 200.0}}
    text = ab.table(runs)
    assert "| new 4 | 1,600 | - |" in text
    assert "| **base median** | 1,350 | 200 |" in text
