"""wechat pushes and keyword replies

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 04:40:30.434118
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('keyword_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('keyword', sa.String(length=128), nullable=False),
    sa.Column('match', sa.String(length=8), nullable=False),
    sa.Column('reply', sa.Text(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_keyword_replies'))
    )
    op.create_table('wechat_pushes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedup_key', sa.String(length=160), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('msg_type', sa.String(length=32), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=True),
    sa.Column('event_key', sa.String(length=255), nullable=True),
    sa.Column('msg_id', sa.String(length=64), nullable=True),
    sa.Column('content', sa.Text(), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('bot', sa.String(length=64), nullable=True),
    sa.Column('reply_type', sa.String(length=32), nullable=True),
    sa.Column('reply_preview', sa.String(length=255), nullable=True),
    sa.Column('duration_ms', sa.Double(), nullable=True),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=255), nullable=True),
    sa.Column('created_at_wechat', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_pushes')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_wechat_pushes_dedup_key'))
    )
    with op.batch_alter_table('wechat_pushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechat_pushes_event'), ['event'], unique=False)
        batch_op.create_index('ix_wechat_pushes_openid_received', ['openid', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_wechat_pushes_received_at'), ['received_at'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('wechat_pushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechat_pushes_received_at'))
        batch_op.drop_index('ix_wechat_pushes_openid_received')
        batch_op.drop_index(batch_op.f('ix_wechat_pushes_event'))

    op.drop_table('wechat_pushes')
    op.drop_table('keyword_replies')
    
