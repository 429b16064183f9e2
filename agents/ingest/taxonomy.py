"""Call types -> category, mental-health flag and normalised priority, from a YAML file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from schemas.envelope import CATEGORIES


@dataclass(frozen=True)
class Classification:
    category: str
    mental_health: bool
    priority: int


@dataclass(frozen=True)
class _Rule:
    classification: Classification
    codes: frozenset[str]
    keywords: re.Pattern[str] | None


class Taxonomy:
    def __init__(self, rules: list[_Rule], default: Classification,
                 agency_priorities: dict[str, dict[str, int]]):
        self.rules = rules
        self.default = default
        self.agency_priorities = agency_priorities
        self._cache: dict[tuple[str, str], Classification] = {}

    @classmethod
    def load(cls, path: Path) -> "Taxonomy":
        doc = yaml.safe_load(Path(path).read_text())

        def classification(entry: dict) -> Classification:
            category = entry["category"]
            if category not in CATEGORIES:
                raise ValueError(f"{path}: unknown category {category!r}")
            priority = int(entry.get("priority", 4))
            if not 1 <= priority <= 5:
                raise ValueError(f"{path}: priority {priority} not in 1..5")
            return Classification(category, bool(entry.get("mental_health", False)), priority)

        rules = []
        for entry in doc.get("rules", []):
            words = [re.escape(str(k).upper()) for k in entry.get("keywords", [])]
            rules.append(_Rule(
                classification(entry),
                frozenset(str(c).upper() for c in entry.get("codes", [])),
                re.compile(r"\b(" + "|".join(words) + r")") if words else None,
            ))
        priorities = {
            str(agency): {str(k): int(v) for k, v in mapping.items()}
            for agency, mapping in (doc.get("agency_priorities") or {}).items()
        }
        return cls(rules, classification(doc["default"]), priorities)

    def classify(self, code: str | None, text: str | None) -> Classification:
        key = ((code or "").upper(), (text or "").upper())
        cached = self._cache.get(key)
        if cached is None:
            cached = self._match(*key)
            if len(self._cache) < 50_000:  # call types are few; bound it against junk
                self._cache[key] = cached
        return cached

    def _match(self, code: str, text: str) -> Classification:
        # An exact code anywhere beats a keyword: FIREWORKS is disorder, not fire.
        for rule in self.rules:
            if code in rule.codes or text in rule.codes:
                return rule.classification
        for rule in self.rules:
            if rule.keywords and (rule.keywords.search(text) or rule.keywords.search(code)):
                return rule.classification
        return self.default

    def priority(self, agency_id: str, source_priority: str | None, fallback: int) -> int:
        """The agency's priority mapped to 1..5, else the call type's default."""
        if source_priority is not None:
            mapped = self.agency_priorities.get(agency_id, {}).get(source_priority.upper())
            if mapped is not None:
                return mapped
            # isdecimal, not isdigit: int() refuses digits like '²' that isdigit accepts.
            if source_priority.isdecimal() and 1 <= int(source_priority) <= 5 \
                    and agency_id not in self.agency_priorities:
                return int(source_priority)
        return fallback
