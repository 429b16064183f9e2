from streams.tables import PartitionView


def test_each_partition_sees_only_its_keys():
    table: dict = {}
    p0, p1 = PartitionView(table, 0), PartitionView(table, 1)
    p0["cad:MPD:1"] = {"v": 1}
    p1["cad:MPD:1"] = {"v": 2}
    assert table == {"0/cad:MPD:1": {"v": 1}, "1/cad:MPD:1": {"v": 2}}
    assert p0["cad:MPD:1"] == {"v": 1} and list(p1) == ["cad:MPD:1"] and len(p0) == 1
    assert p0.get("missing") is None and p0.get("missing", 7) == 7
    assert "missing" not in p0 and "cad:MPD:1" in p0
    del p0["cad:MPD:1"]
    assert list(p0) == [] and p1.get("cad:MPD:1") == {"v": 2}


def test_state_written_by_fausts_json_codec_reads_back_the_same():
    """An upgrade keeps its tables: the state tables' values moved from Faust's json codec
    to orjson, and what the old codec wrote to RocksDB and the changelog must decode as it
    was written."""
    from faust.serializers import codecs

    from streams.app import state_table
    from tests.samples import MKE_CALL

    table = state_table("test-upgrade", 1)
    incident = {"subject_id": "cad:MPD:1", "calls": ["a", "b"], "lat": 43.05, "n": 3,
                "closed": None, "open": True, "call": dict(MKE_CALL), "note": "Ünïcode ✓"}
    old_bytes = codecs.dumps("json", incident)
    assert codecs.loads(table.value_serializer, old_bytes) == incident
    assert codecs.loads("json", codecs.dumps(table.value_serializer, incident)) == incident
