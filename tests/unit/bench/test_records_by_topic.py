"""bench/pipeline.py: records written per event, by topic, named without the deployment."""

from __future__ import annotations

import dataclasses

from kafka import TopicPartition

from bench.pipeline import by_topic
from streams.config import load


def test_per_topic_sums_partitions_strips_the_deployment_and_sorts():
    settings = dataclasses.replace(load(), topic_prefix="bench.ab12.", app_id="rtcc-bench-ab12")
    ends = {TopicPartition("bench.ab12.rtcc.sa.updates", 0): 120,
            TopicPartition("bench.ab12.rtcc.sa.updates", 1): 80,
            TopicPartition("rtcc-bench-ab12-correlate-incidents-changelog", 3): 190,
            TopicPartition("bench.ab12.rtcc.events.normalised", 2): 127,
            TopicPartition("bench.ab12.rtcc.audit", 0): 0}
    assert by_topic(settings, ends, 100) == {
        "rtcc.sa.updates": 2.0, "correlate-incidents-changelog": 1.9,
        "rtcc.events.normalised": 1.27}
