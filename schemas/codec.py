"""The wire format of every rtcc topic: UTF-8 JSON, encoded and decoded with orjson.

Registered with Faust as the codec "orjson" so that Records and topics can name it. orjson
is several times faster than the standard library on the hot path and rejects what JSON
does not allow (NaN, invalid UTF-8) instead of passing it on.
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

CODEC_NAME = "orjson"


def dumps(obj: Any) -> bytes:
    """What the codec writes for `obj`."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _default(obj: Any) -> Any:
    """Nested Faust Records (e.g. the PII part of an event) serialise as their fields."""
    as_json = getattr(obj, "__json__", None)
    if as_json is not None:
        return as_json()
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


class OrjsonCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


def register() -> None:
    """Make the codec known to Faust (idempotent)."""
    codecs.register(CODEC_NAME, OrjsonCodec())


register()
