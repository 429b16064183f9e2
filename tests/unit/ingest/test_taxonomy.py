import pytest

from agents.ingest.taxonomy import Taxonomy
from streams.config import DEFAULTS_DIR


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(DEFAULTS_DIR / "taxonomy.yaml")


@pytest.mark.parametrize(
    "code, text, category, mental_health",
    [
        # APCO crisis codes
        ("EDP", None, "mental_health", True),
        ("SUICTHRT", None, "mental_health", True),
        ("OD", None, "medical", True),
        ("INTOX", None, "welfare", True),
        ("WELFARE", None, "welfare", True),
        # the equivalent natures of the real data sets
        (None, "WELFARE CITIZEN", "welfare", True),  # Milwaukee
        ("Person in Crisis", None, "mental_health", True),  # Toronto
        ("Suicide-related", None, "mental_health", True),
        ("Overdose", None, "medical", True),
        (None, "HOSPITAL TO MCMH", "mental_health", True),  # Milwaukee County Mental Health
        ("Homeless Person Assistance", None, "welfare", True),  # NYC 311
        # ordinary calls
        (None, "SHOTS FIRED", "violent", False),
        (None, "BATTERY DV", "violent", False),
        (None, "TRAFFIC STOP", "proactive", False),  # officer-initiated: never a hotspot
        (None, "ACC PI", "traffic", False),
        (None, "ENTRY AUTOS", "property", False),
        (None, "TRBL W/SUBJ", "disorder", False),
        (None, "FIREWORKS", "disorder", False),  # not "fire": keywords match whole words
        ("Structure Fire", None, "fire", False),
        ("Medical Incident", None, "medical", False),
        ("Noise - Residential", None, "disorder", False),
        ("HEAT/HOT WATER", None, "other", False),
        # unknown codes fall to the default, never fail
        ("ZZZ-UNKNOWN", "no such thing", "other", False),
        (None, None, "other", False),
    ],
)
def test_classifies_real_call_types(taxonomy, code, text, category, mental_health):
    result = taxonomy.classify(code, text)
    assert (result.category, result.mental_health) == (category, mental_health)


def test_agency_priority_map_wins_over_call_type(taxonomy):
    assert taxonomy.priority("SFFD", "E", fallback=4) == 1
    assert taxonomy.priority("SFFD", "2", fallback=1) == 3


def test_unmapped_priority_falls_back(taxonomy):
    assert taxonomy.priority("SFFD", "Q", fallback=2) == 2
    assert taxonomy.priority("MPD", None, fallback=3) == 3
    assert taxonomy.priority("MPD", "9", fallback=3) == 3
    assert taxonomy.priority("MPD", "1", fallback=3) == 1


def test_rejects_unknown_category(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("default: {category: other}\nrules:\n  - {category: nonsense, codes: [X]}\n")
    with pytest.raises(ValueError, match="nonsense"):
        Taxonomy.load(bad)
