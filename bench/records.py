"""The normalised event made the plain way (schemas/records.py) against Faust's Record path.

    python -m bench.records [--profile milwaukee_pd_cfs] [--rounds 5]

What ingest does per event after validation, on the events of a replay profile, in one
process and alternating rounds: build the event, copy it for each ghost, and serialise each
copy for the normalised topic. Faust's path: `NormalisedEvent(**fields)`, `derive`, and the
topic's `prepare_value`; the plain path: `records.build`, `records.copy`, `records.dumps`.
Prints CPU microseconds per event for each (the best round), and checks that both wrote
the same bytes. No broker: the figures are of the code alone (bench/NOTES.md section 40).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from agents.ingest.normalise import IngestPolicy, ghosts
from schemas import records
from schemas.envelope import NormalisedEvent, Pii
from streams import channels
from streams.config import load
from streams.offline import ingest_profile
from streams.worker import tune_gc

Case = tuple[dict[str, Any], list[dict[str, Any]]]  # an event's fields, its ghosts' changes


def cases(profile: str) -> list[Case]:
    settings = load()
    policy = IngestPolicy.from_settings(settings)
    events, _ = ingest_profile(profile, settings=settings)
    out = []
    for event in events:
        fields = records.asdict(event)
        if fields["pii"] is not None:
            fields["pii"] = records.asdict(fields["pii"])
        out.append((fields, [{"area_key": g.area_key, "ghost": True}
                             for g in ghosts(event, policy)]))
    return out


def faust_path(batch: list[Case]) -> list[bytes]:
    topic, written = channels.normalised, []
    for fields, changes in batch:
        pii = fields["pii"]
        event = NormalisedEvent(**{**fields, "pii": Pii(**pii) if pii else None})
        for copy in (event, *(event.derive(**change) for change in changes)):
            written.append(topic.prepare_value(copy, None)[0])
    return written


def plain_path(batch: list[Case]) -> list[bytes]:
    topic, written = channels.normalised, []
    for fields, changes in batch:
        pii = fields["pii"]
        event = records.build(NormalisedEvent,
                              **{**fields, "pii": records.build(Pii, **pii) if pii else None})
        for copy in (event, *(records.copy(event, **change) for change in changes)):
            written.append(topic.prepare_value(records.dumps(copy), "raw")[0])
    return written


def cpu_us_per_event(path: Callable[[list[Case]], list[bytes]], batch: list[Case]) -> float:
    started = time.process_time()
    path(batch)
    return (time.process_time() - started) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="milwaukee_pd_cfs")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tune_gc(load().gc_young_threshold)  # the worker's collector settings
    batch = cases(args.profile)
    copies = sum(1 + len(changes) for _, changes in batch)
    assert faust_path(batch) == plain_path(batch), "the two paths wrote different bytes"
    best = {"faust": float("inf"), "plain": float("inf")}
    for round_ in range(args.rounds):  # alternate, each path first in half the rounds
        order = ("faust", "plain") if round_ % 2 == 0 else ("plain", "faust")
        for name in order:
            gc.collect()
            figure = cpu_us_per_event(faust_path if name == "faust" else plain_path, batch)
            best[name] = min(best[name], figure)
    print(f"{args.profile}: {len(batch):,} events, {copies / len(batch):.2f} copies per event "
          f"(ghosts included), best of {args.rounds} rounds, CPU us per event")
    print("| path | build + ghosts + serialise, us / event |")
    print("|---|---:|")
    print(f"| Faust Record (baseline) | {best['faust']:.1f} |")
    print(f"| schemas.records | {best['plain']:.1f} ({best['plain'] / best['faust']:.2f} x) |")


if __name__ == "__main__":
    main()
