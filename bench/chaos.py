"""Chaos scenarios: crashes, restarts, rebalances and outages during a replay, each checked
against a clean run of the same input by the output checker (`bench/checker.py`).

    python -m bench.chaos              # the short form (CI sizes), prints the table
    python -m bench.chaos --full       # full form: longer replays, 30 s broker / 60 s Redis
                                       # outages, recovery of the whole Milwaukee replay's state
    python -m bench.chaos --only kill9,scale
    python -m bench.chaos --only scale --repeat 20   # hunt a flake: one reference, 20 runs
    python -m bench.chaos --only scale --rows 600 --rate 100 --seed 3   # the CI test's sizes

A rare failure shows only in a loop: `--repeat N` runs the chosen scenarios N times against
one reference run (each repetition in its own work directory, with the next draws of the
seeded timings) and ends with how many runs of each scenario were clean. The work directory
(the workers' logs) is kept whenever a run fails.

Every scenario runs its own deployment (topic prefix, app id, data dirs) on the shared broker
and Redis, except the outage scenarios: the broker outage runs on a private broker
(`bench/private_kafka.py`) and the Redis outage on a private redis-server, so the shared
services are never stopped. The input is the first N rows of the Milwaukee calls (no time
shift), sent in chunks at a fixed rate while the scenario acts; the reference is one clean
worker run of the same rows with the same partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from agents.ingest.progress import is_mark
from bench import checker
from bench.private_kafka import PrivateKafka
from streams import admin
from streams.config import Settings, load
from streams.processes import free_port, scrape_metrics, start_gateway, start_worker, stop
from streams.topics import AUDIENCES, NORMALISED, audience_topic

PROFILE = "milwaukee_pd_cfs"
SOURCE = "cad.events"


@dataclass(frozen=True)
class Size:
    rows: int  # input rows
    rate: float  # events/s while sending
    partitions: int
    broker_outage_s: float
    redis_outage_s: float
    kills: int = 5
    recovery_rows: int | None = None  # rows for the state-recovery scenario (None: all)


SHORT = Size(rows=1200, rate=150.0, partitions=2, broker_outage_s=10.0, redis_outage_s=10.0,
             recovery_rows=1200)
FULL = Size(rows=8000, rate=250.0, partitions=4, broker_outage_s=30.0, redis_outage_s=60.0,
            recovery_rows=None)


@dataclass
class Result:
    scenario: str
    events: int
    verdict: checker.Verdict | None = None
    audiences_ok: bool = True
    notes: list[str] = field(default_factory=list)
    recovery_s: float | None = None
    redis: list[checker.RedisVerdict] = field(default_factory=list)
    sse: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.verdict and self.verdict.ok and self.audiences_ok
                    and all(r.ok for r in self.redis)
                    and not self.sse.get("missed", 0))


# --------------------------------------------------------------------------------------------
# A deployment and its workers
# --------------------------------------------------------------------------------------------


@dataclass
class Worker:
    settings: Settings
    log: Path
    process: Any = None
    started_at: float = 0.0
    log_mark: int = 0

    def start(self) -> None:
        self.log_mark = self.log.stat().st_size if self.log.exists() else 0
        self.started_at = time.monotonic()
        self.process = start_worker(self.settings, self.log)

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Until its /metrics answers; seconds since start."""
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited ({self.process.returncode}); log {self.log}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.settings.web_port}/metrics",
                                       timeout=2).read()
                return time.monotonic() - self.started_at
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"worker not ready; log {self.log}")

    def log_since_start(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self.log_mark)
            return f.read().decode(errors="replace")

    def wait_recovered(self, timeout_s: float = 600.0) -> float:
        """Until Faust says its tables are restored and streams resumed ("Worker ready" of
        the recovery service); seconds since start."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited ({self.process.returncode}); log {self.log}")
            if "Worker ready" in self.log_since_start():
                return time.monotonic() - self.started_at
            time.sleep(0.1)
        raise TimeoutError(f"worker did not recover; log {self.log}")

    def kill9(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def term(self) -> None:
        if self.process:
            stop(self.process, timeout_s=60)

    def running(self) -> bool:
        return bool(self.process) and self.process.poll() is None


class Deployment:
    keep = False  # --keep: leave the topics and Redis keys for a post-mortem

    def __init__(self, base: Settings, tmp: Path, tag: str, size: Size,
                 bootstrap: str | None = None, redis_url: str | None = None,
                 **changes: Any) -> None:
        run = uuid.uuid4().hex[:6]
        self.tag = tag
        self.tmp = tmp / tag
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.settings = dataclasses.replace(
            base, app_id=f"rtcc-chaos-{tag}-{run}", topic_prefix=f"chaos.{tag}.{run}.",
            topic_partitions=size.partitions, idle_s=2.0,
            kafka_bootstrap=bootstrap or base.kafka_bootstrap,
            redis_url=redis_url or base.redis_url, log_format="text", **changes)
        self.workers: list[Worker] = []
        self.topics: list[str] = []

    def create(self) -> None:
        self.topics = [o.name for o in admin.create_topics(self.settings)]

    def worker(self, index: int, **changes: Any) -> Worker:
        s = dataclasses.replace(self.settings, web_port=free_port(),
                                data_dir=self.tmp / f"worker{index}", **changes)
        w = Worker(s, self.tmp / f"worker{index}.log")
        self.workers.append(w)
        return w

    def feed(self, rows: int, rate: float | None) -> tuple[Worker, "Sender"]:
        """One worker ready on the deployment's topics, and the replay under way."""
        w = self.worker(0)
        w.start()
        w.wait_ready()
        sender = Sender(self.settings, rows, rate)
        sender.start()
        return w, sender

    def stop_all(self) -> None:
        for w in self.workers:
            w.term()

    def check_logs(self) -> list[str]:
        """Agent crashes or tracebacks in the workers' logs (SIGKILL leaves none)."""
        out = []
        for w in {w.log for w in self.workers}:
            text = w.read_text(errors="replace") if w.exists() else ""
            if "Crashed reason=" in text:
                out.append(f"an agent crashed ({w.name})")
            elif "Traceback" in text:
                out.append(f"traceback in {w.name}")
        return out

    def delete(self) -> None:
        if Deployment.keep:
            return
        try:
            names = [n for n in admin.list_topics(self.settings)
                     if n.startswith(self.settings.topic_prefix)
                     or n.startswith(self.settings.app_id)]
            admin.delete_topics(self.settings, names)
        except Exception as exc:  # noqa: BLE001 (cleanup of a broker that may be gone)
            print(f"chaos: could not delete {self.tag}'s topics: {exc}", file=sys.stderr)
        try:
            import redis

            client = redis.Redis.from_url(self.settings.redis_url)
            keys = list(client.scan_iter(f"{self.settings.redis_namespace}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------------------------
# Input and settling
# --------------------------------------------------------------------------------------------


class Sender(threading.Thread):
    """Sends rows [0, rows) of the profile in chunks at `rate`; `go` cleared pauses it
    between chunks (`idle` is set while it waits)."""

    def __init__(self, settings: Settings, rows: int, rate: float | None,
                 chunk: int = 200) -> None:
        super().__init__(daemon=True)
        self.settings, self.rows, self.rate, self.chunk = settings, rows, rate, chunk
        self.go, self.idle = threading.Event(), threading.Event()
        self.go.set()
        self.sent = 0
        self.error: BaseException | None = None
        self.started_at = self.finished_at = 0.0

    def run(self) -> None:
        from streams.replay import player
        from streams.replay import profile as profiles
        from streams.replay.plan import Pacing, build

        prof = profiles.load(PROFILE)
        path = prof.data_path(self.settings.shared_data_dir)
        pacing = Pacing("rate", self.rate) if self.rate else Pacing("max", 0.0)
        # Read and mapped once: per chunk it took 2-3 s on a slow box, a pause in the feed
        # longer than the scenarios' RTCC_IDLE_S after every chunk, which the reference run
        # never had (bench/NOTES.md, section 42).
        rows = player.map_rows(prof, player.read_rows(prof, path))
        self.started_at = time.monotonic()
        # Flat out (a reference run) nothing pauses it: one pass over the data set. Paced,
        # in chunks, so that a scenario can pause it between two of them.
        chunk = self.chunk if self.rate else self.rows
        try:
            for start in range(0, self.rows, chunk):
                if not self.go.is_set():
                    self.idle.set()
                    self.go.wait()
                    self.idle.clear()
                options = player.ReplayOptions(pacing=pacing, offset_rows=start,
                                               limit=min(chunk, self.rows - start),
                                               progress=False)
                plan = build(prof, rows, offset_rows=start, limit=options.limit,
                             repeat=options.repeat, shift_ids=options.shift_ids,
                             time_shift=options.time_shift)
                sent = asyncio.run(player.produce_to_kafka(
                    plan, self.settings.topic(SOURCE), self.settings.kafka_bootstrap,
                    options)).events_sent
                self.sent += sent
                if not sent:  # past the end of the data set (rows may ask for all of it)
                    break
        except BaseException as exc:  # noqa: BLE001 (reported by the scenario)
            self.error = exc
        finally:
            self.finished_at = time.monotonic()
            self.idle.set()

    def pause(self, timeout_s: float = 60.0) -> None:
        self.go.clear()
        self.idle.wait(timeout_s)

    def resume(self) -> None:
        self.go.set()

    def done(self) -> int:
        self.join()
        if self.error:
            raise RuntimeError(f"replay failed: {self.error}") from self.error
        return self.sent


MARK_TAIL = 2000  # messages read back from a partition's end to find its last event


class Probe:
    """What the settle asks of Kafka, through one admin client and one consumer for its
    whole length (not new clients every poll), remembering how far it read each normalised
    partition so that each poll reads only what arrived since."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        bootstrap = settings.kafka_bootstrap.split(",")
        self.settings = settings
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        # normalised partition -> (offset read up to, offset after its last non-mark event)
        self.scanned: dict[Any, tuple[int, int]] = {}

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()

    def group_lag(self) -> int | None:
        """Messages of the deployment's topics its consumer group has not committed yet,
        not counting the progress marks at the end of the normalised topic: ingest writes
        them every RTCC_MARK_INTERVAL_S and Faust commits every few seconds, so the raw lag
        of that topic is almost never 0 (a settle that waited for it once hung for its
        whole timeout). Every partition of the SA topic counts, with or without a commit:
        the publish agent must have read all of it."""
        from kafka import TopicPartition

        settings = self.settings
        committed = {tp: meta.offset for tp, meta in
                     _committed(self.admin, settings.app_id).items()}
        updates = settings.topic(checker.UPDATES_TOPIC)
        for p in self.consumer.partitions_for_topic(updates) or ():
            committed.setdefault(TopicPartition(updates, p), 0)
        tps = [tp for tp in committed if tp.topic.startswith(settings.topic_prefix)]
        if not tps:
            return None
        ends = self.consumer.end_offsets(tps)
        normalised = settings.topic(NORMALISED.name)
        return sum(max(0, (self.end_of_events(tp, ends[tp])
                           if tp.topic == normalised else ends[tp]) - committed[tp])
                   for tp in tps)

    def end_of_events(self, tp: Any, end: int) -> int:
        """The offset after the last message of `tp` that is not a progress mark."""
        # The first look reads back at most MARK_TAIL messages; if they are all marks, the
        # last event is taken to sit just before them (the lag is over-, never under-stated).
        start = max(0, end - MARK_TAIL)
        position, after_last = self.scanned.get(tp, (start, start))
        if position < end:
            self.consumer.assign([tp])
            self.consumer.seek(tp, position)
            while position < end:
                records = self.consumer.poll(timeout_ms=1000).get(tp, [])
                if not records:
                    break
                for r in records:
                    if not is_mark(orjson.loads(r.value) if r.value else None):
                        after_last = r.offset + 1
                    position = r.offset + 1
            self.scanned[tp] = (position, after_last)
        return after_last

    def topic_ends(self, names: tuple[str, ...]) -> tuple[int, ...]:
        """The end offset of each topic, summed over its partitions."""
        from kafka import TopicPartition

        out = []
        for name in names:
            topic = self.settings.topic(name)
            parts = self.consumer.partitions_for_topic(topic) or set()
            out.append(sum(self.consumer.end_offsets(
                [TopicPartition(topic, p) for p in parts]).values()))
        return tuple(out)

    def outputs_end(self) -> tuple[int, ...]:
        """Ends of the SA topic and of every audience topic: what a verdict reads."""
        return self.topic_ends((checker.UPDATES_TOPIC,
                                *(audience_topic(a).name for a in AUDIENCES)))


def _committed(client: Any, group: str) -> dict[Any, Any]:
    """{TopicPartition: OffsetAndMetadata} of a group (kafka-python 2 and 3 spellings)."""
    if hasattr(client, "list_group_offsets"):  # kafka-python >= 3: {group: {tp: offset}}
        return client.list_group_offsets(group).get(group, {})
    return client.list_consumer_group_offsets(group)


def _updates_end(settings: Settings) -> int:
    probe = Probe(settings)
    try:
        return probe.topic_ends((checker.UPDATES_TOPIC,))[0]
    finally:
        probe.close()


def _poll(settings: Settings, ask: Callable[[Probe], bool], timeout_s: float,
          every_s: float) -> bool:
    """Ask `ask(probe)` every `every_s` until it says yes (True) or `timeout_s` passes
    (False), through one probe for the whole wait, reopened after a broker error."""
    deadline = time.monotonic() + timeout_s
    probe: Probe | None = None
    try:
        while time.monotonic() < deadline:
            try:
                probe = probe or Probe(settings)
                if ask(probe):
                    return True
            except Exception:  # noqa: BLE001 (broker restarting: new clients next time)
                if probe is not None:
                    probe.close()
                    probe = None
            time.sleep(every_s)
        return False
    finally:
        if probe is not None:
            probe.close()


def _first_update_after(settings: Settings, end_before: int, timeout_s: float) -> float | None:
    """Seconds until the SA topic grows past `end_before`; None if it does not within
    `timeout_s`."""
    started = time.monotonic()
    grew = _poll(settings, lambda probe: probe.topic_ends((checker.UPDATES_TOPIC,))[0] >
                 end_before, timeout_s, every_s=0.2)
    return time.monotonic() - started if grew else None


def _held(workers: list[Worker]) -> float | None:
    """Events the running workers hold for event-time order (their reorder buffers), from
    their /metrics; None if one does not answer."""
    total = 0.0
    for w in workers:
        if not w.running():
            continue
        try:
            series = scrape_metrics(w.settings.web_port)
        except OSError:
            return None
        total += sum(series.get("rtcc_correlation_buffered_events", {}).values())
    return total


def settle(dep: Deployment, quiet_s: float = 6.0, timeout_s: float = 300.0) -> None:
    """Until the pipeline is quiescent: the group committed every event, the workers hold
    none in their reorder buffers, and neither the SA topic nor an audience topic grew for
    `quiet_s`. (Judging while a worker still held events let it release them after the
    settle, and be stopped before its publish agent read them: an SA update present, its
    audience copies "lost".)"""
    settings = dep.settings
    seen: dict[str, Any] = {"end": (), "since": time.monotonic()}

    def quiescent(probe: Probe) -> bool:
        end, lag = probe.outputs_end(), probe.group_lag()
        if end != seen["end"]:
            seen["end"], seen["since"] = end, time.monotonic()
            return False
        return (lag == 0 and time.monotonic() - seen["since"] >= quiet_s
                and _held(dep.workers) == 0)

    if not _poll(settings, quiescent, timeout_s, every_s=0.5):
        raise TimeoutError(f"{settings.topic_prefix} did not settle in {timeout_s:.0f} s")


# --------------------------------------------------------------------------------------------
# The reference and the verdict
# --------------------------------------------------------------------------------------------


@dataclass
class Reference:
    settings: Settings
    events: int
    deployment: Deployment
    rows: int  # what its Sender was asked for (more than the data set has: all of it)


def clean_run(base: Settings, tmp: Path, size: Size, rows: int, tag: str = "ref",
              rate: float | None = None) -> Reference:
    """One worker, no fault: the reference for every scenario of this size."""
    dep = Deployment(base, tmp, tag, size)
    try:
        dep.create()
        w, sender = dep.feed(rows, rate)
        sent = sender.done()
        settle(dep, timeout_s=1800)
        dep.stop_all()
        return Reference(dep.settings, sent, dep, rows)
    except BaseException:
        dep.stop_all()
        dep.delete()
        raise


def judge(result: Result, ref: Reference, dep: Deployment) -> Result:
    verdicts = checker.compare_deployments(ref.settings, dep.settings, audiences=True)
    result.verdict = verdicts.pop("updates")
    bad = [k for k, v in verdicts.items() if not v.ok]
    result.audiences_ok = not bad
    if bad:
        result.notes.append("audience topics differ: " + ", ".join(
            f"{k} {verdicts[k].line()} {verdicts[k].examples}" for k in bad))
    result.notes += dep.check_logs()
    return result


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def _wait_until_processing(w: Worker, timeout_s: float = 120.0) -> None:
    w.wait_recovered(timeout_s)


def kill9(base: Settings, tmp: Path, size: Size, ref: Reference, rng: random.Random) -> Result:
    """SIGKILL the worker at random moments while the replay runs, `size.kills` times."""
    dep = Deployment(base, tmp, "kill9", size, table_store="rocksdb://")
    dep.create()
    try:
        w, sender = dep.feed(size.rows, size.rate)
        restarts = []
        for _ in range(size.kills):
            _wait_until_processing(w)
            time.sleep(rng.uniform(0.5, 4.0))
            w.kill9()
            w.start()
            restarts.append(w.wait_recovered())
        sent = sender.done()
        settle(dep)
        r = Result("kill -9 x%d (rocksdb)" % size.kills, sent,
                   recovery_s=max(restarts) if restarts else None)
        r.notes.append("restart to ready: " + ", ".join(f"{s:.1f}" for s in restarts) + " s")
        dep.stop_all()
        return judge(r, ref, dep)
    finally:
        dep.stop_all()
        dep.delete()


def graceful(base: Settings, tmp: Path, size: Size, ref: Reference,
             rng: random.Random) -> Result:
    """SIGTERM and restart; then a redeploy: stop and start with changed batching and log
    settings (they must not change any result)."""
    dep = Deployment(base, tmp, "graceful", size, table_store="rocksdb://")
    dep.create()
    try:
        w, sender = dep.feed(size.rows, size.rate)
        _wait_until_processing(w)
        time.sleep(rng.uniform(1.0, 3.0))
        t0 = time.monotonic()
        w.term()
        stop_s = time.monotonic() - t0
        w.start()
        first = w.wait_recovered()
        time.sleep(rng.uniform(1.0, 3.0))
        w.term()
        # the redeploy: same data dir and app, other settings (as a new release would)
        w.settings = dataclasses.replace(w.settings, batch_max=50, batch_within_s=0.05,
                                         producer_linger_s=0.02)
        w.start()
        second = w.wait_recovered()
        sent = sender.done()
        settle(dep)
        r = Result("SIGTERM restart + redeploy", sent, recovery_s=first)
        r.notes.append(f"stop {stop_s:.1f} s; restart {first:.1f} s; redeploy "
                       f"(RTCC_BATCH_MAX=50, linger 20 ms) ready {second:.1f} s")
        dep.stop_all()
        return judge(r, ref, dep)
    finally:
        dep.stop_all()
        dep.delete()


def scale(base: Settings, tmp: Path, size: Size, ref: Reference, rng: random.Random) -> Result:
    """1 -> 2 -> 1 workers while the replay runs (two rebalances)."""
    dep = Deployment(base, tmp, "scale", size, table_store="rocksdb://")
    dep.create()
    try:
        a, b = dep.worker(0), dep.worker(1)
        a.start()
        a.wait_ready()
        sender = Sender(dep.settings, size.rows, size.rate)
        sender.start()
        _wait_until_processing(a)
        time.sleep(rng.uniform(1.0, 3.0))
        b.start()
        joined = b.wait_recovered()
        time.sleep(rng.uniform(2.0, 4.0))
        b.term()
        sent = sender.done()
        settle(dep)
        r = Result("scale 1 -> 2 -> 1", sent, recovery_s=joined)
        r.notes.append(f"second worker ready after {joined:.1f} s; stopped (SIGTERM)")
        dep.stop_all()
        return judge(r, ref, dep)
    finally:
        dep.stop_all()
        dep.delete()


def broker_outage(base: Settings, tmp: Path, size: Size, ref: Reference,
                  rng: random.Random) -> Result:
    """Stop a (private) broker for `size.broker_outage_s` in the middle of the replay."""
    kafka = PrivateKafka(tmp / "broker-outage" / "kafka")
    kafka.start()
    dep = Deployment(base, tmp, "broker-outage", size, bootstrap=kafka.bootstrap,
                     table_store="rocksdb://")
    try:
        dep.create()
        w, sender = dep.feed(size.rows, size.rate)
        _wait_until_processing(w)
        time.sleep(rng.uniform(1.0, 3.0))
        sender.pause()  # the input waits too: an upstream producer would buffer
        end_before = _updates_end(dep.settings)
        kafka.stop()
        down_at = time.monotonic()
        time.sleep(size.broker_outage_s)
        alive_during = w.running()
        up_s = kafka.start()
        sender.resume()
        back_at = time.monotonic()
        first_update = _first_update_after(dep.settings, end_before, timeout_s=300)
        sent = sender.done()
        settle(dep, timeout_s=600)
        r = Result(f"broker down {size.broker_outage_s:.0f} s", sent)
        if not w.running():
            r.notes.append("worker exited during the outage; restarted")
        r.recovery_s = first_update
        r.notes.append(f"worker {'survived' if alive_during else 'died'} the outage; broker "
                       f"down {back_at - down_at:.0f} s (incl. {up_s:.1f} s start); first "
                       f"new update {first_update if first_update is None else round(first_update, 1)} s after")
        dep.stop_all()
        return judge(r, ref, dep)
    finally:
        dep.stop_all()
        dep.delete()
        kafka.stop()
        shutil.rmtree(kafka.workdir, ignore_errors=True)


class SSEClient(threading.Thread):
    """A partner's SSE client that reconnects with Last-Event-ID whenever the stream ends
    or stalls, as browsers' EventSource does."""

    def __init__(self, port: int, key: str, stall_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.port, self.key, self.stall_s = port, key, stall_s
        self.last_id = "0-0"
        self.ids: list[str] = []
        self.connections = 0
        self.resets = 0
        self.stopping = threading.Event()
        self.current: http.client.HTTPConnection | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._connect_once()
            except Exception:  # noqa: BLE001 (reconnect, as EventSource does)
                pass
            if not self.stopping.is_set():
                time.sleep(1.0)

    def _connect_once(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.stall_s)
        self.current = conn
        conn.request("GET", "/v1/stream", headers={"Authorization": f"Bearer {self.key}",
                                                   "Last-Event-ID": self.last_id})
        response = conn.getresponse()
        if response.status != 200:
            response.read()
            conn.close()
            return
        self.connections += 1
        event_id, event, data = None, None, []
        try:
            while not self.stopping.is_set():
                raw = response.fp.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "":
                    if event == "update" and data:
                        self.ids.append(orjson.loads("\n".join(data))["update_id"])
                        if event_id:
                            self.last_id = event_id
                    elif event == "reset":
                        self.resets += 1
                    event_id, event, data = None, None, []
        finally:
            conn.close()

    def disconnect(self) -> None:
        if self.current is not None:
            try:
                self.current.sock and self.current.sock.shutdown(2)
            except OSError:
                pass

    def finish(self) -> None:
        self.stopping.set()
        self.disconnect()
        self.join(timeout=15)


def redis_outage(base: Settings, tmp: Path, size: Size, ref: Reference,
                 rng: random.Random) -> Result:
    """Stop a (private) Redis for `size.redis_outage_s`; it comes back empty (no
    persistence). Processing goes on; the sink rebuilds Redis from the audience topics;
    an SSE client that reconnects with Last-Event-ID misses no update."""
    from streams.gateway.partners_admin import add
    from tests.integration.redis_server import private_redis

    redis_proc = private_redis(tmp / "redis-outage" / "redis")
    redis_proc.start()
    dep = Deployment(base, tmp, "redis-outage", size, redis_url=redis_proc.url,
                     table_store="rocksdb://", gateway_port=free_port(),
                     gateway_heartbeat_s=1.0)
    gateway = None
    client = None
    try:
        dep.create()
        _record, key = add(dep.settings, "chaos-ops", "operator")
        w = dep.worker(0)
        w.start()
        w.wait_ready()
        gateway = start_gateway(dep.settings, dep.tmp / "gateway.log")
        _wait_http(dep.settings.gateway_port, "/readyz")
        client = SSEClient(dep.settings.gateway_port, key)
        client.start()
        sender = Sender(dep.settings, size.rows, size.rate)
        sender.start()
        _wait_until_processing(w)
        time.sleep(rng.uniform(1.0, 3.0))
        redis_proc.stop()
        client.disconnect()  # the partner's connection drops with it
        before = _group_committed(dep.settings)
        time.sleep(size.redis_outage_s)
        progressed = _group_committed(dep.settings) - before
        worker_alive = w.running()
        redis_proc.start()
        back = time.monotonic()
        sent = sender.done()
        settle(dep)
        audiences = checker.read_audiences(dep.settings)
        caught_up = _wait_redis(dep.settings, audiences, timeout_s=180)
        r = Result(f"Redis down {size.redis_outage_s:.0f} s", sent,
                   recovery_s=None if caught_up is None else caught_up - back)
        r.redis = checker.compare_redis(dep.settings, published=audiences)
        time.sleep(3.0)  # the SSE client reads the last entries
        client.finish()
        expected = {p["update_id"] for _, _, p in audiences["operator"].records
                    if not p.get("aggregate")}
        got = set(client.ids)
        r.sse = {"expected": len(expected), "received": len(client.ids),
                 "distinct": len(got), "missed": len(expected - got),
                 "redelivered": len(client.ids) - len(got),
                 "connections": client.connections, "resets": client.resets}
        r.notes.append(f"processing went on: {progressed} offsets committed during the outage"
                       f" (worker {'up' if worker_alive else 'DOWN'})")
        r.notes.append(f"Redis caught up {r.recovery_s:.1f} s after it came back"
                       if r.recovery_s is not None else "Redis did NOT catch up")
        r.notes.append("SSE: {received} received ({distinct} distinct, {redelivered} "
                       "redelivered after the rebuild), {missed} missed of {expected}; "
                       "{connections} connections".format(**r.sse))
        dep.stop_all()
        return judge(r, ref, dep)
    finally:
        if client is not None:
            client.finish()
        if gateway is not None:
            stop(gateway)
        dep.stop_all()
        dep.delete()
        redis_proc.stop()


def _wait_http(port: int, path: str, timeout_s: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no 200 from :{port}{path}")


def _group_committed(settings: Settings) -> int:
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        return sum(o.offset for o in _committed(client, settings.app_id).values())
    finally:
        client.close()


def _wait_redis(settings: Settings, audiences: dict[str, checker.Published],
                timeout_s: float) -> float | None:
    """Until every audience's Redis matches its topic; the monotonic time it did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if all(v.ok for v in checker.compare_redis(settings, published=audiences)):
                return time.monotonic()
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.5)
    return None


def state_recovery(base: Settings, tmp: Path, size: Size, ref: Reference,
                   rng: random.Random, full_ref: Reference | None = None) -> Result:
    """The replay runs; half-way through it the worker is stopped, its local RocksDB
    directory wiped (a disk replaced) and the worker started on the empty directory: its
    tables come back from the changelog topics while the feed goes on. The rest of the
    replay must then give the reference's updates, which it does only if the restored state
    (open incidents, groups, hotspots, the reorder buffers' progress) is what the worker
    had: a restart with nothing after it would pass with no state at all. (The feed never
    pauses: after a pause every source would count as idle, and a flat-out restart of the
    feed would apply some events out of order, a difference that is not the changelog's.)
    Recovery time = start to "Worker ready" (tables restored) and the streams resumed."""
    source = full_ref or ref
    dep = Deployment(base, tmp, "state", size, table_store="rocksdb://")
    dep.create()
    try:
        w, sender = dep.feed(source.rows, size.rate)
        half = source.events // 2
        while sender.sent < half and sender.is_alive():
            time.sleep(0.1)
        before = sender.sent
        w.term()
        shutil.rmtree(w.settings.data_dir)  # wipe its local state
        w.start()
        recovered = w.wait_recovered(timeout_s=900)
        restored = _restore_line(w.log_since_start())
        sent = sender.done()
        settle(dep)
        r = Result(f"wipe local state half-way, restart ({before:,} events sent before, "
                   f"{sent - before:,} after)", sent, recovery_s=recovered)
        r.notes.append(f"start -> tables restored and streams resumed: {recovered:.1f} s"
                       + (f" ({restored})" if restored else ""))
        dep.stop_all()
        return judge(r, source, dep)
    finally:
        dep.stop_all()
        dep.delete()


def _restore_line(log: str) -> str:
    for line in log.splitlines():
        if "Done reading from changelog" in line or "Restore complete" in line:
            return "restore logged"
    return ""


SCENARIOS: dict[str, Callable[..., Result]] = {
    "kill9": kill9,
    "graceful": graceful,
    "scale": scale,
    "broker": broker_outage,
    "redis": redis_outage,
    "state": state_recovery,
}


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    head = ("| scenario | events | updates | lost | duplicated raw / after dedupe | wrong | "
            "recovery (s) | ok | notes |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        v = r.verdict
        rec = "" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        if v is None:
            lines.append(f"| {r.scenario} | {r.events:,} | - | - | - | - | {rec} | FAIL | "
                         f"{'; '.join(r.notes)} |")
            continue
        lines.append(f"| {r.scenario} | {r.events:,} | {v.distinct:,} | {v.lost} | "
                     f"{v.duplicated_raw} / {v.duplicated_after_dedupe} | "
                     f"{v.wrong + v.unexpected} | {rec} | {'yes' if r.ok else 'NO'} | "
                     f"{'; '.join(r.notes)} |")
    return "\n".join(lines)


def tally(results: list[Result]) -> str:
    """Clean runs per scenario, for `--repeat`: a flake shows as k of N."""
    runs: dict[str, list[bool]] = {}
    for r in results:
        runs.setdefault(r.scenario.rsplit(" #", 1)[0], []).append(r.ok)
    lines = []
    for name, oks in runs.items():
        failed = [f"#{i}" for i, ok in enumerate(oks, 1) if not ok]
        lines.append(f"{name}: {sum(oks)} of {len(oks)} runs clean"
                     + (f" (failed: {', '.join(failed)})" if failed else ""))
    return "\n".join(lines)


def run(names: list[str], size: Size, tmp: Path, seed: int,
        report: Callable[[Result], None] = lambda r: None,
        repeat: int = 1) -> list[Result]:
    base = dataclasses.replace(load(), log_format="text")
    rng = random.Random(seed)
    t0 = time.monotonic()
    ref = clean_run(base, tmp, size, size.rows, rate=None)
    print(f"chaos: reference: {ref.events:,} events, "
          f"{len(checker.read_updates(ref.settings)):,} updates "
          f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    full_ref = None
    results = []
    try:
        for name, rep in ((n, i) for i in range(1, repeat + 1) for n in names):
            work = tmp / f"run{rep}" if repeat > 1 else tmp
            t = time.monotonic()
            try:
                if name == "state" and size.recovery_rows != size.rows:
                    if full_ref is None:
                        full_ref = clean_run(base, tmp, size, size.recovery_rows or 10**9,
                                             tag="fullstate", rate=None)
                    result = state_recovery(base, work, size, ref, rng, full_ref=full_ref)
                else:
                    result = SCENARIOS[name](base, work, size, ref, rng)
            except Exception as exc:  # noqa: BLE001 (one scenario's failure is a row)
                result = Result(name, 0, notes=[f"{type(exc).__name__}: {exc}"])
            if repeat > 1:
                result.scenario = f"{result.scenario} #{rep}"
            result.notes.append(f"{time.monotonic() - t:.0f} s")
            label = f"{name} #{rep}" if repeat > 1 else name
            print(f"chaos: {label}: {'ok' if result.ok else 'FAIL'} "
                  f"({result.verdict.line() if result.verdict else result.notes})",
                  file=sys.stderr)
            report(result)
            results.append(result)
    finally:
        ref.deployment.stop_all()
        ref.deployment.delete()
        if full_ref is not None:
            full_ref.deployment.stop_all()
            full_ref.deployment.delete()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="full sizes and outages")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--rows", type=int, help="input rows (overrides the form's)")
    parser.add_argument("--rate", type=float, help="events/s while sending (overrides the form's)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--kills", type=int, help="kill -9 count (default 5)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the scenarios this many times against one reference")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (worker logs), topics and Redis keys")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    size = FULL if args.full else SHORT
    if args.rows:
        size = dataclasses.replace(size, rows=args.rows)
    if args.rate:
        size = dataclasses.replace(size, rate=args.rate)
    if args.kills is not None:
        size = dataclasses.replace(size, kills=args.kills)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    tmp = Path(tempfile.mkdtemp(prefix="rtcc-chaos-"))
    Deployment.keep = args.keep
    results: list[Result] | None = None  # None: the run itself failed
    try:
        results = run(names, size, tmp, args.seed, repeat=args.repeat)
    finally:
        if args.keep or results is None or not all(r.ok for r in results):
            print(f"chaos: work directory (workers' logs) kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(results))
    if args.repeat > 1:
        print()
        print(tally(results))
    if args.json:
        args.json.write_text(orjson.dumps([{
            "scenario": r.scenario, "events": r.events, "ok": r.ok, "notes": r.notes,
            "recovery_s": r.recovery_s, "sse": r.sse,
            "verdict": r.verdict.asdict() if r.verdict else None,
            "redis": [dataclasses.asdict(x) for x in r.redis]} for r in results],
            option=orjson.OPT_INDENT_2).decode())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
