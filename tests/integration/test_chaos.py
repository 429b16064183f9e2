"""The short form of the chaos scenarios (`bench/chaos.py`): each on a small replay, checked
against one clean run of the same input by the output checker (`bench/checker.py`):
nothing lost, nothing wrong, nothing duplicated once copies are dropped by update id.

The broker and Redis outages run on a private broker and a private redis-server; the shared
services are never stopped. `python -m bench.chaos --full` is the long form.
"""

from __future__ import annotations

import dataclasses
import random
import shutil

import pytest

from bench import chaos
from bench.private_kafka import classpath
from tests.integration.conftest import unavailable

SIZE = dataclasses.replace(chaos.SHORT, rows=600, rate=100.0, kills=2, broker_outage_s=10.0,
                           redis_outage_s=10.0, recovery_rows=600)


@pytest.fixture(scope="module")
def base(services):
    from streams.config import load

    return dataclasses.replace(load(), kafka_bootstrap=services.kafka_bootstrap,
                               redis_url=services.redis_url, log_format="text")


@pytest.fixture(scope="module")
def reference(base, tmp_path_factory):
    ref = chaos.clean_run(base, tmp_path_factory.mktemp("chaos"), SIZE, SIZE.rows)
    yield ref
    ref.deployment.stop_all()
    ref.deployment.delete()


def _assert_ok(result: chaos.Result) -> None:
    v = result.verdict
    assert v is not None, result.notes
    assert v.reference > 100
    assert (v.lost, v.duplicated_after_dedupe, v.unexpected, v.wrong) == (0, 0, 0, 0), \
        (v.line(), v.examples, result.notes)
    assert result.ok, result.notes


def test_kill9_during_a_replay(base, reference, tmp_path):
    # each restart waits for the killed member's session timeout (RTCC_BROKER_SESSION_TIMEOUT_S)
    _assert_ok(chaos.kill9(base, tmp_path, SIZE, reference, random.Random(1)))


def test_graceful_restart_and_redeploy(base, reference, tmp_path):
    _assert_ok(chaos.graceful(base, tmp_path, SIZE, reference, random.Random(2)))


def test_scale_one_two_one(base, reference, tmp_path):
    _assert_ok(chaos.scale(base, tmp_path, SIZE, reference, random.Random(3)))


def test_broker_outage_on_a_private_broker(base, reference, tmp_path):
    if not shutil.which("java"):
        unavailable("java is needed for a private broker")
    try:
        classpath()
    except RuntimeError as exc:
        unavailable(str(exc))
    _assert_ok(chaos.broker_outage(base, tmp_path, SIZE, reference, random.Random(4)))


def test_redis_outage_on_a_private_redis(base, reference, tmp_path):
    if not shutil.which("redis-server"):
        unavailable("redis-server is needed for a private Redis")
    result = chaos.redis_outage(base, tmp_path, SIZE, reference, random.Random(5))
    _assert_ok(result)
    assert result.sse["missed"] == 0 and result.sse["expected"] > 0, result.sse
    assert all(r.ok for r in result.redis), result.redis


def test_state_rebuilds_from_the_changelog(base, reference, tmp_path):
    # the second half of the replay runs on the restored state: it fails when the
    # changelog misses records (checked by dropping them in streams/changelog.py)
    result = chaos.state_recovery(base, tmp_path, SIZE, reference, random.Random(6))
    _assert_ok(result)
    assert result.recovery_s is not None
