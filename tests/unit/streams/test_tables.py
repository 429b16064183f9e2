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
