"""What correlation makes of a whole data set, through a real worker on the real broker.

Pre-loads a replay (default: all 33,968 Milwaukee calls) into a fresh deployment, runs one
worker until every event is accounted for, and reports what came out: incidents in, SA
updates out by kind, merges, suppressions, hotspots, and the state left in each table (it
must stay bounded: closed incidents and old buckets are removed as event time passes).

    python -m bench.correlation_report [--profile milwaukee_pd_cfs] [--store rocksdb://]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.ingest import cleanup, machine_info, proc_usage
from streams import admin
from streams.config import REPO_ROOT, load
from streams.processes import free_port, scrape_metrics, start_worker, stop
from streams.replay import player
from streams.replay import profile as profiles
from streams.replay.plan import Pacing

RESULTS = REPO_ROOT / "bench" / "results"


def total(metrics: dict[str, dict[str, float]], name: str) -> float:
    return sum(metrics.get(name, {}).values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="milwaukee_pd_cfs")
    parser.add_argument("--store", default="rocksdb://", help="Faust table store")
    parser.add_argument("--repeat", type=int, default=1,
                        help="replay the data K times (new ids, later times): K x its span of "
                        "event time, to show the state stays bounded")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)

    run = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="rtcc-corr-"))
    settings = dataclasses.replace(
        load(), app_id=f"rtcc-report-{run}", topic_prefix=f"report.{run}.",
        data_dir=workdir / "state", table_store=args.store, web_port=free_port(), idle_s=2.0)
    admin.create_topics(settings)
    worker = None
    try:
        prof = profiles.load(args.profile)
        summary = player.replay(prof, prof.data_path(settings.shared_data_dir),
                                settings.topic(prof.source.topic.name), settings.kafka_bootstrap,
                                player.ReplayOptions(pacing=Pacing("max", 0.0), repeat=args.repeat,
                                                     progress=False))
        sent = summary.events_sent
        log = workdir / "worker.log"
        started = time.monotonic()
        worker = start_worker(settings, log)
        metrics: dict[str, dict[str, float]] = {}
        while time.monotonic() - started < args.timeout:
            time.sleep(2.0)
            try:
                metrics = scrape_metrics(settings.web_port)
            except OSError:
                continue
            normalised = total(metrics, "rtcc_events_normalised_total")
            handled = normalised + total(metrics, "rtcc_events_dead_lettered_total")
            if handled >= sent and total(metrics, "rtcc_correlation_events_total") >= normalised \
                    and total(metrics, "rtcc_correlation_buffered_events") == 0:
                time.sleep(6.0)  # let the table-size gauges and the KPI stage catch up
                metrics = scrape_metrics(settings.web_port)
                break
        else:
            print(f"timed out; worker log: {log}", file=sys.stderr)
            return 1
        elapsed = time.monotonic() - started
        cpu_s, rss_mib = proc_usage(worker.pid)
    finally:
        if worker is not None:
            stop(worker, timeout_s=60)
        cleanup(settings)

    updates = {labels: v for labels, v in metrics["rtcc_sa_updates_total"].items()}
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(settings),
        "profile": args.profile, "store": args.store, "repeat": args.repeat,
        "events_sent": sent,
        "events_normalised": total(metrics, "rtcc_events_normalised_total"),
        "events_dead_lettered": metrics.get("rtcc_events_dead_lettered_total", {}),
        "cad_incidents_opened": metrics["rtcc_sa_updates_total"].get(
            'kind="opened",subject_kind="incident"', 0),
        "sa_updates": total(metrics, "rtcc_sa_updates_total"),
        "sa_updates_by_kind": updates,
        "dispositions": metrics.get("rtcc_correlation_events_total", {}),
        "merges": total(metrics, "rtcc_merges_total"),
        "links": metrics.get("rtcc_links_total", {}),
        "late_events": total(metrics, "rtcc_events_late_total"),
        "ghosts": total(metrics, "rtcc_events_ghosted_total"),
        "kpi_records": total(metrics, "rtcc_kpi_records_total"),
        "table_keys_at_end": metrics.get("rtcc_table_keys", {}),
        "worker_seconds": round(elapsed, 1), "worker_cpu_s": round(cpu_s, 1),
        "worker_peak_rss_mib": round(rss_mib, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"correlation-{args.profile}-x{args.repeat}-{report['date'].replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
