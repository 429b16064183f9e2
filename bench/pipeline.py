"""`make bench`: the pipeline against two baselines on the same broker, in one run.

Throughput (a backlog of the Milwaukee calls, replayed at --max, drained):

- **A raw pass-through**: a bare aiokafka consumer -> producer (bench/ingest.py).
- **P plain Faust**: the plainest Faust agent forwarding each message (bench/plain_faust.py).
- **B the pipeline**: real `rtcc worker` processes running RTCC_STAGES (--stages; a stage
  added later is one more name there), with 1 worker and, with --workers 1,2, with 2
  workers of one app id sharing the partitions.

Latency (--rates): for each input rate, a fresh deployment and a caught-up worker; the
replay sends at that rate; each SA update caused by source events is matched to them by
`source_event_ids` and its latency is its Kafka CreateTime minus the latest CreateTime of
those source messages (read back from the normalised topic's `source_timestamp_ms`). A
read_committed consumer beside the worker also notes when each update became visible to a
partner's consumer (its poll included).

    python -m bench.pipeline                 # full form: >= 1,000,000 events (x 30)
    python -m bench.pipeline --quick         # x 1 (33,968 events), short latency runs
    python -m bench.pipeline --events 3000 --rates 100,1000 --rate-seconds 2   # CI smoke

bench/README.md says what each figure means and what it leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import orjson

from bench.ingest import (PASSTHROUGH, PROFILE, RESULTS_DIR, _assign_from_start, code_state,
                          machine_info, passthrough, proc_usage, rss_mib)
from streams import admin, config
from streams.config import REPO_ROOT, Settings
from streams.processes import free_port, label, scrape_metrics, start_worker, stop
from streams.topics import CAD_EVENTS, NORMALISED, SA_UPDATES, TopicSpec

PLAIN_OUT = TopicSpec("bench.plain.out", "Baseline P: source messages forwarded by plain Faust.")
MILWAUKEE_EVENTS = 33_968
PIPELINE_STAGES = "ingest,correlate,kpi"  # row B's worker: every stage up to the SA topics
POLL_S = 0.05  # the first polls of a run; then poll_s(): every scrape costs the worker CPU
FULL_REPEAT = 30  # 30 x 33,968 = 1,019,040 events


def poll_s(elapsed_s: float) -> float:
    """How long to wait before the next scrape of the workers' /metrics, `elapsed_s` into a
    run: 1 % of it, between POLL_S and 1 s. Each scrape also asks RocksDB for its memory; at
    20 scrapes a second for the whole of a 1,000,000-event run the scrapes took ~5 % of the
    worker's CPU. A run's end is then known within 1 % of its length (or POLL_S)."""
    return min(1.0, max(POLL_S, 0.01 * elapsed_s))


# When is a stage done with a backlog of n source events? Sums over the workers' /metrics.
# A stage not listed here adds no condition of its own (it is still in the process and its
# cost in the figures): add a line when a new stage has a counter that says so.
def _ingest_done(m: dict[str, float], n: int) -> bool:
    return m.get("rtcc_events_normalised_total", 0) + m.get(
        "rtcc_events_dead_lettered_total", 0) >= n


def _correlate_done(m: dict[str, float], n: int) -> bool:
    return m.get("rtcc_correlation_events_total", 0) >= m.get("rtcc_events_normalised_total", 0)


def _publish_done(m: dict[str, float], n: int) -> bool:
    """Every SA update redacted for every audience (one outcome each)."""
    from streams.topics import AUDIENCES

    return m.get("rtcc_audience_updates_total", 0) >= len(AUDIENCES) * m.get(
        "rtcc_sa_updates_total", 0)


STAGE_DONE: dict[str, Callable[[dict[str, float], int], bool]] = {
    "ingest": _ingest_done,
    "correlate": _correlate_done,
    "publish": _publish_done,
}


@dataclass
class Row:
    name: str
    workers: int
    events: int
    seconds: float
    cpu_s: float | None = None
    peak_rss_mib: list[float] = field(default_factory=list)
    note: str = ""
    rss_by_progress: list[float] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_s_per_1k(self) -> float | None:
        return None if self.cpu_s is None else 1000 * self.cpu_s / self.events


# --------------------------------------------------------------------------------------------
# Kafka helpers
# --------------------------------------------------------------------------------------------


def preload(settings: Settings, repeat: int, limit: int | None,
            rate: float | None = None, live_clock: bool = False) -> Any:
    from streams.replay import player, profile
    from streams.replay.plan import Pacing

    prof = profile.load(PROFILE)
    pacing = Pacing("rate", rate) if rate else Pacing("max", 0.0)
    options = player.ReplayOptions(pacing=pacing, repeat=repeat, limit=limit, progress=False,
                                   live_clock=live_clock)
    return player.replay(prof, prof.data_path(settings.shared_data_dir),
                         settings.topic(CAD_EVENTS.name), settings.kafka_bootstrap, options)


def paced_feed(settings: Settings, events: int, rate: float, live_clock: bool = False) -> Any:
    """At least `events` of the replay at `rate`: copies of the data set beyond one, each
    cut to the rows needed. `live_clock`: each event stamped with the time it is sent."""
    repeat = math.ceil(events / MILWAUKEE_EVENTS)
    return preload(settings, repeat, math.ceil(events / repeat), rate, live_clock)


def end_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    """Messages in a topic now (sum of its partitions' end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        consumer.close()


def records_written(settings: Settings, events: int) -> dict[str, float]:
    """Records the deployment wrote per input event: to its topics (outputs, the normalised
    topic and its progress marks) and to its tables' changelogs. Each is a produce and, but
    for the outputs, a consume again: the per-message cost that dominates (NOTES.md)."""
    from kafka import KafkaConsumer, TopicPartition

    # Not the input, nor what the baselines A and P wrote beside the pipeline (until
    # 2026-11-30 their 2 records per event were counted in row B's figure, not the latency
    # rows', which run on deployments of their own).
    others = {settings.topic(CAD_EVENTS.name), settings.topic(PASSTHROUGH.name),
              settings.topic(PLAIN_OUT.name)}
    layout = {name: parts for name, parts in admin.list_topics(settings).items()
              if name not in others and not name.startswith(f"{settings.app_id}-plain-")
              and (name.startswith(settings.topic_prefix) or name.startswith(settings.app_id))}
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        ends = consumer.end_offsets([TopicPartition(name, p) for name, parts in layout.items()
                                     for p in range(parts)])
    finally:
        consumer.close()
    changelog = sum(n for tp, n in ends.items() if tp.topic.endswith("-changelog"))
    return {"records_per_event": sum(ends.values()) / events,
            "changelog_per_event": changelog / events,
            "records_per_event_by_topic": by_topic(settings, ends, events)}


def by_topic(settings: Settings, ends: dict[Any, int], events: int) -> dict[str, float]:
    """Records per input event of each topic that got any, the largest first, named without
    the deployment's prefix or app id: which outputs a change should look at."""
    totals: dict[str, int] = {}
    for tp, n in ends.items():
        name = tp.topic
        for prefix in (settings.topic_prefix, f"{settings.app_id}-"):
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        totals[name] = totals.get(name, 0) + n
    return {name: n / events for name, n in sorted(totals.items(), key=lambda kv: -kv[1])
            if n}


def read_all(bootstrap: str, topics: dict[str, int]) -> list[Any]:
    """Every record now in `topics` (name -> partitions), from the start to the end offsets."""
    return asyncio.run(_read_all(bootstrap, topics))


async def _read_all(bootstrap: str, topics: dict[str, int]) -> list[Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        await _assign_from_start(consumer, topics)
        tps = [TopicPartition(t, p) for t, parts in topics.items() for p in range(parts)]
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        left = {tp for tp in tps if ends[tp] > 0}
        while left:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                out.extend(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
        return out
    finally:
        await consumer.stop()


def kafka_window(records: list[Any]) -> float:
    stamps = [r.timestamp for r in records]
    return (max(stamps) - min(stamps)) / 1000 if stamps else float("nan")


def delete_deployment(settings: Settings, groups: list[str]) -> None:
    names = [n for n in admin.list_topics(settings)
             if n.startswith(settings.topic_prefix) or n.startswith(settings.app_id)]
    admin.delete_topics(settings, names)
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        delete = getattr(client, "delete_groups", None) or client.delete_consumer_groups
        for group in groups:
            try:
                delete([group])
            except KafkaError:
                pass  # never formed
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def summed_over_labels(series: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each series of one /metrics scrape (`scrape_metrics`), summed over its labels."""
    return {name: sum(values.values()) for name, values in series.items()}


def metric_sums(port: int) -> dict[str, float]:
    """rtcc_* series of one worker, summed over their labels."""
    return summed_over_labels(scrape_metrics(port))


@dataclass
class Watched:
    idle_at: float
    done_at: float
    cpu_s: float  # summed over the processes, idle poll to done poll
    peak_rss_mib: list[float]
    startup_s: float
    rss_by_progress: list[float]  # largest RSS of the processes at RSS_AT_PROGRESS, then done


RSS_AT_PROGRESS = (0.25, 0.5, 0.75)


def watch(procs: list[subprocess.Popen[bytes]], progress: Callable[[], float | None],
          done: Callable[[], bool], timeout_s: float, total: int | None = None) -> Watched:
    """Poll until `done()`; the window runs from the last poll where `progress()` was 0 (or
    None: not answering yet) to the first where `done()`. With `total`, also the RSS when
    progress first reaches each fraction of it in RSS_AT_PROGRESS, and when done (whether memory
    stays bounded as a long replay goes on)."""
    spawned = time.time()
    idle_at, idle_cpu = spawned, [0.0] * len(procs)
    rss_at: list[float] = []
    pids = [p.pid for p in procs]
    while time.time() < spawned + timeout_s:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"process {p.pid} exited with {p.returncode}")
        try:
            value = progress()
        except OSError:
            value = None
        now = time.time()
        usage = [proc_usage(p.pid) for p in procs]
        if total and value:
            while len(rss_at) < len(RSS_AT_PROGRESS) and value >= RSS_AT_PROGRESS[
                    len(rss_at)] * total:
                rss_at.append(max(map(rss_mib, pids)))
        if not value:
            idle_at, idle_cpu = now, [u[0] for u in usage]
        elif done():
            if total:
                rss_at.append(max(map(rss_mib, pids)))
            return Watched(idle_at, now, sum(u[0] for u in usage) - sum(idle_cpu),
                           [u[1] for u in usage], idle_at - spawned, rss_at)
        time.sleep(poll_s(now - idle_at))
    raise TimeoutError(f"not done in {timeout_s:.0f} s")


def start_plain(settings: Settings, source: str, sink: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ, RTCC_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
               BENCH_PLAIN_APP_ID=f"{settings.app_id}-plain", BENCH_PLAIN_SOURCE=source,
               BENCH_PLAIN_SINK=sink, BENCH_PLAIN_PARTITIONS=str(settings.topic_partitions),
               BENCH_PLAIN_DATADIR=str(settings.data_dir.parent / "plain"))
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bench.plain_faust", "worker", "-l",
                                 "warn"], env=env, cwd=REPO_ROOT, stdout=out,
                                stderr=subprocess.STDOUT)


def start_workers(settings: Settings, count: int, tmp: Path,
                  tag: str) -> tuple[list[subprocess.Popen[bytes]], list[Settings], list[Path]]:
    """`count` workers of one deployment. Their data directories are the deployment's own
    (named by its app id): a RocksDB left by another step with the same tag (the latency
    step of the other guarantee) held offsets of changelogs this one does not have, and
    Faust refused to start (ConsistencyError: persisted offset above the highwater)."""
    procs, configs, logs = [], [], []
    for i in range(count):
        name = f"{settings.app_id}-{tag}-worker{i}"
        s = dataclasses.replace(settings, web_port=free_port(), data_dir=tmp / name)
        log = tmp / f"{name}.log"
        procs.append(start_worker(s, log))
        configs.append(s)
        logs.append(log)
    return procs, configs, logs


def wait_ready(configs: list[Settings], timeout_s: float = 60.0) -> None:
    """Every worker answers /metrics (up and joined), and has waited long enough for the
    origins it never saw to count as idle: a paced input then meets a live worker."""
    deadline = time.time() + timeout_s
    while True:
        try:
            for c in configs:
                metric_sums(c.web_port)
            break
        except OSError:
            if time.time() > deadline:
                raise TimeoutError("worker /metrics not up") from None
            time.sleep(0.2)
    time.sleep(max(3.0, max(c.idle_s for c in configs) + 2.0))


def summed(configs: list[Settings]) -> dict[str, float]:
    total: dict[str, float] = {}
    for s in configs:
        for k, v in metric_sums(s.web_port).items():
            total[k] = total.get(k, 0.0) + v
    return total


def print_failure(log: Path, errors: int = 5) -> None:
    """A failed step's worker log, as the reader needs it: the first errors (the cause; a
    crash's tail shows only the shutdown it caused), then the tail."""
    if not log.exists():
        return
    text = log.read_text(errors="replace")
    first = [line for line in text.splitlines()
             if '"level":"error"' in line or '"level":"critical"' in line
             or "[ERROR]" in line or "[CRITICAL]" in line][:errors]
    if first:
        print(f"bench: {log.name} first errors:\n" + "\n".join(line[:4000] for line in first),
              file=sys.stderr)
    print(f"bench: {log.name} tail:\n{text[-3000:]}", file=sys.stderr)


def check_logs(logs: list[Path]) -> None:
    for log in logs:
        text = log.read_text(errors="replace")
        if "Crashed reason=" in text or "Traceback" in text:
            raise RuntimeError(f"an agent crashed, see {log}:\n{text[-3000:]}")


# --------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------


def run_plain(settings: Settings, n: int, tmp: Path, timeout_s: float) -> Row:
    source, sink = settings.topic(CAD_EVENTS.name), settings.topic(PLAIN_OUT.name)
    log = tmp / "plain.log"
    proc = start_plain(settings, source, sink, log)
    parts = settings.topic_partitions
    try:
        seen = [0]

        def progress() -> float:
            seen[0] = end_offsets(settings.kafka_bootstrap, sink, parts)
            return seen[0]

        w = watch([proc], progress, lambda: seen[0] >= n, timeout_s)
    except BaseException:
        print_failure(log)
        raise
    finally:
        stop(proc)
    records = read_all(settings.kafka_bootstrap, {sink: parts})
    if len(records) != n:
        raise RuntimeError(f"plain Faust forwarded {len(records):,} of {n:,}")
    return Row("P plain Faust agent (forward)", 1, n, kafka_window(records), w.cpu_s,
               w.peak_rss_mib, "Kafka timestamps")


def wait_group_stable(settings: Settings, members: int, timeout_s: float = 120) -> None:
    """Until the app's consumer group is Stable with `members` members (every worker has
    joined and got its partitions)."""
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            describe = getattr(client, "describe_groups", None)
            if describe is not None:  # kafka-python >= 3
                group = describe([settings.app_id])[settings.app_id]
                state, joined = group["group_state"], len(group["members"])
            else:
                (info,) = client.describe_consumer_groups([settings.app_id])
                state, joined = info.state, len(info.members)
            if state == "Stable" and joined == members:
                return
            time.sleep(0.5)
        raise TimeoutError(f"group {settings.app_id} not stable with {members} members")
    finally:
        client.close()


def run_pipeline(settings: Settings, n: int, workers: int, tmp: Path, tag: str,
                 timeout_s: float,
                 load: Callable[[], int] | None = None) -> tuple[Row, dict[str, Any]]:
    """`workers` worker processes drain n events. Without `load`, the backlog is in place
    and the workers start on it. With `load` (several workers), they start on empty
    topics, the group settles, then `load()` fills the backlog: otherwise the workers that
    join later trigger rebalances that redeliver part of the input."""
    stages = [s.strip() for s in settings.stages.split(",") if s.strip()]
    checks = [STAGE_DONE[s] for s in stages if s in STAGE_DONE]
    procs, configs, logs = start_workers(settings, workers, tmp, tag)
    last: dict[str, float] = {}
    try:
        if load is not None:
            wait_group_stable(settings, workers)
            time.sleep(2.0)
            if load() != n:
                raise RuntimeError("the pre-load differs from the first one")
        def progress() -> float:
            last.clear()
            last.update(summed(configs))
            return last.get("rtcc_events_normalised_total", 0) + last.get(
                "rtcc_events_dead_lettered_total", 0)

        w = watch(procs, progress, lambda: all(c(last, n) for c in checks), timeout_s, n)
        ways = checkpoint_ways(configs)
        check_logs(logs)
    except BaseException:
        for log in logs:
            print_failure(log)
        raise
    finally:
        for p in procs:
            stop(p)
    read = last.get("rtcc_events_in_total", 0)
    if read < n:
        raise RuntimeError(f"input {n:,}, the workers read {read:,.0f}")
    name = f"B pipeline ({'+'.join(stages)})"
    note = f"/metrics +-{2 * poll_s(w.done_at - w.idle_at):.1f} s" + (
        f", start-up {w.startup_s:.1f} s excluded" if load is None else
        ", workers joined before the load") + (
        f", {read - n:,.0f} redelivered after a rebalance" if read > n else "")
    row = Row(name, workers, n, w.done_at - w.idle_at, w.cpu_s, w.peak_rss_mib, note,
              w.rss_by_progress)
    counts = {k: last.get(k, 0) for k in (
        "rtcc_events_normalised_total", "rtcc_events_dead_lettered_total",
        "rtcc_correlation_events_total", "rtcc_sa_updates_total", "rtcc_kpi_records_total",
        "rtcc_events_ghosted_total")}
    written = records_written(settings, n)
    row.note += (f"; {written['records_per_event']:.1f} records written per event, "
                 f"{written['changelog_per_event']:.1f} of them changelog; checkpoints beside "
                 "the stage / in its turn " + ", ".join(
                     f"{stage} {w['beside']:,.0f} / {w['in_turn']:,.0f}"
                     for stage, w in sorted(ways.items())))
    return row, counts | written | {"checkpoints": ways}


def checkpoint_ways(configs: list[Settings]) -> dict[str, dict[str, float]]:
    """The workers' checkpoints by stage and the way they were written
    (RTCC_CHECKPOINT_BESIDE): whether `auto` took a backlog for one."""
    ways: dict[str, dict[str, float]] = {}
    for s in configs:
        for labels, value in scrape_metrics(s.web_port).get("rtcc_checkpoints_total",
                                                            {}).items():
            stage = ways.setdefault(label(labels, "stage") or "?",
                                    {"beside": 0.0, "in_turn": 0.0})
            way = label(labels, "way") or "?"
            stage[way] = stage.get(way, 0.0) + value
    return ways


# --------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i]


def ingest_latencies(normalised: list[Any]) -> list[float]:
    """Seconds from each source message to its normalised event (the ingest part)."""
    out = []
    for r in normalised:
        if r.value is None or b'"mark"' in r.value:
            continue
        doc = orjson.loads(r.value)
        if not doc.get("ghost") and doc.get("source_timestamp_ms") is not None:
            out.append((r.timestamp - doc["source_timestamp_ms"]) / 1000)
    return sorted(out)


class VisibilityWatch:
    """When each SA update became readable by a read_committed consumer (wall clock).

    The update's CreateTime is when the worker produced it; a partner's consumer sees it
    once the broker has it in sync and its next fetch returns, which CreateTime does not
    show. This consumer runs beside the worker for the whole latency run and notes each
    record's arrival by (partition, offset)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.seen: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                       enable_auto_commit=False,
                                       isolation_level="read_committed")
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        self._consumer.assign(tps)
        self._consumer.seek_to_beginning(*tps)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for tp, records in self._consumer.poll(timeout_ms=100).items():
                now = time.time()
                for r in records:
                    self.seen[(tp.partition, r.offset)] = now

    def close(self) -> dict[tuple[int, int], float]:
        self._stop.set()
        self._thread.join()
        self._consumer.close()
        return self.seen


def source_arrivals(normalised: list[Any]) -> dict[str, int]:
    """Each event's source-message CreateTime (ms), by event id."""
    arrived: dict[str, int] = {}
    for r in normalised:
        if r.value is None or b'"mark"' in r.value:
            continue
        doc = orjson.loads(r.value)
        if not doc.get("ghost") and doc.get("source_timestamp_ms") is not None:
            arrived[doc["event_id"]] = doc["source_timestamp_ms"]
    return arrived


def update_latencies(arrived: dict[str, int], updates: list[Any],
                     visible_at: dict[tuple[int, int], float] | None = None,
                     until_ms: float | None = None) -> list[float]:
    """Seconds from the latest source message behind each event-caused SA update to it
    (`arrived`: `source_arrivals`): to its CreateTime, or with `visible_at` to when a
    read_committed consumer got it. `until_ms`: only updates whose source messages arrived
    by then."""
    out = []
    for r in updates:
        doc = orjson.loads(r.value)
        # Hotspot updates list the window's events, TTL closures none: not caused by one
        # arrival. Incident and cluster updates name the event(s) that caused them.
        if doc["subject_kind"] == "hotspot" or not doc["source_event_ids"]:
            continue
        stamps = [arrived[e] for e in doc["source_event_ids"] if e in arrived]
        if not stamps or (until_ms is not None and max(stamps) > until_ms):
            continue
        if visible_at is None:
            out.append((r.timestamp - max(stamps)) / 1000)
        elif (r.partition, r.offset) in visible_at:
            out.append(visible_at[(r.partition, r.offset)] - max(stamps) / 1000)
    return sorted(out)


def feed_end_s(settings: Settings, live_clock: bool = False) -> float:
    """How long a latency run's feed goes on after its measured events: past the longest
    an event waits for the feed's progress (an idle period and a progress mark), with a
    margin; on a live clock also past the lateness every event is held for."""
    return (settings.idle_s + settings.mark_interval_s + 1.0
            + (settings.lateness_s if live_clock else 0.0))


def run_latency(base: Settings, rate: int, seconds: float, tmp: Path,
                timeout_s: float, split: list[str] | None = None,
                live_clock: bool = False) -> dict[str, Any]:
    tag = f"lat{rate}"
    settings = dataclasses.replace(base, topic_prefix=f"{base.topic_prefix}{tag}.",
                                   app_id=f"{base.app_id}-{tag}")
    try:
        return _latency(settings, rate, seconds, tmp, timeout_s, split, live_clock)
    finally:
        delete_deployment(settings, [settings.app_id])


def _latency(settings: Settings, rate: int, seconds: float, tmp: Path,
             timeout_s: float, split: list[str] | None = None,
             live_clock: bool = False) -> dict[str, Any]:
    """One deployment at one input rate; `split`: one worker per group of stages instead
    of one worker running them all (CPU is summed over the workers, RSS is the largest).

    The percentiles are of the events sent in the first `seconds`; the feed then goes on
    at the same rate for `feed_end_s(settings)`, so that the events measured meet a live
    feed, as in an operations room. The last events of a feed that stops wait for it to
    count as idle (RTCC_IDLE_S, README "Event time, not arrival order"): that wait is
    reported on its own, as the p99 over every event (`p99_all_ms`). `live_clock`: the
    events carry the time they are sent as their event time, as a live feed does, instead
    of the data's own times replayed faster than they happened."""
    tag = f"lat{rate}"
    admin.create_topics(settings)
    layout = admin.list_topics(settings)
    tail_s = feed_end_s(settings, live_clock)
    n = max(1, int(rate * (seconds + tail_s)))
    procs, configs, logs = [], [], []
    for i, stages in enumerate(split or [settings.stages]):  # one worker per group of stages
        started = start_workers(dataclasses.replace(settings, stages=stages), 1, tmp,
                                f"{tag}-{i}")
        for into, part in zip((procs, configs, logs), started):
            into.extend(part)
    watch: VisibilityWatch | None = None
    try:
        wait_ready(configs)
        if len(procs) > 1:  # the feed meets a settled group, not its first rebalance
            wait_group_stable(settings, len(procs))
        updates_topic = settings.topic(SA_UPDATES.name)
        watch = VisibilityWatch(settings.kafka_bootstrap, updates_topic, layout[updates_topic])
        cpu0 = sum(proc_usage(p.pid)[0] for p in procs)
        box: dict[str, Any] = {}
        sender = threading.Thread(target=lambda: box.update(s=paced_feed(settings, n, rate,
                                                                           live_clock)))
        sender.start()
        sender.join()
        sent = box["s"].events_sent
        sent_s = box["s"].elapsed_s  # first send to last acknowledged
        t0 = time.time() - sent_s
        while True:
            m = summed(configs)
            if _ingest_done(m, sent) and _correlate_done(m, sent):
                break
            if time.time() - t0 > timeout_s:
                raise TimeoutError(f"latency run at {rate}/s not drained ({sent} sent): "
                                   f"{[metric_sums(c.web_port) for c in configs]}")
            time.sleep(poll_s(time.time() - t0))
        drained_s = time.time() - t0
        usage = [proc_usage(p.pid) for p in procs]
        cpu_s, rss = sum(u[0] for u in usage), max(u[1] for u in usage)
        time.sleep(1.0)  # the watcher's last poll
        e2e_count = m.get("rtcc_end_to_end_seconds_count", 0)
        check_logs(logs)
    except BaseException:
        for log in logs:
            print_failure(log)
        raise
    finally:
        for p in procs:
            stop(p)
        visible_at = watch.close() if watch is not None else {}
    normalised = read_all(settings.kafka_bootstrap, {settings.topic(NORMALISED.name):
                                                 layout[settings.topic(NORMALISED.name)]})
    updates = read_all(settings.kafka_bootstrap, {settings.topic(SA_UPDATES.name):
                                              layout[settings.topic(SA_UPDATES.name)]})
    arrived = source_arrivals(normalised)
    until_ms = min(arrived.values(), default=0) + 1000 * seconds
    lat = update_latencies(arrived, updates, until_ms=until_ms)
    everything = update_latencies(arrived, updates)
    visible = update_latencies(arrived, updates, visible_at, until_ms=until_ms)
    ingest = ingest_latencies(normalised)
    return records_written(settings, sent) | {"rate": rate, "events": sent, "send_s": sent_s,
            "achieved_rate": sent / sent_s if sent_s else float("nan"),
            "drain_after_send_s": drained_s - sent_s, "updates": len(updates),
            "updates_measured": len(lat), "worker_histogram_count": e2e_count,
            "p50_ms": 1000 * percentile(lat, 0.50), "p95_ms": 1000 * percentile(lat, 0.95),
            "p99_ms": 1000 * percentile(lat, 0.99), "max_ms": 1000 * (lat[-1] if lat else
                                                                      float("nan")),
            "measured_s": seconds, "feed_end_s": tail_s,
            "p99_all_ms": 1000 * percentile(everything, 0.99),
            "visible_p50_ms": 1000 * percentile(visible, 0.50),
            "visible_p99_ms": 1000 * percentile(visible, 0.99),
            "updates_seen_by_watcher": len(visible),
            "ingest_p50_ms": 1000 * percentile(ingest, 0.50),
            "ingest_p99_ms": 1000 * percentile(ingest, 0.99),
            "cpu_s_per_1k": 1000 * (cpu_s - cpu0) / sent, "peak_rss_mib": rss}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _f(v: float | None, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def throughput_table(rows: list[Row]) -> str:
    raw = rows[0].events_per_s
    plain = next((r.events_per_s for r in rows if r.name.startswith("P ")), float("nan"))
    out = ["| stage | workers | events | seconds | events/s | vs raw | vs plain Faust | "
           "CPU s / 1k events | peak RSS MiB | RSS MiB at 25 / 50 / 75 % / done | timed by |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r.name} | {r.workers} | {r.events:,} | {r.seconds:.2f} | "
                   f"{r.events_per_s:,.0f} | {r.events_per_s / raw:.4f} | "
                   f"{r.events_per_s / plain:.3f} | {_f(r.cpu_s_per_1k, '.3f')} | "
                   f"{' / '.join(f'{x:.0f}' for x in r.peak_rss_mib) or 'n/a'} | "
                   f"{' / '.join(f'{x:.0f}' for x in r.rss_by_progress) or 'n/a'} | {r.note} |")
    return "\n".join(out)


def latency_table(runs: list[dict[str, Any]]) -> str:
    out = ["| guarantee | input rate ev/s | events | achieved ev/s | drain after send s | "
           "SA updates (measured) | p50 ms | p95 ms | p99 ms | max ms | p99 with the feed's end ms | "
           "visible to read_committed p50 / p99 ms | of which ingest p50 / p99 ms | "
           "CPU s / 1k events | records written / event (changelog) | peak RSS MiB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        out.append(f"| {r.get('guarantee', '')} | {r['rate']:,} | {r['events']:,} | "
                   f"{r['achieved_rate']:,.0f} | "
                   f"{r['drain_after_send_s']:.2f} | {r['updates']:,} ({r['updates_measured']:,}) "
                   f"| {_f(r['p50_ms'], '.1f')} | {_f(r['p95_ms'], '.1f')} | "
                   f"{_f(r['p99_ms'], '.1f')} | {_f(r['max_ms'], '.1f')} | "
                   f"{_f(r.get('p99_all_ms'), '.1f')} | "
                   f"{_f(r.get('visible_p50_ms'), '.1f')} / {_f(r.get('visible_p99_ms'), '.1f')} | "
                   f"{_f(r.get('ingest_p50_ms'), '.1f')} / {_f(r.get('ingest_p99_ms'), '.1f')} | "
                   f"{r['cpu_s_per_1k']:.3f} | {_f(r.get('records_per_event'), '.1f')} "
                   f"({_f(r.get('changelog_per_event'), '.1f')}) | {r['peak_rss_mib']:.0f} |")
    return "\n".join(out)


def report_md(report: dict[str, Any], rows: list[Row], lat: list[dict[str, Any]]) -> str:
    m, i, d = report["machine"], report["input"], report["deployment"]
    dirty = len(report["code"]["uncommitted"])
    outputs = dict(report.get("pipeline_outputs") or {})
    topics = ", ".join(f"{name} {n:.2f}" for name, n in
                       outputs.pop("records_per_event_by_topic", {}).items()) or "n/a"
    lines = [
        f"## pipeline bench {report['started_utc']}",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_mib']:,} MiB, "
        f"load {m['loadavg_at_start'][0]:.2f}; Python {m['python']}, Kafka {m['kafka']}, "
        f"aiokafka {m['aiokafka']}, faust-streaming {m['faust_streaming']}",
        f"- code: {report['code']['commit']}"
        + (f" + {dirty} uncommitted file(s) in agents/ streams/ schemas/" if dirty else ""),
        f"- input: {i['events']:,} events = {PROFILE} x {i['repeat']}"
        + (f" (first {i['limit']:,} rows)" if i.get("limit") else "")
        + f" on {i['partitions']} partitions, pre-loaded at {i['preload_events_per_s']:,.0f}"
        " events/s",
        f"- pipeline: RTCC_STAGES={d['stages']}, store {d['table_store']}, "
        f"RTCC_IDLE_S={d['idle_s']}, {d['processing_guarantee']}",
        f"- pipeline outputs: {outputs}",
        f"- records written per event by topic: {topics}",
        "",
        throughput_table(rows),
    ]
    if lat:
        lines += ["", "End-to-end latency, source CreateTime -> SA update CreateTime "
                  "(incident and cluster updates; 1 worker). Percentiles of the events sent "
                  f"in the first {lat[0].get('measured_s', 0):g} s of each rate, the feed "
                  f"going on {lat[0].get('feed_end_s', 0):g} s after them; the p99 with the "
                  "feed's end counts the last events too, which wait for the feed to count "
                  "as idle:", "", latency_table(lat)]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def measure(settings: Settings, args: argparse.Namespace, tmp: Path,
            report: dict[str, Any]) -> tuple[list[Row], list[dict[str, Any]]]:
    bootstrap, source = settings.kafka_bootstrap, settings.topic(CAD_EVENTS.name)
    admin.create_topics(settings)
    admin.create_topics(settings, (PASSTHROUGH, PLAIN_OUT))
    layout = admin.list_topics(settings)
    loaded = preload(settings, args.repeat, args.events)
    n = loaded.events_sent
    report["input"] = {"profile": PROFILE, "repeat": args.repeat, "limit": args.events,
                       "events": n, "partitions": settings.topic_partitions,
                       "preload_events_per_s": loaded.events_per_s}
    print(f"bench: pre-loaded {n:,} events; A raw pass-through", file=sys.stderr)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        raw = pool.submit(passthrough, bootstrap, source, layout[source],
                          settings.topic(PASSTHROUGH.name), n).result()
    rows = [Row("A raw pass-through (aiokafka)", 1, n, raw.seconds, raw.cpu_s,
                [raw.peak_rss_mib or 0.0], "first consumed -> last acked")]
    print(f"bench: A: {rows[0].events_per_s:,.0f} events/s; P plain Faust", file=sys.stderr)
    rows.append(run_plain(settings, n, tmp, args.timeout))
    print(f"bench: P: {rows[1].events_per_s:,.0f} events/s", file=sys.stderr)
    report["code"] = code_state()
    for workers in args.workers:
        print(f"bench: B pipeline, {workers} worker(s)", file=sys.stderr)
        s, load = settings, None
        if workers > 1 or workers != args.workers[0]:  # fresh topics: outputs must not mix
            s = dataclasses.replace(settings, topic_prefix=f"{settings.topic_prefix}w{workers}.",
                                    app_id=f"{settings.app_id}-w{workers}")
            admin.create_topics(s)

            def load(s: Settings = s) -> int:
                return preload(s, args.repeat, args.events).events_sent
            if workers == 1:
                load()
                load = None
        row, counts = run_pipeline(s, n, workers, tmp, f"w{workers}", args.timeout, load)
        rows.append(row)
        print(f"bench: {row.name} x{workers}: {row.events_per_s:,.0f} events/s", file=sys.stderr)
        report.setdefault("pipeline_outputs", counts)
        if s is not settings:
            delete_deployment(s, [s.app_id])
    lat = []
    for rate in args.rates:
        print(f"bench: latency at {rate:,} events/s", file=sys.stderr)
        lat.append(run_latency(settings, rate, args.rate_seconds, tmp, args.timeout,
                               args.split, args.live_clock)
                   | {"guarantee": settings.processing_guarantee
                      + (f", workers {' / '.join(args.split)}" if args.split else "")
                      + (", live clock" if args.live_clock else "")})
        print(f"bench: latency at {rate:,}/s: p50 {lat[-1]['p50_ms']:.0f} ms, p99 "
              f"{lat[-1]['p99_ms']:.0f} ms, drained {lat[-1]['drain_after_send_s']:.1f} s "
              "after the last send", file=sys.stderr)
    return rows, lat


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="x 1 (33,968 events), 1 worker, 5 s per latency rate")
    parser.add_argument("--repeat", type=int, help=f"Milwaukee copies (default {FULL_REPEAT})")
    parser.add_argument("--events", type=int, help="only the first N rows of each copy")
    parser.add_argument("--partitions", type=int, help="default RTCC_TOPIC_PARTITIONS")
    parser.add_argument("--stages", default=PIPELINE_STAGES,
                        help="RTCC_STAGES of the pipeline workers")
    parser.add_argument("--store", default="rocksdb://", help="table store of the workers")
    parser.add_argument("--idle-s", type=float, default=1.0,
                        help="RTCC_IDLE_S of the workers: how long the last events of a "
                        "drained backlog wait for the feed to count as idle (default 1)")
    parser.add_argument("--workers", type=_ints, help="worker counts to measure (default 1,2; "
                        "--quick: 1)")
    parser.add_argument("--rates", type=_ints, default=[100, 1000, 5000],
                        help="input rates of the latency runs (empty: none)")
    parser.add_argument("--rate-seconds", type=float,
                        help="seconds of input per latency rate (default 30; --quick 5)")
    parser.add_argument("--live-clock", action="store_true",
                        help="latency runs: each event stamped with the time it is sent, as "
                             "on a live feed (the default replays the data's own times "
                             "faster than they happened)")
    parser.add_argument("--split", type=lambda t: [g for g in t.split("/") if g.strip()],
                        help="latency runs with one worker per group of stages, e.g. "
                        "'ingest/correlate,kpi' (default: one worker with --stages)")
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/...)")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick or args.events else FULL_REPEAT)
    args.workers = args.workers or ([1] if args.quick or args.events else [1, 2])
    args.rate_seconds = args.rate_seconds or (5.0 if args.quick else 30.0)

    started = datetime.now(timezone.utc)
    run_id = uuid.uuid4().hex[:8]
    base = config.load()
    report: dict[str, Any] = {"started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ")}
    with tempfile.TemporaryDirectory(prefix="rtcc-bench-") as tmp_name:
        tmp = Path(tmp_name)
        settings = dataclasses.replace(
            base, topic_prefix=f"bench.{run_id}.", app_id=f"rtcc-bench-{run_id}",
            data_dir=tmp / "worker", table_store=args.store, web_port=free_port(),
            topic_partitions=args.partitions or base.topic_partitions, stages=args.stages,
            idle_s=args.idle_s)
        report["machine"] = machine_info(settings)
        report["deployment"] = {"topic_prefix": settings.topic_prefix, "app_id": settings.app_id,
                                "stages": settings.stages, "table_store": settings.table_store,
                                "idle_s": settings.idle_s,
                                "processing_guarantee": settings.processing_guarantee}
        print(f"bench: prefix {settings.topic_prefix} on {settings.kafka_bootstrap}",
              file=sys.stderr)
        try:
            rows, lat = measure(settings, args, tmp, report)
        finally:
            delete_deployment(settings, [settings.app_id, f"{settings.app_id}-plain"])
    report["throughput"] = [dataclasses.asdict(r) | {
        "events_per_s": r.events_per_s, "vs_raw": r.events_per_s / rows[0].events_per_s,
        "cpu_s_per_1k": r.cpu_s_per_1k} for r in rows]
    report["latency"] = lat
    md = report_md(report, rows, lat)
    print(md)
    path = args.out or RESULTS_DIR / f"pipeline-{started.strftime('%Y-%m-%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    path.with_suffix(".md").write_text(md + "\n")
    print(f"\nbench: wrote {path} and {path.with_suffix('.md').name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
