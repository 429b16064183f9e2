"""Two versions of the pipeline measured in alternating runs on the same broker.

    python -m bench.ab --base REV [--new REV] [--pairs 3] [--base-env K=V ...]
                       [--new-env K=V ...] [-- BENCH.PIPELINE ARGS]

On a 2-core box shared with the broker a run's figures move 20-40 % from one run to the
next (bench/NOTES.md), so two versions are compared only in runs that alternate, in the
order new, base, base, new, new, base... (each arm as often first as second). Each version
runs from a git worktree of its revision (`--new` defaults to the working tree as it is,
uncommitted changes included), with `python -m bench.pipeline` and the arguments after
`--` (default: `--events 10000 --workers 1 --rates 500,1000 --rate-seconds 15`, the form of
bench/NOTES.md's pairs). `--base-env` / `--new-env` set settings for one arm only (the same
revision twice with different RTCC_* values is an A/B of a setting). Prints each run and
the medians per arm; the runs' JSON reports stay in --out-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from streams.config import REPO_ROOT, load

DEFAULT_ARGS = ["--events", "10000", "--workers", "1", "--rates", "500,1000",
                "--rate-seconds", "15"]


def order(pairs: int) -> list[str]:
    """new, base, base, new, ...: each arm first in half of the pairs."""
    out: list[str] = []
    for i in range(pairs):
        out += ["new", "base"] if i % 2 == 0 else ["base", "new"]
    return out


def figures(report: dict[str, Any]) -> dict[str, float]:
    """The figures compared, from one bench.pipeline JSON report: the one-worker backlog
    row and each latency rate."""
    out: dict[str, float] = {}
    backlog = [r for r in report["throughput"]
               if r["name"].startswith("B") and r.get("workers") == 1]
    if backlog:
        row = backlog[0]
        out["events/s"] = row["events_per_s"]
        out["CPU s/1k"] = row["cpu_s_per_1k"]
    written = report.get("pipeline_outputs", {}).get("records_per_event")
    if written is not None:
        out["records/event"] = written
    for rate in report.get("latency", []):
        r = rate["rate"]
        for key in ("p50_ms", "p95_ms", "p99_ms", "cpu_s_per_1k"):
            if rate.get(key) is not None:
                out[f"{r}/s {key.replace('_ms', ' ms').replace('cpu_s_per_1k', 'CPU s/1k')}"] \
                    = rate[key]
    return out


def medians(runs: list[tuple[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """arm -> figure -> median over that arm's runs."""
    by_arm: dict[str, dict[str, list[float]]] = {}
    for arm, figs in runs:
        for name, value in figs.items():
            by_arm.setdefault(arm, {}).setdefault(name, []).append(value)
    return {arm: {name: statistics.median(values) for name, values in figs.items()}
            for arm, figs in by_arm.items()}


def table(runs: list[tuple[str, dict[str, float]]]) -> str:
    names = list(dict.fromkeys(name for _, figs in runs for name in figs))
    lines = ["| run | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for i, (arm, figs) in enumerate(runs, 1):
        lines.append(f"| {arm} {i} | " + " | ".join(_fmt(figs.get(n)) for n in names) + " |")
    for arm, figs in medians(runs).items():
        lines.append(f"| **{arm} median** | " + " | ".join(_fmt(figs.get(n)) for n in names)
                     + " |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"ab: expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _worktree(revision: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-q",
                    str(where), revision], check=True)
    return where


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bench_args = DEFAULT_ARGS
    if "--" in argv:
        at = argv.index("--")
        argv, bench_args = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision of the baseline")
    parser.add_argument("--new", help="git revision of the new arm (default: working tree)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--base-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--new-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out-dir", type=Path, help="where the runs' JSON reports go")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="rtcc-ab-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="rtcc-ab-trees-"))
    trees: list[Path] = []
    try:
        base = _worktree(args.base, scratch / "base")
        trees.append(base)
        new = REPO_ROOT
        if args.new:
            new = _worktree(args.new, scratch / "new")
            trees.append(new)
        # The worktrees live elsewhere: the data sets stay where this checkout finds them.
        shared = {"RTCC_SHARED_DATA_DIR": str(load().shared_data_dir)}
        arms = {"base": (base, {**shared, **_env(args.base_env)}),
                "new": (new, {**shared, **_env(args.new_env)})}
        runs: list[tuple[str, dict[str, float]]] = []
        for i, arm in enumerate(order(args.pairs), 1):
            tree, env = arms[arm]
            report = out_dir / f"{i:02d}-{arm}.json"
            print(f"ab: run {i} ({arm}, {tree})", file=sys.stderr, flush=True)
            with report.with_suffix(".log").open("w") as log:  # its tables; progress shows
                subprocess.run([sys.executable, "-m", "bench.pipeline", *bench_args,
                                "--out", str(report)], cwd=tree, env={**os.environ, **env},
                               stdout=log, check=True)
            runs.append((arm, figures(json.loads(report.read_text()))))
        print(f"base = {args.base}, new = {args.new or 'working tree'}; "
              f"python -m bench.pipeline {' '.join(bench_args)}\n")
        print(table(runs))
        print(f"\nab: reports in {out_dir}", file=sys.stderr)
        return 0
    finally:
        for tree in trees:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force",
                            str(tree)], check=False)


if __name__ == "__main__":
    sys.exit(main())
