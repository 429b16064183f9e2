"""A connection's memory of the subjects it was sent: what lets a subject's later updates
follow it out of the partner's area, bounded by the live picture."""

from __future__ import annotations

import asyncio

from streams.gateway.server import Delivery

IN_AREA = {"district": "5", "latitude": 43.05, "longitude": -87.95}
ELSEWHERE = {"district": "7", "latitude": 43.15, "longitude": -87.90}


def _entry(n: int, subject: str, kind: str, place: dict) -> tuple:
    return (f"{1_700_000_000_000 + n}-0", {"subject_id": subject, "subject_kind": "incident",
                                           "kind": kind}, place, b"")


def _deliver(entries: list[tuple]) -> tuple[list[str], Delivery]:
    sent: list[str] = []

    async def send(entry: tuple) -> None:
        sent.append(f"{entry[1]['subject_id']} {entry[1]['kind']}")

    delivery = Delivery(hub=None, partner={"audience": "community", "districts": ["5"]},
                        protocol="sse", send=send)

    async def run() -> None:
        for entry in entries:
            await delivery.offer(entry)

    asyncio.run(run())
    return sent, delivery


def test_a_subject_sent_once_is_followed_out_of_the_area_until_it_ends():
    sent, delivery = _deliver([
        _entry(1, "a", "opened", IN_AREA),
        _entry(2, "b", "opened", ELSEWHERE),      # never in scope: not sent
        _entry(3, "a", "updated", ELSEWHERE),     # moved away: still followed
        _entry(4, "a", "closed", ELSEWHERE),      # and its end is sent
        _entry(5, "a", "updated", ELSEWHERE),     # after its end: outside scope again
    ])
    assert sent == ["a opened", "a updated", "a closed"]
    assert delivery.delivered == set()


def test_the_memory_holds_the_live_subjects_not_the_history():
    entries = []
    for i in range(1000):
        entries.append(_entry(2 * i, f"s{i}", "opened", IN_AREA))
        if i % 10:  # nine in ten end
            entries.append(_entry(2 * i + 1, f"s{i}", "closed", IN_AREA))
    sent, delivery = _deliver(entries)
    assert len(sent) == 1900
    assert delivery.delivered == {f"s{i}" for i in range(0, 1000, 10)}
