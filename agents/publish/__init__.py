"""Publication to partners: audience policies, redaction, and the standard renderings
(EIDO for incidents, CAP for hotspot and public alerts)."""
