"""Benchmarks of rtcc-streams against real Kafka (see bench/README.md)."""
