"""The pipeline's pure stages over a replay, without Kafka: for reports, tests and profiles.

Runs a replay profile's messages through ingest (decode, validate, normalise) and the
correlation engine in event-time order, exactly as the worker's agents call them, and
collects what came out. What it cannot show is the broker's part (partitioning, delivery);
the integration tests cover that.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import orjson

from agents.correlate.engine import CorrelationConfig, Correlator
from agents.correlate.hotspots import HotspotTracker
from agents.correlate.ordering import event_ts
from agents.ingest.normalise import IngestPolicy, Origin, ingest
from agents.ingest.rejection import Rejected
from schemas.envelope import NormalisedEvent
from streams.config import Settings, load
from streams.replay import player
from streams.replay import profile as profiles
from streams.replay.plan import Pacing


@dataclass
class OfflineRun:
    normalised: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: Counter = field(default_factory=Counter)
    updates: list[dict[str, Any]] = field(default_factory=list)
    tombstones: list[str] = field(default_factory=list)  # subjects off the live picture
    dispositions: Counter = field(default_factory=Counter)
    merges: int = 0
    links: Counter = field(default_factory=Counter)
    finished: list[dict[str, Any]] = field(default_factory=list)
    engine: Correlator | None = None

    def updates_of(self, subject_id: str) -> list[dict[str, Any]]:
        return [u for u in self.updates if u["subject_id"] == subject_id]


def ingest_profile(name: str, limit: int | None = None,
                   keep: Callable[[dict[str, Any]], bool] | None = None,
                   settings: Settings | None = None) -> tuple[list[NormalisedEvent], Counter]:
    """The normalised events and dead-letter reasons of a replay, as ingest makes them."""
    settings = settings or load()
    prof = profiles.load(name)
    plan = player.prepare(prof, prof.data_path(settings.shared_data_dir),
                          player.ReplayOptions(pacing=Pacing("max", 0.0), limit=limit,
                                               progress=False))
    policy = IngestPolicy.from_settings(settings)
    topic = prof.source.topic.name
    out, dead = [], Counter()
    for offset, planned in enumerate(plan):
        if keep is not None and not keep(planned.message):
            continue
        try:
            out.append(ingest(prof.source.name, orjson.dumps(planned.message), policy,
                              Origin(topic, 0, offset, None)))
        except Rejected as rejected:
            dead[rejected.reason] += 1
    return out, dead


def normalise_profile(name: str, limit: int | None = None,
                      keep: Callable[[dict[str, Any]], bool] | None = None,
                      settings: Settings | None = None) -> tuple[list[dict[str, Any]], Counter]:
    """The normalised events (as plain dicts, as on the wire) and dead-letter reasons."""
    events, dead = ingest_profile(name, limit, keep, settings)
    return [orjson.loads(event.dumps()) for event in events], dead


def correlate(events: Iterable[dict[str, Any]], config: CorrelationConfig | None = None,
              hotspots: bool = True) -> OfflineRun:
    """Apply events in event-time order, as the reorder buffer releases them."""
    run = OfflineRun()
    run.engine = Correlator({}, {}, config, on_finished=run.finished.append,
                            hotspots=HotspotTracker({}) if hotspots else None)
    for event in sorted(events, key=lambda e: (event_ts(e), e["event_id"])):
        run.normalised.append(event)
        for result in (run.engine.apply(event), run.engine.advance(event_ts(event))):
            run.updates += result.updates
            run.tombstones += result.tombstones
            run.dispositions.update(result.dispositions)
            run.merges += result.merges
            run.links.update(result.links)
    return run
