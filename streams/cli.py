"""The `rtcc` command: worker, topics, replay, tail, config and the live demo."""

from __future__ import annotations

import argparse
import sys

from streams.config import Settings, load
from streams.topics import ALL_TOPICS, SOURCE_TOPICS

TOPIC_ALIASES = {
    "normalised": "rtcc.events.normalised",
    "deadletter": "rtcc.deadletter",
    "sa": "rtcc.sa.updates",
    **{source: spec.name for source, spec in SOURCE_TOPICS.items()},
}


def resolve_topic(settings: Settings, name: str) -> str:
    """Short aliases and spec names get the deployment prefix; other names pass as given."""
    name = TOPIC_ALIASES.get(name, name)
    if any(spec.name == name for spec in ALL_TOPICS):
        return settings.topic(name)
    return name


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run

    run()
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from streams import admin

    settings = load()
    if args.action == "create":
        for outcome in admin.create_topics(settings):
            print(f"{outcome.action:15} {outcome.name:32} {outcome.detail}")
        return 0
    for name, partitions in sorted(admin.list_topics(settings).items()):
        print(f"{name:40} {partitions} partitions")
    return 0


def _cmd_tail(args: argparse.Namespace) -> int:
    from streams.tail import Condition, tail

    settings = load()
    try:
        conditions = [Condition.parse(w) for w in args.where]
    except ValueError as exc:
        print(f"tail: {exc}", file=sys.stderr)
        return 2
    try:
        tail(settings, resolve_topic(settings, args.topic), args.from_beginning, conditions,
             args.fields.split(",") if args.fields else None, args.json, args.limit,
             args.idle_timeout, show_marks=args.marks)
    except KeyboardInterrupt:
        pass
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    for env, doc, value in Settings.documented():
        print(f"{env}={value}\n    {doc}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from streams.replay.cli import run

    return run(args)


def _cmd_partners(args: argparse.Namespace) -> int:
    from streams.gateway.partners_admin import run

    return run(args)


def _cmd_gateway(args: argparse.Namespace) -> int:
    from streams.gateway.server import run

    return run()


def _cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtcc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("worker", help="run a stream-processing worker").set_defaults(func=_cmd_worker)

    topics = sub.add_parser("topics", help="create or list the app's Kafka topics")
    topics.add_argument("action", choices=["create", "list"])
    topics.set_defaults(func=_cmd_topics)

    replay = sub.add_parser("replay", help="stream a data export into a source topic")
    from streams.replay.cli import add_arguments

    add_arguments(replay)
    replay.set_defaults(func=_cmd_replay)

    tail = sub.add_parser("tail", help="print a live topic readably")
    tail.add_argument("topic", help="topic name or alias: " + ", ".join(TOPIC_ALIASES))
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE",
                      help="show only matching messages (repeatable; FIELD!=VALUE negates; "
                      "dotted paths reach nested fields)")
    tail.add_argument("--fields", help="comma-separated fields to show")
    tail.add_argument("--json", action="store_true", help="print each value as JSON")
    tail.add_argument("--limit", type=int, help="stop after N messages")
    tail.add_argument("--idle-timeout", type=float, help="stop after S seconds without messages")
    tail.add_argument("--marks", action="store_true",
                      help="also show ingest progress marks (normalised topic)")
    tail.set_defaults(func=_cmd_tail)

    demo = sub.add_parser("demo", help="worker + replays of the sample data + live view")
    demo.add_argument("--speed", type=float, default=600.0,
                      help="replay speed, x real time (default 600: an hour in 6 s)")
    demo.add_argument("--limit", type=int, default=None, help="rows per data set")
    demo.set_defaults(func=_cmd_demo)

    partners = sub.add_parser("partners", help="manage the partner registry")
    from streams.gateway.partners_admin import add_arguments as add_partner_arguments

    add_partner_arguments(partners)
    partners.set_defaults(func=_cmd_partners)

    sub.add_parser("gateway", help="run the partner HTTP gateway (snapshot, SSE, WebSocket)"
                   ).set_defaults(func=_cmd_gateway)

    sub.add_parser("config", help="print the effective settings").set_defaults(func=_cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
