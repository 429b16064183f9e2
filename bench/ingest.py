"""Throughput of the ingest (normalisation) stage on the Milwaukee calls, against a baseline.

An events/s figure alone says more about the machine and the broker than about the code, so
each run also measures, on the same broker, topics layout and input, what a bare aiokafka
consumer that forwards every message unchanged achieves (baseline A). The ratio of the real
worker to that baseline is the figure to compare across machines and commits. Row C, the
ingest agent's own per-event code on whole aiokafka fetches, splits the worker's cost into
what ingest's code costs and what Faust's per-message read path adds.

    python -m bench.ingest [--repeat K] [--partitions P] [--out FILE]

Steps: fresh topics under a unique prefix; cad.events pre-loaded by the replay at --max;
baseline A in a fresh process; row C in another; a real `rtcc worker` process, timed from
its first output to its last by the outputs' Kafka timestamps and by polling its /metrics
(start-up reported apart); a markdown table on stdout and JSON in bench/results/; every
topic deleted.
bench/README.md says what each figure means and what it leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import glob
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from streams import admin, config
from streams.config import REPO_ROOT, Settings
from streams.processes import free_port, start_worker, stop
from streams.topics import CAD_EVENTS, DEAD_LETTER, NORMALISED, TopicSpec

PROFILE = "milwaukee_pd_cfs"
PASSTHROUGH = TopicSpec("bench.passthrough", "Baseline A: source messages copied unchanged.")
OUTPUT_COUNTERS = ("rtcc_events_normalised_total", "rtcc_events_dead_lettered_total")
INPUT_COUNTER = "rtcc_events_in_total"
POLL_S = 0.05  # /metrics polling interval: the resolution of the /metrics row
CHUNK = 2000  # baseline A: send() futures awaited together (as the replay player does)
# Baseline A's producer: as durable as the worker's (acks=all), batched like the replay's.
BASELINE_PRODUCER = {"acks": "all", "linger_ms": 5, "max_batch_size": 256 * 1024}
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Stage:
    """One row of the table: `events` handled in `seconds` by one process using `cpu_s`."""

    name: str
    events: int
    seconds: float
    cpu_s: float | None = None
    peak_rss_mib: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_s_per_1k(self) -> float | None:
        return None if self.cpu_s is None else 1000 * self.cpu_s / self.events


# --------------------------------------------------------------------------------------------
# The machine and its processes
# --------------------------------------------------------------------------------------------


def proc_usage(pid: int) -> tuple[float, float]:
    """(user+system CPU seconds, peak RSS MiB) of a live process, from /proc (no psutil)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "(comm)", which may hold spaces
    cpu_s = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: fields 14, 15
    return cpu_s, _status_mib(pid, "VmHWM")


def rss_mib(pid: int) -> float:
    """Resident set size now (VmRSS), where `proc_usage` gives the high-water mark: a
    process whose memory is bounded shows the same RSS at the end of a long run as early
    on, which the high-water mark cannot show."""
    return _status_mib(pid, "VmRSS")


def _status_mib(pid: int, field: str) -> float:
    """A memory field of /proc/<pid>/status (kB there), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1)) / 1024  # type: ignore[union-attr]


def kafka_version(bootstrap: str) -> str:
    """The broker's release, read from the jars of the local broker listening on the
    bootstrap port; the wire protocol does not carry it, so a remote broker gets what
    kafka-python infers from its API versions."""
    port = bootstrap.split(",")[0].rpartition(":")[2]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
            if "kafka.Kafka" not in args:
                continue
            props = args[args.index("kafka.Kafka") + 1]  # kafka.Kafka server.properties
            cwd = cmdline.parent / "cwd"  # relative paths are the broker's, not ours
            if not re.search(rf"^listeners=.*:{port}\b", (cwd / props).read_text(), re.M):
                continue
        except (OSError, IndexError):
            continue
        classpath = args[args.index("-cp") + 1] if "-cp" in args else ""
        for entry in classpath.split(":"):
            for jar in glob.glob(str(cwd / entry)):
                if m := re.search(r"kafka-clients-(\d[\w.-]*)\.jar$", jar):
                    return m.group(1)
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        return "API >= " + ".".join(map(str, client._client.check_version()))
    finally:
        client.close()


def machine_info(settings: Settings) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "mem_total_mib": int(meminfo.group(1)) // 1024 if meminfo else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka": kafka_version(settings.kafka_bootstrap),
        "aiokafka": version("aiokafka"),
        "faust_streaming": version("faust-streaming"),
        "loadavg_at_start": os.getloadavg(),  # other users of this host skew every figure
    }


def code_state() -> dict[str, Any]:
    """The commit the worker runs and the files changed on top of it, read as it starts:
    a figure compares only with one measured on the same code."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True,
                              text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown (not a git checkout)",
            "uncommitted": git("status", "--porcelain", "--", "agents", "streams",
                               "schemas").splitlines()}


