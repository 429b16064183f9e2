"""Baseline P: the plainest Faust agent, forwarding each message unchanged.

A minimal `faust.App` with one agent, `async for value in stream: await out.send(value=value)`,
on the same broker, source topic and producer durability (acks=all) as the real worker,
with Faust's defaults otherwise. It measures what Faust itself costs per message, apart
from anything rtcc-streams does: the pipeline's figure divided by this one is the share
left to our own code.

Run by bench/pipeline.py as its own process, configured through the environment:

    BENCH_PLAIN_APP_ID=... BENCH_PLAIN_SOURCE=... BENCH_PLAIN_SINK=... \
    BENCH_PLAIN_PARTITIONS=4 RTCC_KAFKA_BOOTSTRAP=... python -m bench.plain_faust worker -l warn
"""

from __future__ import annotations

import os
import tempfile

import faust

BOOTSTRAP = os.environ.get("RTCC_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
PARTITIONS = int(os.environ.get("BENCH_PLAIN_PARTITIONS", "4"))

app = faust.App(
    os.environ.get("BENCH_PLAIN_APP_ID", "rtcc-bench-plain"),
    broker=[f"kafka://{h.strip()}" for h in BOOTSTRAP.split(",")],
    store="memory://",
    datadir=os.environ.get("BENCH_PLAIN_DATADIR", tempfile.mkdtemp(prefix="rtcc-plain-")),
    processing_guarantee="at_least_once",
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    topic_partitions=PARTITIONS,
    key_serializer="raw",
    value_serializer="raw",
    web_enabled=False,
    autodiscover=False,
)

source = app.topic(os.environ.get("BENCH_PLAIN_SOURCE", "bench.plain.in"), partitions=PARTITIONS)
out = app.topic(os.environ.get("BENCH_PLAIN_SINK", "bench.plain.out"), partitions=PARTITIONS)


@app.agent(source, name="forward")
async def forward(stream: faust.StreamT) -> None:
    async for value in stream:
        await out.send(value=value)


if __name__ == "__main__":
    app.main()
