"""`rtcc replay`: stream a public CSV/JSON export into a source topic, mapped by a profile.

A profile (YAML, see README.md beside this file) says how the columns of one export become
the fields of a source contract, so that a new city's data is playable by configuration
alone. `mapping` is pure (row -> message), `plan` is pure (ordering, selection, repeats,
pacing schedule) and `player` does the I/O (file, Kafka, progress, summary).
"""
