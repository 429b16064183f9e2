"""Why a message is refused: raised by the pure ingest functions, caught by the agents."""

from __future__ import annotations

from schemas.dead_letter import REASONS


class Rejected(Exception):
    """The message is invalid; it goes to the dead-letter topic with this reason."""

    def __init__(self, reason: str, field: str | None = None, detail: str | None = None):
        if reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}")
        super().__init__(f"{reason}: {field or '-'}: {detail or ''}")
        self.reason = reason
        self.field = field
        self.detail = detail
