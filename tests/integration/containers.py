"""Kafka and Redis from the official images, for machines with a Docker engine.

testcontainers' KafkaContainer drives Confluent's images; the project runs Apache Kafka, so
the broker here is the official apache/kafka image in KRaft mode, configured as in
docker-compose.yml. Its advertised listener must name the port the host sees, so that port
is chosen before the container starts and bound explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from streams.processes import free_port

KAFKA_IMAGE = "apache/kafka:4.4.0"
REDIS_IMAGE = "redis:7"


@contextmanager
def kafka_and_redis() -> Iterator[tuple[str, str]]:
    """(bootstrap servers, Redis URL) of throwaway containers."""
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_LISTENERS="PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_INTER_BROKER_LISTENER_NAME="PLAINTEXT",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
        )
    )
    with kafka, RedisContainer(REDIS_IMAGE) as redis:
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        host = redis.get_container_host_ip()
        yield f"127.0.0.1:{port}", f"redis://{host}:{redis.get_exposed_port(6379)}/0"
