"""A fix for kafka-python 3.0's socket reader, applied by importing this module.

kafka-python 3.0 (up to 3.0.12 at least) reads a socket until it would block; when the bytes
it read end with the peer's close, it reports the close and throws those bytes away. A broker
that refuses a SASL login answers "authentication failed" and closes at once, so the client
usually lost that answer and said only "socket disconnected" (tests/integration/test_sasl.py
failed on it in CI about one run in four). With this fix the bytes reach the protocol first;
the closed socket is reported on the next read, which finds it closed again.

Imported by every module that builds a kafka-python client (admin, tail, the gateway's
registry). pyproject.toml asks for kafka-python 3; tests/unit/streams/test_kafka_python_fix.py
fails if its transport moves.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from kafka.net import transport

_MARK = "_rtcc_keeps_bytes_before_close"

Receive = Callable[[Any], tuple[bytes, Exception | None]]


def keep_bytes_before_close(receive: Receive) -> Receive:
    """Wrap a transport's `_sock_recv`: bytes and an error together become bytes now and the
    error on the next call (a closed socket reads as closed every time)."""

    @functools.wraps(receive)
    def receive_then_report(transport: Any) -> tuple[bytes, Exception | None]:
        data, error = receive(transport)
        return (data, None) if data and error is not None else (data, error)

    setattr(receive_then_report, _MARK, True)
    return receive_then_report


def apply() -> None:
    """Patch kafka-python's transports, once."""
    for cls in (transport.KafkaTCPTransport, transport.KafkaSSLTransport):
        receive = cls.__dict__.get("_sock_recv")
        if receive is not None and not getattr(receive, _MARK, False):
            cls._sock_recv = keep_bytes_before_close(receive)


apply()
