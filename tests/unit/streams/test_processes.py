"""streams/processes.py: reading one label out of a label set as `scrape_metrics` keys it,
which the demo's summary, the burst and the pipeline bench share."""

from __future__ import annotations

from streams.demo import summary_line
from streams.processes import label


def test_a_label_is_read_by_name_whatever_its_place():
    labels = 'stage="correlate",way="in_turn"'
    assert label(labels, "stage") == "correlate"
    assert label(labels, "way") == "in_turn"
    assert label(labels, "kind") is None
    assert label("", "stage") is None


def test_the_demo_summary_counts_per_source_label():
    counts = {
        "rtcc_events_in_total": {'source="cad"': 3.0, 'source="crisis"': 2.0},
        "rtcc_events_normalised_total": {'source="cad",category="violent"': 2.0,
                                         'source="cad",category="other"': 1.0,
                                         'source="crisis",category="welfare"': 2.0},
    }
    line = summary_line(counts)
    assert "cad: 3 in / 3 ok / 0 dead" in line
    assert "crisis: 2 in / 2 ok / 0 dead" in line
