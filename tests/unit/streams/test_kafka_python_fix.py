"""The broker's last reply before it closes reaches kafka-python's protocol (streams.kafka_python_fix).

A real kafka-python transport over a real socket pair: the peer writes a reply and closes
before the transport reads, which is what a broker refusing a SASL login does.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from kafka.errors import KafkaConnectionError
from kafka.net import transport as transport_module  # kafka-python 3 (pyproject.toml)

import streams.kafka_python_fix as fix


class _Net:
    """What a transport asks of kafka-python's IO loop, run on asyncio instead."""

    async def wait_read(self, sock: socket.socket) -> None:
        await asyncio.sleep(0)

    def unregister_event(self, sock: socket.socket, events: int) -> None:
        pass

    def cancel(self, task: Any) -> None:
        pass


class _Protocol:
    _sensors = None

    def __init__(self) -> None:
        self.received = b""
        self.lost: list[BaseException | None] = []

    def data_received(self, data: bytes) -> None:
        assert not self.lost, "bytes after the connection was reported lost"
        self.received += data

    def connection_lost(self, error: BaseException | None) -> None:
        self.lost.append(error)


def _read_until_closed(reply: bytes) -> _Protocol:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.sendall(reply)
    peer.close()  # the reply and the close are both waiting before the first read
    transport = transport_module.KafkaTCPTransport(_Net(), ours)
    protocol = _Protocol()
    transport.set_protocol(protocol)
    transport._read = True
    asyncio.run(asyncio.wait_for(transport._read_from_sock(), timeout=5))
    return protocol


def test_the_reply_sent_just_before_the_close_is_delivered_then_the_close() -> None:
    reply = b"\x00\x00\x00\x0aauth-failed" * 1000  # several 4 KiB reads, then the close
    protocol = _read_until_closed(reply)
    assert protocol.received == reply
    assert len(protocol.lost) == 1 and isinstance(protocol.lost[0], KafkaConnectionError)


def test_a_close_without_a_reply_is_reported_at_once() -> None:
    protocol = _read_until_closed(b"")
    assert protocol.received == b""
    assert len(protocol.lost) == 1 and isinstance(protocol.lost[0], KafkaConnectionError)


def test_applying_twice_wraps_once() -> None:
    before = transport_module.KafkaTCPTransport._sock_recv
    fix.apply()
    assert transport_module.KafkaTCPTransport._sock_recv is before
    for cls in (transport_module.KafkaTCPTransport, transport_module.KafkaSSLTransport):
        assert getattr(cls.__dict__["_sock_recv"], "_rtcc_keeps_bytes_before_close", False)