# --------------------------------------------------------------------------------------------
# Input and baseline A
# --------------------------------------------------------------------------------------------


def preload(settings: Settings, repeat: int) -> Any:
    """Fill cad.events with the replay users run, at --max, before anything reads it, so
    that both stages read a complete backlog and neither waits on a producer."""
    from streams.replay import player, profile
    from streams.replay.plan import Pacing

    prof = profile.load(PROFILE)
    options = player.ReplayOptions(pacing=Pacing("max", 0.0), repeat=repeat, progress=False)
    return player.replay(prof, prof.data_path(settings.shared_data_dir),
                         settings.topic(CAD_EVENTS.name), settings.kafka_bootstrap, options)


async def _assign_from_start(consumer: Any, topics: dict[str, int]) -> None:
    """Read every partition of `topics` (name -> partitions) from its first offset, no group."""
    from aiokafka import TopicPartition

    tps = [TopicPartition(t, p) for t, parts in topics.items() for p in range(parts)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)


def passthrough(bootstrap: str, source: str, partitions: int, sink: str,
                expected: int) -> Stage:
    """Baseline A, run in a fresh process so its CPU and RSS are its own: read `source` from
    the start and produce every message unchanged to `sink`, timed from the first message
    consumed to the last produce acknowledged."""
    return asyncio.run(_passthrough(bootstrap, source, partitions, sink, expected))


async def _passthrough(bootstrap: str, source: str, partitions: int, sink: str,
                       expected: int) -> Stage:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","), **BASELINE_PRODUCER)

    async def forward(records: list[Any]) -> list[asyncio.Future[Any]]:
        return [await producer.send(sink, r.value, key=r.key, headers=list(r.headers) or None)
                for r in records]

    return await _timed_fetches("A raw pass-through (aiokafka)", bootstrap, source,
                                partitions, expected, producer, forward)


