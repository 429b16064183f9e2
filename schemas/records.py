"""Records built, copied and serialised on the hot path without Faust's per-field machinery.

A `faust.Record` sets each field through a descriptor (`prepare_value`, then a tag) and
serialises through `asdict`, the codec registry and the topic's serializer chain. For the
normalised event's 33 fields that is ~25 us to build one, ~40 us to copy one with
`derive` (a ghost) and ~20 us to serialise one for a topic: some 60 us of the ~570 us a
worker spends per event (bench/NOTES.md section 40). For a Record whose fields neither
coerce nor carry a tag, and which has no `__post_init__` and no validation, every one of
those steps stores or reads each value as given, so the functions below do the same with a
dict: the same object, the same bytes, without the per-field calls.

A Record that does coerce, tag, validate or post-initialise is built and serialised by
Faust itself (`build` and `copy` fall back to it), so a later change to a contract cannot
make this path skip what Faust would have done.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple, TypeVar

import faust

from schemas import codec

R = TypeVar("R", bound=faust.Record)
_MISSING = object()


class _Layout(NamedTuple):
    template: dict[str, Any]  # every field in declaration order: its default, or _MISSING
    names: frozenset[str]
    required: frozenset[str]
    defaults_for_none: tuple[tuple[str, Any], ...]  # optional fields whose default is not None


@cache
def _layout(cls: type[faust.Record]) -> _Layout | None:
    """How `cls` is laid out, if the plain path is equivalent to Faust's for it; else None."""
    options = cls._options
    if (options.validation or options.include_metadata or hasattr(cls, "__post_init__")
            or any(d.coerce or d.tag is not None for d in options.descriptors.values())):
        return None
    defaults = options.defaults
    template = {name: defaults.get(name, _MISSING) for name in options.fieldpos.values()}
    return _Layout(
        template=template,
        names=frozenset(template),
        required=frozenset(name for name, value in template.items() if value is _MISSING),
        defaults_for_none=tuple((name, defaults[name]) for name in options.optionalset
                                if defaults.get(name) is not None),
    )


def plain(cls: type[faust.Record]) -> bool:
    """Whether `build`, `copy`, `asdict` and `dumps` take the plain path for `cls`."""
    return _layout(cls) is not None


def build(cls: type[R], **values: Any) -> R:
    """`cls(**values)`: the same Record, from a dict instead of one descriptor call per field.

    As Faust's generated `__init__` does, an optional field given None takes its default,
    and an unknown or missing field is a TypeError."""
    layout = _layout(cls)
    if layout is None:
        return cls(**values)
    given = values.keys()
    if given - layout.names:
        raise TypeError(f"{cls.__name__} got unexpected argument(s): "
                        f"{', '.join(sorted(given - layout.names))}")
    if layout.required - given:
        raise TypeError(f"{cls.__name__} missing required argument(s): "
                        f"{', '.join(sorted(layout.required - given))}")
    state = {**layout.template, **values}
    for name, default in layout.defaults_for_none:
        if state[name] is None:
            state[name] = default
    state["__evaluated_fields__"] = set()
    record = cls.__new__(cls)
    record.__dict__.update(state)
    return record


def copy(record: R, **changes: Any) -> R:
    """`record.derive(**changes)`: a new Record with some fields changed."""
    cls = type(record)
    if _layout(cls) is None:
        return record.derive(**changes)
    return build(cls, **{**asdict(record), **changes})


def asdict(record: faust.Record) -> dict[str, Any]:
    """`record.asdict()`: its fields in declaration order (nested Records as they are)."""
    layout = _layout(type(record))
    if layout is None:
        return record.asdict()
    return _fields(record, layout)


def dumps(record: faust.Record) -> bytes:
    """The bytes a topic with the orjson codec writes for `record` (`topic.prepare_value`):
    its representation, which for a Record that keeps Faust's metadata holds that too."""
    layout = _layout(type(record))
    if layout is None:
        return codec.dumps(record.to_representation())
    return codec.dumps(_fields(record, layout))


def _fields(record: faust.Record, layout: _Layout) -> dict[str, Any]:
    state = record.__dict__
    return {name: state[name] for name in layout.template}
