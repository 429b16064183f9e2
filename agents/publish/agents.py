"""Publish agent: every SA update, redacted once per audience, onto that audience's topic.

Thin: the decisions are in agents/publish/redact.py. Keyed by the (possibly opaque) subject
id, so one subject's updates stay in order on one partition of each audience topic.
"""

from __future__ import annotations

from typing import Any

import faust

from agents.batching import Outbox, batches
from agents.failures import dead_letter_failure
from agents.publish.policy import Policies
from agents.publish.redact import redact
from streams import channels, lag, metrics
from streams.app import app, settings


policies = Policies.load(settings.audiences_file)


def publish_to_audiences(update: dict[str, Any], out: Outbox) -> None:
    for policy in policies:
        result = redact(update, policy, policies.sensitivity)
        metrics.AUDIENCE_UPDATES.labels(policy.name, result.outcome).inc()
        if result.payload is not None:
            out.add(channels.audiences[policy.name], result.payload["subject_id"],
                    result.payload)


@app.agent(channels.sa_updates, name="publish")
async def publish(stream: faust.StreamT) -> None:
    # In batches, like the other stages (agents/batching.py): the outputs of a batch go to
    # the producer in order before Faust acknowledges its events.
    out = Outbox(app)
    async for events in batches(stream, settings.batch_max, settings.batch_within_s):
        for event in events:
            if event.value is not None:
                try:
                    publish_to_audiences(event.value, out)
                except Exception as exc:  # a bug must not stop partner feeds
                    metrics.AUDIENCE_UPDATES.labels("all", "processing_error").inc()
                    dead_letter_failure("publish", event, exc, out)
            lag.processed(event.message)
        await out.send()
