"""Start a worker: the Faust app with every stage's agents and the web pages."""

from __future__ import annotations

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


def run() -> None:
    # Before Faust's worker makes its loop: the policy decides which loop that is.
    mode.loop.use(settings.event_loop)
    load_stages()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          logging_config=logging_config(settings.log_level, settings.log_format))
    worker.execute_from_commandline()
