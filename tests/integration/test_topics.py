"""`rtcc topics create` against the real broker."""

from __future__ import annotations

import dataclasses

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams import admin
from streams.topics import ALL_TOPICS, PARTNERS, SA_STATE, partitions_of


def test_creates_every_topic_idempotently(settings):
    first = admin.create_topics(settings)
    try:
        assert [o.action for o in first] == ["created"] * len(ALL_TOPICS)
        second = admin.create_topics(settings)
        assert [o.action for o in second] == ["exists"] * len(ALL_TOPICS)
        present = admin.list_topics(settings)
        for spec in ALL_TOPICS:
            assert present[settings.topic(spec.name)] == partitions_of(spec, settings)
        assert present[settings.topic(PARTNERS.name)] == 1  # one ordered registry

        client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            resource = ConfigResource(ConfigResourceType.TOPIC, settings.topic(SA_STATE.name))
            described = client.describe_configs([resource])
            text = repr(described)
            assert "compact" in text
        finally:
            client.close()

        wider = dataclasses.replace(settings, topic_partitions=settings.topic_partitions + 1)
        assert {o.name: o.action for o in admin.create_topics(wider)} == {
            settings.topic(spec.name): "exists" if spec.partitions else "exists-differs"
            for spec in ALL_TOPICS}
    finally:
        admin.delete_topics(settings, [o.name for o in first])
