"""The producer's CPU per record: aiokafka's `send()` one at a time against
`streams.producing.append_all`, alternating, on the same broker and topic in one run.

    python -m bench.producer [--records 100000] [--rounds 3] [--value-bytes 1200]

Records are ~1.2 kB JSON-sized values keyed like SA updates, spread over 4 partitions, handed
over 500 at a time (a batch of an agent's Outbox); each figure is CPU seconds of this process
per record from the first hand-over until every record is acked, so it counts the futures'
resolution too.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams import config, producing

CHUNK = 500


async def _per_record(producer: AIOKafkaProducer, records: list) -> None:
    futures = []
    for start in range(0, len(records), CHUNK):
        for topic, key, value, partition, headers in records[start:start + CHUNK]:
            futures.append(await producer.send(topic, value, key=key, partition=partition,
                                               headers=headers))
    await asyncio.gather(*futures)


async def _appended(producer: AIOKafkaProducer, records: list) -> None:
    futures = []
    for start in range(0, len(records), CHUNK):
        futures += [fut for _, _, fut, _ in
                    await producing.append_all(producer, records[start:start + CHUNK])]
    await asyncio.gather(*futures)


async def run(bootstrap: str, n: int, rounds: int, value_bytes: int) -> None:
    topic = f"bench-producer-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                                max_batch_size=1024 * 1024)
    await producer.start()
    value = b"x" * value_bytes
    records = [(topic, f"subject-{i}".encode(), value, None if i % 2 else i % 4, None)
               for i in range(n)]
    try:
        await producer.send_and_wait(topic, b"warm-up", partition=0)
        for r in range(rounds):
            for name, way in (("send() per record", _per_record),
                              ("append_all", _appended)):
                cpu, wall = time.process_time(), time.perf_counter()
                await way(producer, records)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"round {r + 1} {name:18s} {1e6 * cpu / n:6.2f} us CPU / record, "
                      f"{n / wall:9,.0f} records/s")
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.producer",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--value-bytes", type=int, default=1200)
    args = parser.parse_args(argv)
    asyncio.run(run(config.load().kafka_bootstrap, args.records, args.rounds,
                    args.value_bytes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
