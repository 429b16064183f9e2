"""`rtcc partners add|list|revoke`: registry changes, each with its audit record."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from agents.publish.partners import key_hash, new_key
from agents.publish.policy import Policies
from schemas.partner import AuditRecord, Partner
from streams.config import Settings, load
from streams.gateway import registry

PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")


def _audit(action: str, partner: dict[str, Any], detail: str | None = None) -> dict[str, Any]:
    return AuditRecord(time=registry.now_iso(ms=True), action=action,
                       object=f"partner:{partner['partner_id']}", outcome="ok",
                       partner_id=partner["partner_id"], audience=partner.get("audience"),
                       client_address="cli", detail=detail).asdict()


def add(settings: Settings, partner_id: str, audience: str, **scope: Any) -> tuple[dict, str]:
    """Register (or re-key) a partner; returns its record and its API key, shown once."""
    if not PARTNER_ID.match(partner_id):
        raise ValueError("partner id: 2-63 of a-z, 0-9, '-' and '_', starting alphanumeric")
    audiences = {p.name for p in Policies.load(settings.audiences_file)}
    if audience not in audiences:
        raise ValueError(f"audience must be one of {sorted(audiences)}")
    bbox = scope.get("bbox")
    if bbox is not None and (len(bbox) != 4 or bbox[0] >= bbox[2] or bbox[1] >= bbox[3]):
        raise ValueError("bbox: min_lon,min_lat,max_lon,max_lat with min < max")
    key = new_key(partner_id)
    record = Partner(partner_id=partner_id, audience=audience, key_hash=key_hash(key),
                     created_time=registry.now_iso(), **{k: v for k, v in scope.items()
                                                         if v not in (None, [], ())}).asdict()
    registry.write(settings, record, _audit("registry_add", record))
    return record, key


def revoke(settings: Settings, partner_id: str) -> dict[str, Any]:
    partners = registry.read_all(settings)
    record = partners.get(partner_id)
    if record is None:
        raise KeyError(partner_id)
    record = dict(record, revoked_time=registry.now_iso())
    registry.write(settings, record, _audit("registry_revoke", record))
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    add_p = sub.add_parser("add", help="register a partner and print its API key (once)")
    add_p.add_argument("partner_id")
    add_p.add_argument("--audience", required=True)
    add_p.add_argument("--name")
    add_p.add_argument("--district", action="append", default=[], dest="districts")
    add_p.add_argument("--bbox", help="min_lon,min_lat,max_lon,max_lat")
    add_p.add_argument("--polygon-file", type=Path,
                       help="GeoJSON Polygon (or Feature) whose outer ring is the area")
    add_p.add_argument("--category", action="append", default=[], dest="categories")
    add_p.add_argument("--max-priority", type=int)
    add_p.add_argument("--min-interval", type=float, default=0.0, dest="min_interval_s",
                       help="seconds between two updates of one subject (STA-024 maxRate)")
    add_p.add_argument("--json", action="store_true", help="print record and key as JSON")
    sub.add_parser("list", help="list partners (never keys)")
    rev = sub.add_parser("revoke", help="revoke a partner's access")
    rev.add_argument("partner_id")


def _ring(path: Path) -> list[list[float]]:
    doc = json.loads(path.read_text())
    geometry = doc.get("geometry", doc)
    if geometry.get("type") != "Polygon":
        raise ValueError("polygon file: a GeoJSON Polygon or a Feature of one")
    return [[float(x), float(y)] for x, y, *_ in geometry["coordinates"][0]]


def run(args: argparse.Namespace) -> int:
    settings = load()
    try:
        if args.action == "add":
            bbox = [float(v) for v in args.bbox.split(",")] if args.bbox else None
            record, key = add(
                settings, args.partner_id, args.audience, name=args.name,
                districts=args.districts, bbox=bbox,
                polygon=_ring(args.polygon_file) if args.polygon_file else None,
                categories=args.categories, max_priority=args.max_priority,
                min_interval_s=args.min_interval_s)
            if args.json:
                print(json.dumps({"partner": record, "api_key": key}))
            else:
                print(f"partner {record['partner_id']} ({record['audience']}) registered.")
                print(f"API key (shown once, store it safely): {key}")
            return 0
        if args.action == "revoke":
            record = revoke(settings, args.partner_id)
            print(f"partner {record['partner_id']} revoked at {record['revoked_time']}")
            return 0
        for p in sorted(registry.read_all(settings).values(), key=lambda p: p["partner_id"]):
            state = f"revoked {p['revoked_time']}" if p.get("revoked_time") else "active"
            scope = {k: p[k] for k in ("districts", "bbox", "categories", "max_priority",
                                       "min_interval_s") if p.get(k)}
            print(f"{p['partner_id']:24} {p['audience']:10} {state:30} {scope}")
        return 0
    except (ValueError, KeyError) as exc:
        print(f"partners: {exc}", file=sys.stderr)
        return 2
