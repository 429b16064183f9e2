"""The Grafana dashboard asks only for series the worker exposes."""

from __future__ import annotations

import json
import re

from streams.config import REPO_ROOT
from tests.unit.deploy.test_alert_rules import HISTOGRAMS, WORKER_METRICS

DASHBOARD = REPO_ROOT / "deploy/grafana/dashboards/rtcc-pipeline.json"


def _known(name: str) -> bool:
    if name in WORKER_METRICS:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base in HISTOGRAMS


def test_every_panel_queries_known_series():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 14
    used = {m for e in exprs for m in re.findall(r"\brtcc_[a-z_]+", e)}
    assert used and all(_known(m) for m in used), sorted(m for m in used if not _known(m))
    # the flow per stage, latency, lag, dead letters, freshness and domain measures are there
    for needed in ("rtcc_events_in_total", "rtcc_end_to_end_seconds_bucket",
                   "rtcc_consumer_lag_messages", "rtcc_events_dead_lettered_total",
                   "rtcc_source_last_event_timestamp_seconds", "rtcc_hotspots_open",
                   "rtcc_merges_total",
                   # partners: audiences, serving, gateway, audit
                   "rtcc_audience_updates_total", "rtcc_redis_backlog_messages",
                   "rtcc_redis_write_errors_total", "rtcc_gateway_connections",
                   "rtcc_gateway_delivery_seconds_bucket", "rtcc_gateway_requests_total",
                   "rtcc_audit_write_failures_total"):
        assert needed in used, needed


def test_panels_do_not_overlap():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    cells = set()
    for p in panels:
        g = p["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, p["title"]
        cells |= area


def test_the_known_series_are_the_apps_own():
    """The list panels and alerts are checked against is read from streams/metrics.py."""
    from prometheus_client.metrics import MetricWrapperBase

    from streams import metrics

    defined = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name
            defined.add(name + "_total" if value._type == "counter" else name)
    assert WORKER_METRICS == defined
