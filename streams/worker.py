"""Start a worker: the Faust app with every stage's agents and the web pages."""

from __future__ import annotations

import gc
import importlib

import faust
import mode.loop

from streams.app import app, settings
from streams.logs import logging_config


STAGE_MODULES = {
    "ingest": "agents.ingest.agents",
    "correlate": "agents.correlate.agents",
    "kpi": "agents.correlate.kpi_agent",
    "publish": "agents.publish.agents",
    "serve": "streams.serving.stage",
}


def load_stages() -> faust.App:
    """Import the modules that register this worker's agents and pages on the app."""
    import streams.lag  # noqa: F401
    import streams.web  # noqa: F401

    wanted = [s.strip() for s in settings.stages.split(",") if s.strip()]
    unknown = set(wanted) - set(STAGE_MODULES)
    if unknown or not wanted:
        raise SystemExit(f"RTCC_STAGES={settings.stages!r}: choose from {', '.join(STAGE_MODULES)}")
    for stage in wanted:
        importlib.import_module(STAGE_MODULES[stage])
    return app


def tune_gc(young_threshold: int) -> None:
    """Collect less often, and never walk what start-up made.

    The worker allocates a few dicts per message and keeps a large, long-lived heap (the
    tables' write-behind mirrors, Faust's machinery); with Python's defaults, collections
    of the older generations re-walk that heap so often that they took 40 % of the
    correlation engine's time (bench/NOTES.md, section 14). Reference counting still frees
    everything that is not in a cycle at once; the collector only finds cycles later.
    """
    if young_threshold <= 0:
        return
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)
    gc.collect()
    gc.freeze()  # modules, the app, its agents and topics: alive for the whole process


def run() -> None:
    # Before Faust's worker makes its loop: the policy decides which loop that is.
    mode.loop.use(settings.event_loop)
    load_stages()
    tune_gc(settings.gc_young_threshold)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          logging_config=logging_config(settings.log_level, settings.log_format))
    worker.execute_from_commandline()
