"""CI smoke of `make bench` (bench/pipeline.py): every stage and a latency run, tiny input;
and of bench/ingest.py with its rows."""

from __future__ import annotations

import json

import pytest

from bench import ingest, pipeline
from streams import admin
from streams.config import load

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_bench_runs_every_stage(services, tmp_path, monkeypatch):
    monkeypatch.setenv("RTCC_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    out = tmp_path / "bench.json"
    # RocksDB, as deployed, and two latency steps: two steps' workers once shared a data
    # directory, and the second refused the first one's tables (ConsistencyError)
    assert pipeline.main(["--events", "1000", "--rates", "100,200", "--rate-seconds", "1",
                          "--store", "rocksdb://", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    names = [row["name"] for row in report["throughput"]]
    assert names[0].startswith("A ") and names[1].startswith("P ") and names[2].startswith("B ")
    assert all(row["events"] == 1000 and row["events_per_s"] > 0 for row in report["throughput"])
    assert report["pipeline_outputs"]["rtcc_correlation_events_total"] == \
        report["pipeline_outputs"]["rtcc_events_normalised_total"]
    assert [(lat["guarantee"], lat["rate"]) for lat in report["latency"]] == \
        [("at_least_once", 100), ("at_least_once", 200)]
    for lat in report["latency"]:
        # 1 s measured, then the feed goes on so that the measured events meet a live one
        rate = lat["rate"]
        assert lat["events"] == int(rate * (1 + lat["feed_end_s"])) > rate
        assert lat["updates_measured"] > 0 and lat["p99_ms"] > 0 and lat["p99_all_ms"] > 0
        # outputs, normalised events and the tables' changelogs were all counted
        assert lat["records_per_event"] > lat["changelog_per_event"] > 0
    assert report["pipeline_outputs"]["records_per_event"] > 1
    # the same records, per topic: the SA updates and the normalised events among them
    topics = report["pipeline_outputs"]["records_per_event_by_topic"]
    assert sum(topics.values()) == pytest.approx(report["pipeline_outputs"]["records_per_event"])
    assert {"rtcc.sa.updates", "rtcc.events.normalised"} <= set(topics)
    assert not {"bench.passthrough", "bench.plain.out"} & set(topics)  # the baselines' own
    # each stateful stage's checkpoints, by the way RTCC_CHECKPOINT_BESIDE wrote them
    ways = report["pipeline_outputs"]["checkpoints"]
    assert {"correlate", "kpi"} <= set(ways)
    assert sum(ways["correlate"].values()) >= 1
    markdown = out.with_suffix(".md").read_text()
    assert markdown.startswith("## pipeline bench")
    assert "- records written per event by topic: " in markdown


@pytest.mark.timeout(300)
def test_live_cpu_measures_an_idle_and_a_fed_worker(services, monkeypatch, capsys):
    from bench import live_cpu

    monkeypatch.setenv("RTCC_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    assert live_cpu.main(["--rates", "0,50", "--seconds", "1", "--warmup-s", "1"]) == 0
    rows = [line.strip("|").split("|") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and line[2].isdigit()]
    assert [int(r[0].replace(",", "")) for r in rows] == [0, 50]
    idle, fed = (float(r[1]) for r in rows)
    assert idle > 0 and fed > 0  # the worker was alive and measured in both
    assert rows[0][2].strip() == "n/a" and float(rows[1][2]) > 0


@pytest.mark.timeout(300)
def test_ingest_bench_measures_the_worker_and_its_code_on_whole_fetches(services, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("RTCC_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    out = tmp_path / "ingest.json"
    assert ingest.main(["--repeat", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {row["name"][0]: row for row in report["stages"]}
    assert set(rows) == {"A", "B", "C"}
    events = report["input"]["events"]
    assert all(row["events"] == events and row["events_per_s"] > 0 for row in rows.values())
    # row C ran ingest's code: it cost more than forwarding the bytes
    assert rows["C"]["cpu_s_per_1k"] > rows["A"]["cpu_s_per_1k"]
    assert report["outputs"]["normalised"] + report["outputs"]["deadletter"] == events
    # every topic of the run, row C's own included, is gone
    prefix = report["deployment"]["topic_prefix"]
    assert not [t for t in admin.list_topics(load()) if t.startswith(prefix)]
