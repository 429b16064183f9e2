"""What a stage after ingest does with an event it fails on: log it, dead-letter it, go on.

Such a failure is a bug (an earlier stage of ours wrote the event), but it must not stop the
picture: raised out of a batch, it would leave the batch unacked and restart the agent
(agents/batching.py). The dead letter keeps the event and where it was read, for replay
once the bug is fixed; each stage counts it in its own measure.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from agents.batching import Outbox
from agents.ingest.dead_letters import stage_failure
from streams import channels

log = logging.getLogger(__name__)


def dead_letter_failure(stage: str, event: faust.types.EventT, exc: BaseException,
                        out: Outbox, value: Any = None) -> None:
    """Call from the `except` block that caught `exc` (the log keeps its traceback).
    `value`: the part of the event's value the stage failed on, if not all of it."""
    message = event.message
    log.exception("%s: failed on %s[%d]@%d", stage, message.topic, message.partition,
                  message.offset)
    out.add(channels.dead_letters, message.key,
            stage_failure(stage, message, event.value if value is None else value, exc))
