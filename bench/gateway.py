"""Partner delivery latency: from an SA update on Kafka to SSE clients of one gateway process.

    python -m bench.gateway                       # clients 1, 100, 500, 1000 at 50 events/s
    python -m bench.gateway --clients 1,200 --rate 100 --seconds 10

One isolated deployment (its own topic prefix, deleted afterwards): a worker with every
stage, one gateway process, and for each level N SSE clients of one operator partner, held
in a separate client process. Live Milwaukee calls (stamped now) are produced at --rate; the
latency of an update is a client's receive time minus the Kafka timestamp of that update on
rtcc.sa.updates, so it covers publish (redaction), the audience topic, the Redis sink, the
gateway hub and the SSE write. Same machine, same clock. Figures are printed and written to
bench/results/gateway-<time>.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import resource
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from bench.ingest import RESULTS_DIR, proc_usage
from bench.pipeline import delete_deployment, percentile, read_all
from streams import admin
from streams.config import Settings, load
from streams.gateway.partners_admin import add
from streams.processes import free_port, start_gateway, start_worker, stop
from streams.replay import player, profile
from streams.replay.plan import Pacing
from streams.topics import SA_UPDATES

PROFILE = "milwaukee_pd_cfs"


# --- the client process ---------------------------------------------------------------------

async def _clients(url: str, key: str, n: int, seconds: float, ready: Any) -> list[list[Any]]:
    import aiohttp

    received: list[list[Any]] = [[] for _ in range(n)]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(i: int) -> None:
            async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as response:
                if i == n - 1:
                    ready.set()
                async for raw in response.content:
                    if raw.startswith(b"data: "):  # the id without parsing: clients are cheap
                        start = raw.find(b'"update_id":"') + 13
                        received[i].append((raw[start:raw.find(b'"', start)].decode(),
                                            time.time()))

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return received


def client_process(url: str, key: str, n: int, seconds: float, ready: Any, out: Any) -> None:
    out.put(asyncio.run(_clients(url, key, n, seconds, ready)))


# --- the run ----------------------------------------------------------------------------------

def feed(settings: Settings, offset: int, rows: int, rate: float) -> int:
    prof = profile.load(PROFILE)
    options = player.ReplayOptions(pacing=Pacing("rate", rate), limit=rows, offset_rows=offset,
                                   time_shift="end", progress=False)
    return player.replay(prof, prof.data_path(settings.shared_data_dir),
                         settings.topic(prof.source.topic.name), settings.kafka_bootstrap,
                         options).events_sent


def wait_http(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


def level(settings: Settings, key: str, clients: int, offset: int, rate: float,
          seconds: float, gateway_pid: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{settings.gateway_port}/v1/stream"
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    # clients stay connected for the feed and the drain after it
    proc = ctx.Process(target=client_process,
                       args=(url, key, clients, seconds + 20, ready, out))
    proc.start()
    if not ready.wait(60):
        raise TimeoutError("clients did not connect")
    time.sleep(1.0)
    cpu0 = proc_usage(gateway_pid)[0]
    sent = feed(settings, offset, int(rate * seconds), rate)
    received = out.get(timeout=seconds + 120)
    proc.join()
    cpu1, rss = proc_usage(gateway_pid)
    return {"clients": clients, "events": sent, "received": received,
            "gateway_cpu_s": cpu1 - cpu0, "gateway_rss_mib": rss}


def summarise(runs: list[dict[str, Any]], published: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        latencies = sorted(t - published[u] for client in run["received"] for u, t in client
                           if u in published)
        per_client = [len(c) for c in run["received"]]
        rows.append({
            "clients": run["clients"], "events": run["events"],
            "updates_per_client_min": min(per_client), "updates_per_client_max": max(per_client),
            "deliveries": len(latencies),
            "p50_ms": 1000 * percentile(latencies, 0.50),
            "p99_ms": 1000 * percentile(latencies, 0.99),
            "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
            "gateway_cpu_s": run["gateway_cpu_s"], "gateway_rss_mib": run["gateway_rss_mib"]})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| SSE clients | events in | updates per client | deliveries | p50 ms | p99 ms "
             "| max ms | gateway CPU s | gateway RSS MiB |", "|---" * 9 + "|"]
    for r in rows:
        lines.append(
            f"| {r['clients']:,} | {r['events']:,} | {r['updates_per_client_min']:,}"
            f"-{r['updates_per_client_max']:,} | {r['deliveries']:,} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['gateway_cpu_s']:.1f} "
            f"| {r['gateway_rss_mib']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,100,500,1000")
    parser.add_argument("--rate", type=float, default=50.0, help="events/s into cad.events")
    parser.add_argument("--seconds", type=float, default=10.0, help="feed time per level")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # the gateway inherits
    run_id = uuid.uuid4().hex[:8]
    base = load()
    tmp = Path(tempfile.mkdtemp(prefix="rtcc-bench-gateway-"))
    settings = dataclasses.replace(
        base, topic_prefix=f"bench.{run_id}.", app_id=f"rtcc-bench-{run_id}",
        table_store="memory://", data_dir=tmp / "worker", web_port=free_port(),
        gateway_port=free_port(), gateway_heartbeat_s=60.0, log_format="text")
    admin.create_topics(settings)
    worker = gateway = None
    try:
        worker = start_worker(settings, tmp / "worker.log")
        wait_http(f"http://127.0.0.1:{settings.web_port}/healthz")
        gateway = start_gateway(settings, tmp / "gateway.log")
        _record, key = add(settings, "bench-operator", "operator")
        wait_http(f"http://127.0.0.1:{settings.gateway_port}/readyz")
        time.sleep(max(3.0, settings.idle_s + 2))
        runs, offset = [], 0
        for n in (int(c) for c in args.clients.split(",")):
            print(f"gateway bench: {n} clients, {args.rate:g} events/s for {args.seconds:g} s",
                  flush=True)
            runs.append(level(settings, key, n, offset, args.rate, args.seconds, gateway.pid))
            offset += int(args.rate * args.seconds)
        topic = settings.topic(SA_UPDATES.name)
        layout = admin.list_topics(settings)
        published = {orjson.loads(r.value)["update_id"]: r.timestamp / 1000.0
                     for r in read_all(settings.kafka_bootstrap, {topic: layout[topic]})
                     if r.value is not None}
    finally:
        for proc in (gateway, worker):
            if proc is not None:
                stop(proc)
        delete_deployment(settings, [settings.app_id])
    rows = summarise(runs, published)
    text = table(rows)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"gateway-{stamp}.json").write_text(json.dumps(
        {"when": stamp, "rate": args.rate, "seconds": args.seconds, "rows": rows}, indent=1))
    (RESULTS_DIR / f"gateway-{stamp}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
