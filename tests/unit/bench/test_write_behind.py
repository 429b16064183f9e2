"""The write-behind view the batched agents give the engine (agents/correlate/write_behind.py):
it must read like the table it stands for, and write each key once per flush."""

from __future__ import annotations

from collections.abc import MutableMapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.correlate.write_behind import WriteBehind


class LoggingTable(dict):
    """A table that records every write and delete, as a changelog would."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.log: list[tuple[str, object]] = []

    def __setitem__(self, key: str, value: object) -> None:
        self.log.append((key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.log.append((key, None))
        super().__delitem__(key)


KEYS = st.sampled_from(["a", "b", "c", "d"])
OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, st.integers(0, 9)),
    st.tuples(st.just("del"), KEYS),
    st.tuples(st.just("pop"), KEYS),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("flush")),
), max_size=40)


def _apply(m: MutableMapping, op: tuple) -> object:
    if op[0] == "set":
        m[op[1]] = op[2]
        return None
    if op[0] == "del":
        try:
            del m[op[1]]
        except KeyError:
            return "KeyError"
        return None
    if op[0] == "pop":
        return m.pop(op[1], "absent")
    if op[0] == "get":
        return (m.get(op[1]), op[1] in m, sorted(m), len(m))
    if isinstance(m, WriteBehind):
        m.flush()
    return None


@pytest.mark.parametrize("mirror", [False, True])
@settings(max_examples=300, deadline=None)
@given(initial=st.dictionaries(KEYS, st.integers(0, 9)), ops=OPS)
def test_reads_like_the_table_and_flushes_to_it(mirror, initial, ops):
    model = dict(initial)
    table = LoggingTable(initial)
    view = WriteBehind(table, mirror=mirror)
    for op in ops:
        assert _apply(view, op) == _apply(model, op)
    view.flush()
    assert table == model


@pytest.mark.parametrize("mirror", [False, True])
def test_a_key_reaches_the_table_once_per_flush(mirror):
    table = LoggingTable({"old": 1})
    view = WriteBehind(table, mirror=mirror)
    for i in range(5):
        view["x"] = i
    view["tmp"] = 1
    del view["tmp"]  # written and deleted within the batch: never logged
    view.pop("old")
    assert table.log == []  # nothing before the flush
    assert view.flush() == 3
    assert sorted(table.log, key=str) == [("old", None), ("x", 4)]
    assert table == {"x": 4}


CHECKPOINT_OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, st.integers(0, 9)),
    st.tuples(st.just("del"), KEYS),
    st.tuples(st.just("pop"), KEYS),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("detach")),  # a checkpoint taken (agents/checkpoint.py)
    st.tuples(st.just("step")),    # one key of it written, the stage going on around it
), max_size=60)


@pytest.mark.parametrize("mirror", [False, True])
@settings(max_examples=300, deadline=None)
@given(initial=st.dictionaries(KEYS, st.integers(0, 9)), ops=CHECKPOINT_OPS)
def test_reads_like_the_table_while_a_checkpoint_is_written_in_steps(mirror, initial, ops):
    """A checkpoint's state is set aside and written a few keys at a time while the stage
    goes on writing: at every point the view reads like the table it stands for, and each
    checkpoint leaves the table as the view read when it was taken."""
    model = dict(initial)
    table = LoggingTable(initial)
    view = WriteBehind(table, mirror=mirror)
    taken: dict | None = None  # what the view read when the checkpoint being written was taken
    for op in ops:
        if op[0] == "detach":
            if taken is None:
                view.detach()
                taken = dict(model)
        elif op[0] == "step":
            if taken is not None and view.write_detached(1) == 0:
                assert table == taken
                taken = None
        else:
            assert _apply(view, op) == _apply(model, op)
    view.write_detached()
    view.flush()
    assert table == model


def test_a_checkpoint_is_taken_once_at_a_time():
    view = WriteBehind({}, mirror=True)
    view["a"] = 1
    view.detach()
    view["b"] = 2
    with pytest.raises(RuntimeError):  # the first is still being written
        view.detach()
    assert view.write_detached() == 0
    assert view.backing == {"a": 1} and view["b"] == 2
    view.detach()
    assert view.write_detached() == 0 and view.backing == {"a": 1, "b": 2}
