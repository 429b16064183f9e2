"""The output checker: what a deployment published, against a clean reference run.

Correlation is deterministic given the event-time order of its input (README, "Event time,
not arrival order"), so a deployment that went through crashes, restarts, rebalances or
outages must publish the same SA updates as a clean run of the same replay. The checker
compares them as tests/integration/test_correlation.py compares two replays: the set of
update ids, the sequence (subject, version, update id) per subject, and the final state per
subject. The verdict:

- **lost**: reference updates that never appeared on the topic;
- **duplicated (raw)**: messages beyond the first of each update id: what a consumer that
  de-duplicates by update id drops (the Redis sink and the gateway do so by offset);
- **duplicated after de-duplication**: copies a de-duplicating consumer would still show
  twice: a second, different update id for a (subject, version) it already has;
- **unexpected**: update ids the reference does not have;
- **wrong**: subjects whose final state (the state of their highest version) or version
  sequence differs from the reference.

A reference is either another deployment (a clean worker run of the same input: the
default, and what `bench/chaos.py` uses) or the pure offline pipeline (`streams/offline.py`)
over the same replay, which has no broker at all (`--offline PROFILE --limit N`: the same
rows, no time shift). The offline pipeline runs one engine for all areas where the worker
runs one per partition, so it is a reference for incidents and clusters; hotspots, learnt
per partition, are compared only against a worker run.

    python -m bench.checker --prefix chaos.ab12. --reference-prefix chaos.ref. [--audiences]
    python -m bench.checker --prefix it.ab12. --offline milwaukee_pd_cfs --limit 3000
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from agents.ingest.progress import is_mark
from streams.config import Settings, load
from streams.topics import AUDIENCES, audience_topic

UPDATES_TOPIC = "rtcc.sa.updates"


@dataclass
class Published:
    """The messages of one topic, in (partition, offset) order."""

    records: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)

    @property
    def docs(self) -> list[dict[str, Any]]:
        return [d for _, _, d in self.records]


async def _read_topic(bootstrap: str, topic: str) -> Published:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return Published()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        out = Published()
        while left:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    if r.value is not None:
                        doc = orjson.loads(r.value)
                        if not is_mark(doc):
                            out.records.append((tp.partition, r.offset, doc))
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
            # transaction markers take offsets too: done when the position passed the end
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        out.records.sort(key=lambda r: (r[0], r[1]))
        return out
    finally:
        await consumer.stop()


def read_topic(settings: Settings, name: str) -> Published:
    """Every SA update (or audience payload) now on `name` of this deployment."""
    return asyncio.run(_read_topic(settings.kafka_bootstrap, settings.topic(name)))


def read_updates(settings: Settings) -> list[dict[str, Any]]:
    return read_topic(settings, UPDATES_TOPIC).docs


def read_audiences(settings: Settings) -> dict[str, Published]:
    return {a: read_topic(settings, audience_topic(a).name) for a in AUDIENCES}


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    reference: int  # distinct update ids of the reference
    observed: int  # messages on the topic
    distinct: int  # distinct update ids among them
    lost: int
    duplicated_raw: int  # = what a de-duplicating consumer drops
    duplicated_after_dedupe: int
    unexpected: int
    wrong: int  # subjects
    examples: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated_after_dedupe or self.unexpected or self.wrong)

    @property
    def dropped_by_dedupe(self) -> int:
        return self.duplicated_raw

    def line(self) -> str:
        return (f"reference {self.reference}, observed {self.observed} ({self.distinct} "
                f"distinct): lost {self.lost}, duplicated {self.duplicated_raw} raw / "
                f"{self.duplicated_after_dedupe} after de-duplication, unexpected "
                f"{self.unexpected}, wrong {self.wrong} -> {'OK' if self.ok else 'FAIL'}")

    def asdict(self) -> dict[str, Any]:
        return dict(dataclasses.asdict(self), ok=self.ok, dropped_by_dedupe=self.dropped_by_dedupe)


def _dedupe(updates: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """First copy of each update id (what a de-duplicating consumer keeps)."""
    kept: dict[str, dict[str, Any]] = {}
    for u in updates:
        kept.setdefault(u["update_id"], u)
    return kept


def final_states(updates: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """{subject: state of its highest version}; a consumer that de-duplicates keeps these."""
    best: dict[str, tuple[int, Any]] = {}
    for u in updates:
        v = u.get("version", 0)
        if u["subject_id"] not in best or v >= best[u["subject_id"]][0]:
            best[u["subject_id"]] = (v, u.get("state"))
    return {s: st for s, (_, st) in best.items()}


def _describe(update: dict[str, Any]) -> str:
    """An update as a person debugging a verdict wants to see it."""
    return (f"{update['subject_id']} v{update.get('version', 0)} {update.get('kind')} "
            f"({update['update_id'][:8]})")


def compare(reference: list[dict[str, Any]], observed: list[dict[str, Any]],
            subject_kinds: set[str] | None = None, examples: int = 5) -> Verdict:
    """Verdict of `observed` (as read, copies included) against a clean `reference`."""
    if subject_kinds is not None:
        reference = [u for u in reference if u["subject_kind"] in subject_kinds]
        observed = [u for u in observed if u["subject_kind"] in subject_kinds]
    ref, seen = _dedupe(reference), _dedupe(observed)
    copies = Counter(u["update_id"] for u in observed)
    lost = sorted(set(ref) - set(seen))
    unexpected = sorted(set(seen) - set(ref))
    ids_per_version: dict[tuple[str, int], set[str]] = defaultdict(set)
    for uid, u in seen.items():
        ids_per_version[(u["subject_id"], u.get("version", 0))].add(uid)
    conflicting = {k: v for k, v in ids_per_version.items() if len(v) > 1}

    def sequence(kept: dict[str, dict[str, Any]]) -> dict[str, list[tuple[int, str]]]:
        seq: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for uid, u in kept.items():
            seq[u["subject_id"]].append((u.get("version", 0), uid))
        return {s: sorted(v) for s, v in seq.items()}

    ref_final, seen_final = final_states(ref.values()), final_states(seen.values())
    ref_seq, seen_seq = sequence(ref), sequence(seen)
    wrong = sorted(s for s in set(ref_final) | set(seen_final)
                   if ref_final.get(s, "<none>") != seen_final.get(s, "<none>")
                   or ref_seq.get(s) != seen_seq.get(s))
    return Verdict(
        reference=len(ref), observed=len(observed), distinct=len(seen), lost=len(lost),
        duplicated_raw=sum(n - 1 for n in copies.values()),
        duplicated_after_dedupe=sum(len(v) - 1 for v in conflicting.values()),
        unexpected=len(unexpected), wrong=len(wrong),
        examples={"lost": [_describe(ref[u]) for u in lost[:examples]],
                  "unexpected": [_describe(seen[u]) for u in unexpected[:examples]],
                  "wrong": wrong[:examples],
                  "duplicated": [u for u, n in copies.most_common(examples) if n > 1]})


def compare_deployments(reference: Settings, observed: Settings,
                        audiences: bool = False) -> dict[str, Verdict]:
    """{"updates": verdict, and with `audiences` "audience.<name>": verdict per audience}."""
    out = {"updates": compare(read_updates(reference), read_updates(observed))}
    if audiences:
        for a in AUDIENCES:
            out[f"audience.{a}"] = compare(read_topic(reference, audience_topic(a).name).docs,
                                           read_topic(observed, audience_topic(a).name).docs)
    return out


def offline_reference(settings: Settings, profile: str, limit: int | None) -> list[dict]:
    """The SA updates of the pure offline pipeline over the same replay (no time shift)."""
    from streams.offline import correlate, normalise_profile

    events, _dead = normalise_profile(profile, limit=limit, settings=settings)
    return correlate(events).updates


# --------------------------------------------------------------------------------------------
# Redis against the audience topics
# --------------------------------------------------------------------------------------------


@dataclass
class RedisVerdict:
    audience: str
    topic_entries: int  # stream entries the topic implies (one per non-count payload)
    redis_entries: int
    missing: int  # update ids of the topic not in the Redis stream
    extra: int  # entries in Redis beyond the topic's (applied twice)
    hash_mismatches: int  # subjects whose Redis hash value differs from the topic's last

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.hash_mismatches)


def compare_redis(settings: Settings, audiences: Iterable[str] = AUDIENCES,
                  published: dict[str, Published] | None = None) -> list[RedisVerdict]:
    """Each audience's Redis stream and subject hashes against what its topic says they
    must hold (streams/serving/layout.py `plan`, applied once per offset in order)."""
    import redis

    from streams.serving.layout import Keys, plan

    client = redis.Redis.from_url(settings.redis_url)
    out = []
    try:
        for a in audiences:
            topic = (published or {}).get(a) or read_topic(settings, audience_topic(a).name)
            keys = Keys(settings.redis_namespace, a)
            expected_stream: list[str] = []
            expected_hash: dict[tuple[str, str], str] = {}
            for _, offset, payload in topic.records:
                op = plan(offset, payload)
                if op.action == "count":
                    continue
                expected_stream.append(payload["update_id"])
                if op.action == "upsert":
                    expected_hash[(op.kind, op.member)] = payload["update_id"]
                else:
                    expected_hash.pop((op.kind, op.member), None)
            entries = client.xrange(keys.stream)
            in_redis = [orjson.loads(fields[b"u"])["update_id"] for _, fields in entries]
            stored: dict[tuple[str, str], str] = {}
            for kind in ("incident", "hotspot", "cluster"):
                for member, raw in client.hgetall(keys.subjects(kind)).items():
                    stored[(kind, member.decode())] = orjson.loads(raw)["update_id"]
            want, got = Counter(expected_stream), Counter(in_redis)
            trimmed = len(expected_stream) > settings.redis_stream_maxlen
            missing = 0 if trimmed else sum((want - got).values())
            out.append(RedisVerdict(
                a, len(expected_stream), len(in_redis), missing, sum((got - want).values()),
                sum(1 for k in set(expected_hash) | set(stored)
                    if expected_hash.get(k) != stored.get(k))))
    finally:
        client.close()
    return out


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.checker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", required=True, help="topic prefix of the checked deployment")
    parser.add_argument("--bootstrap", help="its Kafka (default RTCC_KAFKA_BOOTSTRAP)")
    ref = parser.add_mutually_exclusive_group(required=True)
    ref.add_argument("--reference-prefix", help="topic prefix of a clean run of the same input")
    ref.add_argument("--offline", metavar="PROFILE",
                     help="reference: the offline pipeline over this replay profile")
    parser.add_argument("--reference-bootstrap", help="the reference's Kafka (default: same)")
    parser.add_argument("--limit", type=int, help="rows of the replay (with --offline)")
    parser.add_argument("--audiences", action="store_true",
                        help="also compare the audience topics (with --reference-prefix)")
    parser.add_argument("--redis", action="store_true",
                        help="also compare Redis (RTCC_REDIS_URL) with the audience topics")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    base = load()
    observed = dataclasses.replace(base, topic_prefix=args.prefix,
                                   kafka_bootstrap=args.bootstrap or base.kafka_bootstrap)
    if args.offline:
        verdicts = {"updates": compare(offline_reference(base, args.offline, args.limit),
                                       read_updates(observed),
                                       subject_kinds={"incident", "cluster"})}
    else:
        reference = dataclasses.replace(
            base, topic_prefix=args.reference_prefix,
            kafka_bootstrap=args.reference_bootstrap or observed.kafka_bootstrap)
        verdicts = compare_deployments(reference, observed, args.audiences)
    redis_verdicts = compare_redis(observed) if args.redis else []
    ok = all(v.ok for v in verdicts.values()) and all(r.ok for r in redis_verdicts)
    if args.json:
        print(orjson.dumps({"ok": ok, **{k: v.asdict() for k, v in verdicts.items()},
                            "redis": [dataclasses.asdict(r) for r in redis_verdicts]},
                           option=orjson.OPT_INDENT_2).decode())
    else:
        for name, v in verdicts.items():
            print(f"{name:22} {v.line()}")
            for what, ids in v.examples.items():
                if ids:
                    print(f"{'':22}   e.g. {what}: {', '.join(map(str, ids))}")
        for r in redis_verdicts:
            print(f"redis.{r.audience:16} topic {r.topic_entries} / redis {r.redis_entries}: "
                  f"missing {r.missing}, extra {r.extra}, hash mismatches "
                  f"{r.hash_mismatches} -> {'OK' if r.ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
