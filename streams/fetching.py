"""How long a worker's fetch may wait at the broker: the bound of a busy partition's delay.

aiokafka sends one fetch at a time per broker, for the assigned partitions that have no
records buffered, and leaves out of it those that still have (`Fetcher._get_actions_per_node`).
A busy partition whose buffer drains while that fetch is in flight waits for it to return;
when the fetch holds only quiet partitions (the KPI stage's input, the other sources' empty
partitions), the broker keeps it for the whole `fetch_max_wait_ms`, and Faust fixes that at
1,500 ms. A correlation worker split from ingest then applied events 1.2-1.5 s late in
about half the runs, and 80-90 ms late in the others (bench/NOTES.md, section 16).

`RTCC_FETCH_MAX_WAIT_S` sets it instead. What a short wait costs: an idle worker's fetch
every so often, answered empty, and on a live feed more and smaller fetches (~5 % more CPU
per event at 1,000 events/s).

`RTCC_FETCH_MIN_BYTES` sets how much new data a fetch waits for. At 1 (Kafka's default) the
broker answers as soon as any record arrives: on a live feed that is a fetch per record or
two, 200 a second at 100 events/s, and each request and response lists every assigned
partition (45 in one worker), encoded and decoded by aiokafka in Python on the consumer's
thread (bench/NOTES.md, section 26).
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.delivery import DirectDelivery


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer waits at most `app.fetch_max_wait_s`
    for `app.fetch_min_bytes`."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read when the consumer starts and builds its Fetcher; Faust has no setting for them.
        consumer._fetch_max_wait_ms = fetch_max_wait_ms(self.app)
        consumer._fetch_min_bytes = max(1, int(self.app.fetch_min_bytes))
        return consumer


class Consumer(DirectDelivery, faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the thread above, handing messages to the streams
    without a task per message (streams/delivery.py)."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """Faust's Kafka transport (`kafka://`), with the consumer above."""

    Consumer = Consumer


def fetch_max_wait_ms(app: Any) -> int:
    """The app's wait in whole milliseconds (at least 1: 0 would make an idle worker spin)."""
    return max(1, round(app.fetch_max_wait_s * 1000))
