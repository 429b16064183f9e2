"""`python -m bench.chaos --repeat N`: the loop that finds a rare failure says which runs."""

from __future__ import annotations

from bench.chaos import Result, tally
from bench.checker import Verdict


def _run(name: str, ok: bool) -> Result:
    """A run whose SA topic matched the reference; `ok` says whether its audiences did."""
    clean = Verdict(reference=900, observed=900, distinct=900, lost=0, duplicated_raw=0,
                    duplicated_after_dedupe=0, unexpected=0, wrong=0)
    return Result(name, 600, verdict=clean, audiences_ok=ok)


def test_tally_counts_clean_runs_per_scenario_and_names_the_failed_ones():
    results = [_run("scale 1 -> 2 -> 1 #1", True), _run("kill -9 #1", True),
               _run("scale 1 -> 2 -> 1 #2", False), _run("kill -9 #2", True)]
    assert tally(results).splitlines() == [
        "scale 1 -> 2 -> 1: 1 of 2 runs clean (failed: #2)",
        "kill -9: 2 of 2 runs clean",
    ]
