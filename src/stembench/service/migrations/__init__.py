"""Alembic migrations of the service database (run at start-up by :func:`..db.migrate`)."""
