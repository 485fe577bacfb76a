"""PostgreSQL: the hot operations in SQLAlchemy Core with row locks, LISTEN/NOTIFY wake-ups."""
