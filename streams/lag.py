"""Consumer lag per topic and partition, from what the agents have processed."""

from __future__ import annotations

from faust.types import Message

from streams import metrics
from streams.app import app

_processed: dict[tuple[str, int], int] = {}


def processed(message: Message) -> None:
    """Called by an agent for each message it has finished with."""
    _processed[(message.topic, message.partition)] = message.offset


@app.timer(interval=5.0)
async def measure_lag() -> None:
    for tp in app.consumer.assignment():
        highwater = app.consumer.highwater(tp)
        if highwater is None:
            continue
        last = _processed.get((tp.topic, tp.partition))
        if last is None and highwater > 0:
            continue  # nothing processed yet here: the lag is not known
        lag = max(0, highwater - (last + 1 if last is not None else 0))
        metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)


@app.on_partitions_revoked.connect
async def forget_revoked(app: object, revoked: set, **kwargs: object) -> None:
    """A partition now read elsewhere: its lag is that worker's to report."""
    for tp in revoked:
        _processed.pop((tp.topic, tp.partition), None)
        try:
            metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        except KeyError:
            pass
