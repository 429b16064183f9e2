"""Event contracts of rtcc-streams: Faust Records and the JSON Schema files rendered from them.

Importing this package registers the orjson codec with Faust.
"""

from schemas import codec as _codec  # noqa: F401  (registers the "orjson" codec)
from schemas.audience_update import AudienceUpdate
from schemas.contract import CONTRACTS, Contract
from schemas.dead_letter import DeadLetter
from schemas.envelope import NormalisedEvent, Pii
from schemas.partner import AuditRecord, Partner
from schemas.sa_update import SaUpdate
from schemas.sources import CadEvent, CommunityReport, CrisisEvent

__all__ = [
    "CONTRACTS", "Contract", "CadEvent", "CrisisEvent", "CommunityReport",
    "NormalisedEvent", "Pii", "SaUpdate", "DeadLetter", "AudienceUpdate", "Partner",
    "AuditRecord",
]
