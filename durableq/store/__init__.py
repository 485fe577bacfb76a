"""Persistence: the schema, migrations and engines, and one store per dialect."""
