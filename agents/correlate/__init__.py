"""Correlation stage: one live picture per incident, hotspot and community cluster."""
