"""people.oa_cs_until / oa_cs_left: WeChat's customer-service allowance (20 in 48 h after a message, 3 in a
minute after a click, scan or follow) instead of one 48-hour window after any interaction; an index on
people.real_name (binding a follower by name)

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-21 07:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oa_cs_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('oa_cs_left', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_people_real_name'), ['real_name'], unique=False)
    # Existing interactions keep the allowance a message would have given (the most generous reading).
    op.execute("UPDATE people SET oa_cs_left = 20, oa_cs_until = oa_last_interaction_at + INTERVAL '48 hours' "
               "WHERE oa_last_interaction_at IS NOT NULL"
               if op.get_bind().dialect.name == "postgresql" else
               "UPDATE people SET oa_cs_left = 20, oa_cs_until = datetime(oa_last_interaction_at, '+48 hours') "
               "WHERE oa_last_interaction_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_people_real_name'))
        batch_op.drop_column('oa_cs_left')
        batch_op.drop_column('oa_cs_until')
