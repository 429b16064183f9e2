"""Ingest stage: decode, validate and normalise the three source streams."""
