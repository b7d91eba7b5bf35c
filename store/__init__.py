"""Store: SQLAlchemy tables, Alembic migrations and the model registry."""