async def _timed_fetches(name: str, bootstrap: str, source: str, partitions: int,
                         expected: int, producer: Any,
                         handle: Callable[[list[Any]], Awaitable[list[asyncio.Future[Any]]]],
                         max_records: int | None = None) -> Stage:
    """Read `source` from the start with a bare aiokafka consumer and hand each fetch to
    `handle`, which returns the futures of what it produced; timed from the first message
    consumed to the last produce acknowledged. Starts and stops `producer`."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    await producer.start()
    try:
        await _assign_from_start(consumer, {source: partitions})
        pending: list[asyncio.Future[Any]] = []
        count, started, cpu0, last_seen = 0, 0.0, 0.0, time.monotonic()
        while count < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            if not batches:
                if time.monotonic() - last_seen > 30:
                    raise RuntimeError(f"{name}: {count:,} of {expected:,} messages in {source}")
                continue
            if not count:
                started, cpu0 = time.perf_counter(), proc_usage(os.getpid())[0]
            records = [r for part in batches.values() for r in part]
            pending += await handle(records)
            count += len(records)
            last_seen = time.monotonic()
            if len(pending) >= CHUNK:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        seconds = time.perf_counter() - started
        cpu_s, rss = proc_usage(os.getpid())
        return Stage(name, count, seconds, cpu_s - cpu0, rss)
    finally:
        await producer.stop()
        await consumer.stop()


def ingest_on_fetches(env: dict[str, str], bootstrap: str, source: str, partitions: int,
                      expected: int) -> Stage:
    """Row C, in a fresh process like baseline A: the ingest agent's own per-event code
    (`agents.ingest.agents.process`, its outputs through the Outbox and
    `streams.producing.append_all`, progress observed) applied to whole aiokafka fetches,
    with no Faust stream between the consumer and the code. Between A and B it splits the
    worker's cost in two: C - A is what ingest's code costs, B - C what Faust's per-message
    read path and the worker around it add (bench/NOTES.md section 40). No progress marks,
    no commits: an upper bound of a read path that hands the agent whole fetches."""
    os.environ.update(env)  # read by streams.config when the agents' module is imported
    return asyncio.run(_ingest_on_fetches(bootstrap, source, partitions, expected))


async def _ingest_on_fetches(bootstrap: str, source: str, partitions: int,
                             expected: int) -> Stage:
    from types import SimpleNamespace

    from aiokafka import AIOKafkaProducer

    from agents.batching import Outbox
    from agents.ingest import agents as ingest
    from streams import lag, producing

    settings = ingest.settings
    producer = AIOKafkaProducer(  # as the worker's: acks=all, its linger and batch size
        bootstrap_servers=bootstrap.split(","), acks="all",
        linger_ms=round(settings.producer_linger_s * 1000),
        max_batch_size=settings.producer_max_batch_bytes)
    out = Outbox(ingest.app)
    observed: list[tuple[str, float | None, float, int]] = []

    async def process(records: list[Any]) -> list[asyncio.Future[Any]]:
        for r in records:  # Faust's Message gives the timestamp in seconds
            message = SimpleNamespace(topic=r.topic, partition=r.partition, offset=r.offset,
                                      key=r.key, value=r.value, timestamp=r.timestamp / 1000)
            ingest.process("cad", message, out, observed)
            lag.processed(message)
        runs = await producing.append_all(producer, out.messages)
        out.messages.clear()
        for origin, ts, wall, offset in observed:
            ingest.progress.observe(origin, ts, wall, offset)
        observed.clear()
        return [fut for _, _, fut, _ in runs]

    return await _timed_fetches("C ingest's code on aiokafka fetches (no Faust stream)",
                                bootstrap, source, partitions, expected, producer, process,
                                max_records=settings.batch_max)


# --------------------------------------------------------------------------------------------
# The real worker
# --------------------------------------------------------------------------------------------


@dataclass
class WorkerRun:
    """Wall-clock instants (time.time()) and CPU readings of one worker run."""

    spawned_at: float
    metrics_up_at: float  # first /metrics answer
    idle_at: float  # last poll that saw no output yet: processing starts after it
    idle_cpu_s: float  # CPU spent by then: start-up (imports, Faust, group join)
    done_at: float  # first poll that saw outputs == input
    done_cpu_s: float
    peak_rss_mib: float
    events_in: int  # rtcc_events_in_total at done_at
    dead_letter_reasons: dict[str, int]


def counters(port: int) -> tuple[dict[str, float], dict[str, int]]:
    """The ingest counters on the worker's /metrics, summed over labels, and the
    dead-letter counts by reason (what the worker rejected changes what it costs)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    sums = dict.fromkeys((*OUTPUT_COUNTERS, INPUT_COUNTER), 0.0)
    reasons: dict[str, int] = {}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in sums:
            value = float(line.rpartition(" ")[2])
            sums[name] += value
            if reason := re.search(r'reason="([^"]*)"', line):
                reasons[reason.group(1)] = reasons.get(reason.group(1), 0) + int(value)
    return sums, reasons


def watch_worker(proc: subprocess.Popen[bytes], port: int, spawned_at: float,
                 expected: int, timeout_s: float) -> WorkerRun:
    """Poll /metrics every POLL_S until every input message is normalised or
    dead-lettered, bracketing the processing between the last idle and the first full poll."""
    deadline = spawned_at + timeout_s
    metrics_up_at = idle_at = idle_cpu = 0.0
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}")
        try:
            sums, reasons = counters(port)
        except OSError:  # web server not up yet
            time.sleep(POLL_S)
            continue
        now = time.time()
        cpu_s, rss = proc_usage(proc.pid)
        metrics_up_at = metrics_up_at or now
        outputs = sum(sums[c] for c in OUTPUT_COUNTERS)
        if outputs == 0:
            idle_at, idle_cpu = now, cpu_s
        elif not idle_at:
            raise RuntimeError("the worker had output before its /metrics answered: "
                               "start-up and processing cannot be told apart")
        if outputs >= expected:
            return WorkerRun(spawned_at, metrics_up_at, idle_at, idle_cpu, now, cpu_s, rss,
                             int(sums[INPUT_COUNTER]), reasons)
        time.sleep(POLL_S)
    raise TimeoutError(f"the worker did not account for {expected:,} events in {timeout_s:.0f} s")


