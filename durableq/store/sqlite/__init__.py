"""SQLite in plain DBAPI: the named statements and the paths that must not import
SQLAlchemy (the CLI's enqueue). Importing this package imports nothing heavy."""
