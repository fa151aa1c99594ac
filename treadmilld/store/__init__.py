"""Riders and workout history on a real database: SQLite (embedded, the default) or PostgreSQL
(several Pis sharing one). The only package that imports SQLAlchemy and Alembic; its public
names are in `treadmilld.store.api`; docs/database.md.
"""
