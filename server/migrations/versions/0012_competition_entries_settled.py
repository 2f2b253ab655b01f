"""competition_entries: a partial index of the entries no longer waiting (ix_competition_entries_settled), which
the sign-up's numbering statement counts below a new waiting unit's arrival number

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21 13:30:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

#: Every entry status but waitlisted and forming (as in server.models.competitions when this was written).
SETTLED_SQL = ("status IN ('pending_approval', 'confirmed', 'offered', 'withdrawn', 'rejected', 'removed', "
               "'expired')")


def upgrade() -> None:
    with op.batch_alter_table('competition_entries', schema=None) as batch_op:
        batch_op.create_index('ix_competition_entries_settled', ['competition_id', 'arrival_no'], unique=False,
                              sqlite_where=sa.text(SETTLED_SQL), postgresql_where=sa.text(SETTLED_SQL))


def downgrade() -> None:
    with op.batch_alter_table('competition_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_competition_entries_settled', sqlite_where=sa.text(SETTLED_SQL),
                            postgresql_where=sa.text(SETTLED_SQL))
