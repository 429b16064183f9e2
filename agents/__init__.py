"""Faust agents of rtcc-streams, grouped by stage: ingest, then (later) correlate and publish.

Each stage keeps its domain logic in pure modules and its agents in a thin `agents.py`.
"""
