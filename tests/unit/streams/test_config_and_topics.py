import pytest

from streams.cli import build_parser, resolve_topic
from streams.config import Settings, load
from streams.topics import ALL_TOPICS, SA_STATE


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RTCC_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("RTCC_TOPIC_PARTITIONS", "12")
    settings = load()
    assert settings.topic("cad.events") == "staging.cad.events"
    assert settings.topic_partitions == 12


def test_a_bad_setting_stops_startup_with_its_name(monkeypatch):
    monkeypatch.setenv("RTCC_TOPIC_PARTITIONS", "many")
    with pytest.raises(ValueError, match="RTCC_TOPIC_PARTITIONS"):
        load()


def test_exactly_once_is_refused_with_the_reason(monkeypatch):
    """Faust's transactions would not cover the agents' outputs (bench/NOTES.md section 37):
    a worker must not start believing it has them."""
    monkeypatch.setenv("RTCC_PROCESSING_GUARANTEE", "exactly_once")
    with pytest.raises(ValueError, match="RTCC_PROCESSING_GUARANTEE.*not supported"):
        load()
    monkeypatch.setenv("RTCC_PROCESSING_GUARANTEE", "at-most-once")
    with pytest.raises(ValueError, match="expected at_least_once"):
        load()
    monkeypatch.setenv("RTCC_PROCESSING_GUARANTEE", "AT_LEAST_ONCE")
    assert load().processing_guarantee == "at_least_once"


def test_every_setting_is_documented():
    documented = Settings.documented()
    assert all(env.startswith("RTCC_") and doc for env, doc, _ in documented)
    assert len({env for env, _, _ in documented}) == len(documented)


def test_topic_specs():
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert SA_STATE.config()["cleanup.policy"] == "compact"
    assert all(t.config()["cleanup.policy"] in {"delete", "compact"} for t in ALL_TOPICS)


def test_topic_aliases_get_the_prefix(monkeypatch):
    monkeypatch.setenv("RTCC_TOPIC_PREFIX", "p.")
    settings = load()
    assert resolve_topic(settings, "normalised") == "p.rtcc.events.normalised"
    assert resolve_topic(settings, "cad") == "p.cad.events"
    assert resolve_topic(settings, "someone.elses.topic") == "someone.elses.topic"


def test_cli_parses_every_command():
    parser = build_parser()
    for argv in (["worker"], ["topics", "create"], ["tail", "cad", "--where", "a=b"],
                 ["replay", "milwaukee_pd_cfs", "--max", "--limit", "10"], ["config"],
                 ["demo", "--speed", "5"]):
        assert parser.parse_args(argv).func


def test_a_worker_refuses_unknown_stages(monkeypatch):
    import dataclasses

    import streams.worker as worker

    monkeypatch.setattr(worker, "settings", dataclasses.replace(load(), stages="ingest,teleport"))
    with pytest.raises(SystemExit, match="teleport"):
        worker.load_stages()


def test_settings_round_trip_through_the_environment(monkeypatch):
    import dataclasses

    custom = dataclasses.replace(load(), topic_prefix="x.", lateness_s=12.5, stages="kpi")
    for name, value in custom.as_env({}).items():
        monkeypatch.setenv(name, value)
    assert load() == custom


def test_partition_for_is_the_producers_partitioner():
    """Ingest places normalised events and chooses their ghosts with `partition_for`; the
    state of a partition's engine was built by records the producer placed: they agree."""
    from aiokafka.partitioner import DefaultPartitioner
    from kafka.partitioner.default import murmur2 as java_murmur2  # a port of Java's

    from streams.topics import partition_for

    keys = [f"86264{i:03x}7ffffff".encode() for i in range(500)] + [b"", b"wi-mpd/district 7"]
    for n in (1, 3, 4, 12):
        partitions = list(range(n))
        placed = [partition_for(k, n) for k in keys]
        assert placed == [DefaultPartitioner()(k, partitions, partitions) for k in keys]
        assert placed == [(java_murmur2(k) & 0x7FFFFFFF) % n for k in keys]
    assert len({partition_for(k, 4) for k in keys}) == 4