async def output_times(bootstrap: str, topics: dict[str, int], expected: int,
                       timeout_s: float = 120) -> tuple[int, int, dict[str, int]]:
    """(first, last) Kafka timestamp in ms over the outputs of input events, and their
    counts per topic. The topics use CreateTime: the worker's producer stamps each message
    as it sends it. Control messages are not outputs of an event: tombstones and progress
    marks (objects with a "mark" field, written by ingest for the correlation stage)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        await _assign_from_start(consumer, topics)
        first, last, counts = sys.maxsize, 0, dict.fromkeys(topics, 0)
        deadline = time.monotonic() + timeout_s
        while sum(counts.values()) < expected and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                stamps = [r.timestamp for r in records if not _control(r.value)]
                if stamps:
                    counts[tp.topic] += len(stamps)
                    first, last = min(first, *stamps), max(last, *stamps)
        return first, last, counts
    finally:
        await consumer.stop()


def _control(value: bytes | None) -> bool:
    """Not an output of an input event: a tombstone, a progress mark, or the ghost copy of
    an event near an area border (agents/correlate/engine.py, "Borders")."""
    if value is None:
        return True
    if b'"mark"' not in value and b'"ghost":true' not in value:  # cheap test first
        return False
    doc = orjson.loads(value)
    return isinstance(doc, dict) and ("mark" in doc or doc.get("ghost") is True)


def cleanup(settings: Settings) -> None:
    """Delete every topic of this run (ours and Faust's own, prefixed by the app id) and the
    worker's consumer group: the broker may be shared."""
    names = [n for n in admin.list_topics(settings)
             if n.startswith(settings.topic_prefix) or n.startswith(settings.app_id)]
    admin.delete_topics(settings, names)
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:  # kafka-python 3 renamed delete_consumer_groups
        delete = getattr(client, "delete_groups", None) or client.delete_consumer_groups
        delete([settings.app_id])
    except KafkaError:
        pass  # the group may never have formed
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(stages: list[Stage]) -> str:
    raw = stages[0].events_per_s
    rows = ["| stage | events | seconds | events/s | vs raw | CPU s / 1k events | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {s.name} | {s.events:,} | {s.seconds:.2f} | {s.events_per_s:,.0f} | "
             f"{s.events_per_s / raw:.3f} | {_fmt(s.cpu_s_per_1k, '.3f')} | "
             f"{_fmt(s.peak_rss_mib, '.0f')} |" for s in stages]
    return "\n".join(rows)


def header(report: dict[str, Any]) -> str:
    m, i, w, o = report["machine"], report["input"], report["worker_startup"], report["outputs"]
    dirty = len(report["code"]["uncommitted"])
    return "\n".join([
        f"## ingest bench {report['started_utc']}",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_mib']:,} MiB, "
        f"load {m['loadavg_at_start'][0]:.2f}; Python {m['python']}, Kafka {m['kafka']}, "
        f"aiokafka {m['aiokafka']}, faust-streaming {m['faust_streaming']}",
        f"- code: {report['code']['commit']}"
        + (f" + {dirty} uncommitted file(s) in agents/ streams/ schemas/" if dirty else ""),
        f"- input: {i['events']:,} events = {PROFILE} x {i['repeat']} on "
        f"{i['partitions']} partitions, pre-loaded at {i['preload_events_per_s']:,.0f} events/s",
        f"- outputs: {o['normalised']:,} normalised + {o['deadletter']:,} dead-lettered "
        f"{o['deadletter_reasons']}",
        f"- worker start-up (excluded above): /metrics up {w['metrics_up_s']:.2f} s, first "
        f"output {w['first_output_s']:.2f} s after spawn, {w['cpu_s']:.2f} CPU s",
    ])


def run_worker(settings: Settings, expected: int, log: Path, timeout_s: float) -> WorkerRun:
    """A real `rtcc worker` process on these settings, watched until done, then stopped."""
    spawned_at = time.time()
    proc = start_worker(settings, log)
    try:
        return watch_worker(proc, settings.web_port, spawned_at, expected, timeout_s)
    finally:
        stop(proc)


def measure(settings: Settings, repeat: int, timeout_s: float,
            log: Path) -> tuple[list[Stage], dict[str, Any]]:
    """Everything between fresh topics and their deletion: the table's rows and the
    context the JSON keeps."""
    bootstrap, source = settings.kafka_bootstrap, settings.topic(CAD_EVENTS.name)
    outputs = [settings.topic(NORMALISED.name), settings.topic(DEAD_LETTER.name)]
    info = machine_info(settings)
    admin.create_topics(settings)
    admin.create_topics(settings, (PASSTHROUGH,))
    # Row C writes to topics of its own: B's outputs are counted on the others.
    fetches = dataclasses.replace(settings, topic_prefix=f"{settings.topic_prefix}c.")
    admin.create_topics(fetches)
    layout = admin.list_topics(settings)  # name -> partitions
    loaded = preload(settings, repeat)
    n = loaded.events_sent
    print(f"bench: pre-loaded {n:,} events; baseline A", file=sys.stderr)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        raw = pool.submit(passthrough, bootstrap, source, layout[source],
                          settings.topic(PASSTHROUGH.name), n).result()
    print("bench: C ingest's code on aiokafka fetches", file=sys.stderr)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        on_fetches = pool.submit(ingest_on_fetches, fetches.as_env(), bootstrap, source,
                                 layout[source], n).result()
    fetches_outputs = [fetches.topic(NORMALISED.name), fetches.topic(DEAD_LETTER.name)]
    _, _, fetches_counts = asyncio.run(output_times(
        bootstrap, {t: layout[t] for t in fetches_outputs}, n))
    if sum(fetches_counts.values()) != n:
        raise RuntimeError(f"row C: input {n:,}, outputs {fetches_counts}")
    print("bench: ingest worker", file=sys.stderr)
    code = code_state()
    run = run_worker(settings, n, log, timeout_s)
    first_ms, last_ms, counts = asyncio.run(
        output_times(bootstrap, {t: layout[t] for t in outputs}, n))
    if sum(counts.values()) != n or run.events_in != n:
        raise RuntimeError(f"input {n:,}, worker read {run.events_in:,}, outputs {counts}")
    if "Crashed reason=" in log.read_text():
        raise RuntimeError("an agent crashed")

    cpu_s = run.done_cpu_s - run.idle_cpu_s
    stages = [
        raw,
        on_fetches,
        Stage("B ingest worker, Kafka timestamps", n, (last_ms - first_ms) / 1000, cpu_s,
              run.peak_rss_mib),
        Stage(f"B ingest worker, /metrics (+-{POLL_S * 2:.1f} s)", n, run.done_at - run.idle_at,
              cpu_s, run.peak_rss_mib),
    ]
    context = {
        "machine": info,
        "code": code,
        "input": {"profile": PROFILE, "repeat": repeat, "events": n,
                  "partitions": settings.topic_partitions,
                  "preload_s": loaded.elapsed_s, "preload_events_per_s": loaded.events_per_s},
        "deployment": {"topic_prefix": settings.topic_prefix, "app_id": settings.app_id,
                       "processing_guarantee": settings.processing_guarantee,
                       "log_level": settings.log_level, "table_store": settings.table_store,
                       "stages": settings.stages},
        "baseline_producer": BASELINE_PRODUCER,
        "outputs": {"normalised": counts[outputs[0]], "deadletter": counts[outputs[1]],
                    "deadletter_reasons": run.dead_letter_reasons},
        "worker_startup": {"metrics_up_s": run.metrics_up_at - run.spawned_at,
                           "idle_until_s": run.idle_at - run.spawned_at,
                           "first_output_s": first_ms / 1000 - run.spawned_at,
                           "cpu_s": run.idle_cpu_s},
    }
    return stages, context


def _positive(text: str) -> int:
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=_positive, default=3,
                        help="send the Milwaukee calls K times (33,968 x K events; default 3)")
    parser.add_argument("--partitions", type=_positive,
                        help="partitions of every topic (default: RTCC_TOPIC_PARTITIONS)")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds the worker may take, start-up included (default 900)")
    parser.add_argument("--stages", default="ingest",
                        help="RTCC_STAGES of the measured worker (default: ingest alone; "
                        "'ingest,correlate,kpi' measures ingest inside the full worker)")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args(argv)

    started = datetime.now(timezone.utc)
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="rtcc-bench-") as tmp:
        base = config.load()
        settings = dataclasses.replace(
            base, topic_prefix=f"bench.{run_id}.", app_id=f"rtcc-bench-{run_id}",
            data_dir=Path(tmp) / "worker", table_store="memory://", web_port=free_port(),
            topic_partitions=args.partitions or base.topic_partitions, stages=args.stages)
        log = Path(tmp) / "worker.log"
        print(f"bench: prefix {settings.topic_prefix} on {settings.kafka_bootstrap}",
              file=sys.stderr)
        try:
            stages, context = measure(settings, args.repeat, args.timeout, log)
        except BaseException:
            if log.exists():
                print(f"bench: worker log tail:\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            cleanup(settings)

    raw = stages[0].events_per_s
    report = {"started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"), **context,
              "stages": [dataclasses.asdict(s) | {"events_per_s": s.events_per_s,
                                                  "vs_raw": s.events_per_s / raw,
                                                  "cpu_s_per_1k": s.cpu_s_per_1k}
                         for s in stages]}
    print(header(report) + "\n\n" + table(stages))
    path = args.out or RESULTS_DIR / f"ingest-{started.strftime('%Y-%m-%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nbench: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
