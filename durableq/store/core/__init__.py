"""Operations written once in SQLAlchemy Core, rendered for each dialect."""
