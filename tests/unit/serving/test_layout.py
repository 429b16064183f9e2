"""How an audience update changes the serving layer's Redis keys (pure plan)."""

from __future__ import annotations

import orjson

from streams.serving.layout import Keys, plan


def payload(kind="opened", **state):
    base = {"status": "dispatched", "latitude": 43.05, "longitude": -87.95, "district": "5"}
    base.update(state)
    return {"update_id": "u", "audience": "operator", "subject_kind": "incident",
            "subject_id": "cad:MPD:1", "version": 1, "kind": kind, "event_time": "t",
            "state": base}


def test_an_active_located_subject_is_upserted_with_its_place():
    op = plan(7, payload())
    assert (op.offset, op.action, op.kind, op.member) == (7, "upsert", "incident", "cad:MPD:1")
    assert (float(op.lon), float(op.lat)) == (-87.95, 43.05)
    assert orjson.loads(op.payload)["subject_id"] == "cad:MPD:1"


def test_an_unlocated_subject_has_no_geo_entry():
    op = plan(1, payload(latitude=None, longitude=None))
    assert op.action == "upsert" and op.lon == "" and op.lat == ""


def test_ending_updates_remove_the_subject():
    assert plan(1, payload(kind="closed", status="closed")).action == "remove"
    assert plan(1, payload(kind="merged", merged_into="cad:MPD:0")).action == "remove"
    # the survivor of a merge is published with kind "merged" too, and stays
    assert plan(1, payload(kind="merged", merged_into=None, calls=2)).action == "upsert"
    assert plan(1, payload(kind="updated", status="cleared")).action == "remove"
    withdrawn = dict(payload(), kind="withdrawn", state=None)
    assert plan(1, withdrawn).action == "remove"
    cluster = dict(payload(kind="cluster_closed"), subject_kind="cluster",
                   state={"open": False})
    assert plan(1, cluster).action == "remove"


def test_public_counts_move_with_the_incident():
    agg = dict(payload(), aggregate=True,
               state={"district": "5", "cell": "872754e64ffffff", "category": "violent",
                      "status": "open"})
    assert plan(1, agg).count_key == "5|872754e64ffffff|violent"
    closed = dict(agg, state=dict(agg["state"], status="closed"))
    assert plan(2, closed).action == "count" and plan(2, closed).count_key == ""


def test_keys_are_namespaced_per_deployment_and_audience():
    keys = Keys("it.abc.rtcc:", "community")
    assert keys.stream == "it.abc.rtcc:community:stream"
    assert all(k.startswith("it.abc.rtcc:community:") for k in keys.all())
