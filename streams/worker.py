"""Start a worker: the Faust app with every stage's agents and the web pages."""

from __future__ import annotations

import faust

from streams.app import app, settings


def load_stages() -> faust.App:
    """Import the modules that register agents and pages on the app."""
    import agents.correlate.agents  # noqa: F401
    import agents.correlate.kpi_agent  # noqa: F401
    import agents.ingest.agents  # noqa: F401
    import streams.web  # noqa: F401

    return app


def run() -> None:
    load_stages()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
