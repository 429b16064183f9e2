"""The player against a fake producer: batched sends, pacing waits, summary, CLI paths."""

from __future__ import annotations

import argparse
import asyncio
import io
from typing import Any

import orjson
import pytest

from streams.replay import cli
from streams.replay.plan import Pacing, build
from streams.replay.player import Progress, ReplayFailed, ReplayOptions, produce


class FakeProducer:
    """Records sends; futures resolve only when the test's loop gets to run them."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.outstanding_max = 0
        self.outstanding = 0
        self.started = self.stopped = False
        self.fail_at = fail_at

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        index = len(self.sent)
        self.sent.append((topic, key, value))
        self.outstanding += 1
        self.outstanding_max = max(self.outstanding_max, self.outstanding)

        def done() -> None:
            self.outstanding -= 1
            if self.fail_at is not None and index == self.fail_at:
                fut.set_exception(RuntimeError("broker says no"))
            else:
                fut.set_result(index)

        loop.call_soon(done)
        return fut


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _run(plan, options, producer=None, clock=None):
    producer = producer or FakeProducer()
    clock = clock or FakeClock()
    summary = asyncio.run(produce(plan, "t", producer, options, sleep=clock.sleep, clock=clock,
                                  progress_stream=io.StringIO()))
    return summary, producer, clock


def test_max_sends_everything_in_chunks_without_sleeping(real) -> None:
    prof, rows, mapped = real("sf_fire_cfs")
    plan = build(prof, mapped, limit=300)
    summary, producer, clock = _run(plan, ReplayOptions(pacing=Pacing("max"), chunk=100,
                                                        progress=False))
    assert clock.sleeps == []
    assert len(producer.sent) == len(plan) == summary.events_sent == summary.events_planned
    assert producer.outstanding_max == 100  # futures awaited by chunk, not one by one
    assert producer.started and producer.stopped
    topic, key, value = producer.sent[0]
    assert key == b"SFFD:16146559" and orjson.loads(value)["event_type"] == "created"
    assert summary.rows_read == 7_704 and summary.rows_replayed == 300
    assert summary.first_event_time == "2016-12-31T00:01:04-08:00"


def test_speed_sleeps_the_scaled_gaps(real) -> None:
    prof, rows, mapped = real("milwaukee_pd_cfs")
    plan = build(prof, mapped, limit=4)
    gaps = [b.at - a.at for a, b in zip(plan.base, plan.base[1:])]
    summary, producer, clock = _run(plan, ReplayOptions(pacing=Pacing("speed", 0.5),
                                                        progress=False))
    assert sum(clock.sleeps) == pytest.approx(sum(gaps) / 0.5)
    assert summary.elapsed_s == pytest.approx(sum(gaps) / 0.5)
    assert summary.events_sent == 4


def test_rate_sleeps_one_token_per_event(real) -> None:
    prof, rows, mapped = real("nyc_311")
    plan = build(prof, mapped, limit=11)
    summary, producer, clock = _run(plan, ReplayOptions(pacing=Pacing("rate", 10),
                                                        progress=False))
    assert sum(clock.sleeps) == pytest.approx(1.0)  # 11 events at 10/s: last one at t=1 s
    assert summary.events_per_s == pytest.approx(11.0)


def test_summary_counts_unparseable_fields(real) -> None:
    prof, rows, mapped = real("toronto_persons_in_crisis")
    plan = build(prof, mapped[:400])
    summary, producer, _ = _run(plan, ReplayOptions(pacing=Pacing("max"), progress=False))
    na = sum(1 for r in rows[:400] if r["event_hour"] == "NA")
    assert na > 0
    assert summary.rows_with_unparseable == na
    assert summary.unparseable_fields == {"event_time": na, "requested_time": na}
    assert summary.events_sent == 800
    text = summary.render()
    assert "rows with unparseable fields" in text and "event_time" in text


def test_a_failed_send_stops_the_replay_with_a_summary(real) -> None:
    prof, rows, mapped = real("nyc_311")
    plan = build(prof, mapped, limit=50)
    with pytest.raises(ReplayFailed, match="broker says no") as info:
        _run(plan, ReplayOptions(pacing=Pacing("max"), chunk=10, progress=False),
             producer=FakeProducer(fail_at=25))
    assert info.value.summary.events_sent == 20


def test_progress_prints_a_line_every_interval_when_not_a_tty() -> None:
    stream = io.StringIO()
    clock = FakeClock()
    progress = Progress(100, stream, enabled=True, interval=10.0, clock=clock)
    progress.update(5)
    clock.now += 10.5
    progress.update(50, "2018-05-01T00:00:00-05:00")
    progress.close(100)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].startswith("replay 50/100 (50%)") and "at 2018-05-01" in lines[0]
    assert lines[1].startswith("replay 100/100 (100%)")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_defaults_and_exclusive_pacing() -> None:
    args = _args("sf_fire_cfs")
    assert args.speed is None and not args.max and args.repeat == 1 and args.shift_ids
    with pytest.raises(SystemExit):
        _args("sf_fire_cfs", "--max", "--rate", "5")
    with pytest.raises(SystemExit):
        _args("sf_fire_cfs", "--speed", "0")


def test_cli_dry_run_prints_messages(capsys, data_dir, monkeypatch) -> None:
    monkeypatch.setenv("RTCC_SHARED_DATA_DIR", str(data_dir))
    assert cli.run(_args("nyc_311", "--dry-run", "--limit", "2")) == 0
    out = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["key"] for m in out] == ["NYC311:40611598", "NYC311:40605866"]
    assert out[0]["value"]["category"] == "Derelict Vehicle"


def test_cli_errors_exit_2(capsys, tmp_path) -> None:
    assert cli.run(_args("chicago")) == 2
    assert "no profile 'chicago'" in capsys.readouterr().err
    assert cli.run(_args("sf_fire_cfs", "--file", str(tmp_path / "none.csv"))) == 2
    assert "not found" in capsys.readouterr().err
    assert cli.run(_args("sf_fire_cfs", "--time-shift", "later")) == 2
    assert cli.run(_args()) == 2


def test_cli_list(capsys) -> None:
    assert cli.run(_args("--list")) == 0
    out = capsys.readouterr().out
    assert "sf_fire_cfs" in out and "cad" in out and "INVALID" not in out


def test_live_clock_stamps_each_event_with_the_second_it_is_sent(real) -> None:
    """A live feed at any pacing: each message's event time is the second it is sent in,
    and its other times keep their distance to it; without the option nothing moves."""
    from datetime import datetime

    prof, rows, mapped = real("milwaukee_pd_cfs")
    plan = build(prof, mapped, limit=5)
    walls = iter([1_800_000_000.25, 1_800_000_000.9, 1_800_000_003.5, 1_800_000_007.0,
                  1_800_000_007.99])
    producer = FakeProducer()
    clock = FakeClock()
    asyncio.run(produce(plan, "t", producer, ReplayOptions(pacing=Pacing("max"),
                                                           progress=False, live_clock=True),
                        sleep=clock.sleep, clock=clock, progress_stream=io.StringIO(),
                        wall=lambda: next(walls)))
    sent = [orjson.loads(value) for _, _, value in producer.sent]

    def epoch(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    assert [epoch(m["event_time"]) for m in sent] == [1_800_000_000, 1_800_000_000,
                                                      1_800_000_003, 1_800_000_007,
                                                      1_800_000_007]
    for message, event in zip(sent, plan):
        original = event.message
        assert message["event_id"] == original["event_id"]
        assert (epoch(message["received_time"]) - epoch(message["event_time"])
                == epoch(original["received_time"]) - epoch(original["event_time"]))

    _, plain, _ = _run(plan, ReplayOptions(pacing=Pacing("max"), progress=False))
    assert [orjson.loads(value)["event_time"] for _, _, value in plain.sent] == [
        event.message["event_time"] for event in plan]
