"""The newest schema revision this code knows, importable without SQLAlchemy or Alembic.

A test holds it equal to the Alembic scripts' head, so the check before every command need not
load Alembic.
"""

HEAD_REVISION = "0006"
VERSION_TABLE = "alembic_version"
