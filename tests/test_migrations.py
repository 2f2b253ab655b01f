"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server.db import current_revision, head_revision
from server.models import Base


def test_database_is_at_head(app):
    engine = app.extensions["unionhub"]["engine"]
    assert current_revision(engine) == head_revision()


def test_models_and_migrations_agree(app):
    """A model change without a migration fails here ("a missing migration")."""
    engine = app.extensions["unionhub"]["engine"]
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_upgrade_and_downgrade_round_trip(tmp_path):
    from sqlalchemy import create_engine, inspect

    from server.db import downgrade, upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    upgrade(engine)
    assert {"organisations", "people", "staff", "audit_log"} <= set(inspect(engine).get_table_names())
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
