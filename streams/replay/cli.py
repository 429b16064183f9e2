"""`rtcc replay PROFILE [options]`: the command line of the replay.

Imports nothing heavy at module level: `rtcc` builds every sub-command's parser at start-up,
and a `rtcc config` must not pay for Faust, YAML and aiokafka.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

EPILOG = """\
pacing (one of; default --speed 60):
  --speed N   N x real time: the gaps between event times are divided by N
  --rate N    N events per second, whatever the event times
  --max       as fast as the broker takes them (benchmarks, backfills)

--time-shift moves every time of every message by one offset:
  now    the first event is stamped now; with --speed 1 the replay looks live. With a
         faster pacing, later events carry future times and the pipeline rejects those more
         than RTCC_MAX_CLOCK_SKEW_S ahead (time_out_of_range).
  end    the last event is stamped now: the whole data set lies in the recent past
         (use with --max or a high --speed to pre-load "the last N days").
  ISO    e.g. 2024-06-01T08:00:00-05:00: the first event is stamped then.

--live-clock moves each message's times as it is sent, so that its event time is that
second: a live feed at any pacing (with --rate, what an operations room sees; the
pipeline then holds each event RTCC_LATENESS_S for event-time order).

--repeat K sends the selected data K times; copy k>0 has every id suffixed "#k" and every
time moved k x (the data's span + one mean gap), so copies are distinct incidents that
follow one another. With --no-shift-ids the copies are identical messages (ids and times),
for de-duplication tests.

examples:
  rtcc replay milwaukee_pd_cfs --speed 600
  rtcc replay sf_fire_cfs --max --limit 2000 --topic replaytest.cad
  rtcc replay ./my_city.yaml --dry-run --limit 5
"""


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `rtcc replay`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "profile", nargs="?", metavar="PROFILE",
        help="profile name from streams/replay/profiles/ (see --list) or path to a YAML file")
    parser.add_argument("--list", action="store_true", help="list the shipped profiles and exit")
    parser.add_argument("--bootstrap",
                        help="Kafka bootstrap servers (default: RTCC_KAFKA_BOOTSTRAP)")
    parser.add_argument("--topic", help="target topic (default: the profile's source topic, "
                        "with RTCC_TOPIC_PREFIX)")
    parser.add_argument("--file", type=Path, help="data file (default: the profile's `file` "
                        "under RTCC_SHARED_DATA_DIR)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive(float), metavar="N",
                      help="N x real time (default 60)")
    pace.add_argument("--rate", type=_positive(float), metavar="N", help="N events per second")
    pace.add_argument("--max", action="store_true", help="as fast as possible")
    parser.add_argument("--limit", type=_non_negative, metavar="N",
                        help="replay only the first N rows (after ordering by time)")
    parser.add_argument("--offset-rows", type=_non_negative, default=0, metavar="N",
                        help="skip the first N rows (after ordering by time)")
    parser.add_argument("--time-shift", metavar="now|end|ISO",
                        help="shift every time so the first event is now (see below)")
    parser.add_argument("--live-clock", action="store_true",
                        help="stamp each event with the time it is sent (see below)")
    parser.add_argument("--repeat", type=_positive(int), default=1, metavar="K",
                        help="send the data K times, ids suffixed #k, times shifted")
    parser.add_argument("--no-shift-ids", dest="shift_ids", action="store_false",
                        help="with --repeat: identical copies (same ids and times)")
    parser.add_argument("--compression", choices=("none", "gzip"), default="none",
                        help="producer compression (default none)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the messages as JSON lines instead of producing them")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    """Run `rtcc replay`; 0 on success, 2 on a usage or profile error, 1 on a Kafka error."""
    from streams import config
    from streams.replay import player
    from streams.replay import profile as profiles
    from streams.replay.plan import Pacing, parse_time_shift

    if args.list:
        for name in profiles.available_profiles():
            try:
                prof = profiles.load(name)
                print(f"{name:28} {prof.source.name:10} {prof.description.split('.')[0]}")
            except profiles.ProfileError as exc:
                print(f"{name:28} INVALID: {exc}")
        return 0
    if not args.profile:
        print("replay: PROFILE is required (see --list)", file=sys.stderr)
        return 2
    settings = config.load()
    try:
        prof = profiles.load(args.profile)
        time_shift = parse_time_shift(args.time_shift)
    except (profiles.ProfileError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if args.max:
        pacing = Pacing("max", 0.0)
    elif args.rate:
        pacing = Pacing("rate", args.rate)
    else:
        pacing = Pacing("speed", args.speed or 60.0)
    options = player.ReplayOptions(
        pacing=pacing, limit=args.limit, offset_rows=args.offset_rows, time_shift=time_shift,
        repeat=args.repeat, shift_ids=args.shift_ids, compression=args.compression,
        progress=not args.quiet, live_clock=args.live_clock,
    )
    path = args.file or prof.data_path(settings.shared_data_dir)
    topic = args.topic or settings.topic(prof.source.topic.name)
    try:
        plan = player.prepare(prof, path, options)
    except (profiles.ProfileError, OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        player.dry_run(plan, sys.stdout)
        print(f"replay: dry run, {len(plan):,} messages for {topic}; "
              f"{plan.rows_with_unparseable:,} rows with unparseable fields "
              f"{dict(plan.unparseable)}", file=sys.stderr)
        return 0
    if options.time_shift == "now" and not (pacing.mode == "speed" and pacing.value <= 1):
        print("replay: note: --time-shift now with a pacing faster than real time stamps "
              "later events in the future; the pipeline rejects those beyond "
              "RTCC_MAX_CLOCK_SKEW_S", file=sys.stderr)
    import asyncio

    bootstrap = args.bootstrap or settings.kafka_bootstrap
    try:
        summary = asyncio.run(player.produce_to_kafka(plan, topic, bootstrap, options))
    except KeyboardInterrupt:
        print("replay: interrupted", file=sys.stderr)
        return 130
    except player.ReplayFailed as exc:
        print(exc.summary.render(), file=sys.stderr)
        print(f"replay: failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # broker unreachable at start-up and the like
        print(f"replay: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary.render())
    return 0
