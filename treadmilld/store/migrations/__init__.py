"""Alembic migrations, run from code by `treadmilld.store.migrate` (no alembic.ini)."""
