import orjson
import pytest

from agents.ingest.decode import decode_object
from agents.ingest.rejection import Rejected


@pytest.mark.parametrize(
    "raw, reason",
    [
        (None, "malformed_json"),
        (b"", "malformed_json"),
        (b'{"event_id": "1"', "malformed_json"),
        (b"\xff\xfe{}", "not_utf8"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"NaN", "malformed_json"),
        (b'{"a": NaN}', "malformed_json"),
        (b"x" * 2000, "oversized"),
    ],
)
def test_refuses_with_specific_reason(raw, reason):
    with pytest.raises(Rejected) as err:
        decode_object(raw, max_bytes=1000)
    assert err.value.reason == reason


def test_accepts_object():
    assert decode_object(orjson.dumps({"a": 1}), max_bytes=1000) == {"a": 1}


def test_duplicated_keys_keep_the_last_value():
    # RFC 8259 leaves duplicates undefined; orjson keeps the last, as most parsers do.
    assert decode_object(b'{"a": 1, "a": 2}', max_bytes=1000) == {"a": 2}
