"""The Faust topic objects the stages share, built from the specs in streams.topics.

Keys are raw bytes (str keys are encoded as UTF-8); values go through the orjson codec.
Source topics are built by the ingest agents themselves, raw, so that undecodable bytes
reach the dead-letter topic as they came.
"""

from __future__ import annotations

from streams.app import topic
from streams.topics import (
    AUDIENCES, DEAD_LETTER, FINISHED_INCIDENTS, KPI, NORMALISED, SA_STATE, SA_UPDATES,
    audience_topic,
)

normalised = topic(NORMALISED, key_serializer="raw", value_serializer="orjson")
dead_letters = topic(DEAD_LETTER, key_serializer="raw", value_serializer="orjson")
sa_updates = topic(SA_UPDATES, key_serializer="raw", value_serializer="orjson")
sa_state = topic(SA_STATE, key_serializer="raw", value_serializer="orjson")
finished_incidents = topic(FINISHED_INCIDENTS, key_serializer="raw", value_serializer="orjson")
kpi = topic(KPI, key_serializer="raw", value_serializer="orjson")
audiences = {a: topic(audience_topic(a), key_serializer="raw", value_serializer="orjson")
             for a in AUDIENCES}
