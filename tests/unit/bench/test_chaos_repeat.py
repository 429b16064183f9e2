"""`python -m bench.chaos --repeat N`: the loop that finds a rare failure says which runs."""

from __future__ import annotations

from bench.chaos import Result, tally


def _run(name: str, ok: bool) -> Result:
    return Result(name, 600, audiences_ok=ok)


def test_tally_counts_clean_runs_per_scenario_and_names_the_failed_ones():
    results = [_run("scale 1 -> 2 -> 1 #1", True), _run("kill -9 #1", True),
               _run("scale 1 -> 2 -> 1 #2", False), _run("kill -9 #2", True)]
    for r in results:  # a verdict with nothing lost, so only audiences_ok decides
        r.verdict = type("V", (), {"ok": True})()
    assert tally(results).splitlines() == [
        "scale 1 -> 2 -> 1: 1 of 2 runs clean (failed: #2)",
        "kill -9: 2 of 2 runs clean",
    ]
