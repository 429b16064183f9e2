"""Prometheus metrics of the pipeline. Labels are bounded sets: never ids or keys."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

# The *_created series double the exposition for no use on dashboards or alerts.
disable_created_metrics()

EVENTS_IN = Counter(
    "rtcc_events_in_total", "Messages read from a source topic.", ["source"])
EVENTS_NORMALISED = Counter(
    "rtcc_events_normalised_total", "Source messages accepted and normalised.",
    ["source", "category"])
EVENTS_DEAD_LETTERED = Counter(
    "rtcc_events_dead_lettered_total", "Messages sent to the dead-letter topic.",
    ["source", "reason"])
INGEST_SECONDS = Histogram(
    "rtcc_stage_seconds", "Processing time of one message in a pipeline stage.", ["stage"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25))
