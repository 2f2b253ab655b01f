"""drop wechat_pushes.retries: nothing ever wrote it (retries are answered from Redis, not counted)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 06:55:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wechat_pushes', schema=None) as batch_op:
        batch_op.drop_column('retries')


def downgrade() -> None:
    with op.batch_alter_table('wechat_pushes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retries', sa.Integer(), nullable=False, server_default='0'))
