"""messaging: deliveries, consents, announcements, group bots

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 05:15:10.711499
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('org_webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('webhook_key', sa.String(length=128), nullable=False),
    sa.Column('msgtype', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_error', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_org_webhooks_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_webhooks')),
    sa.UniqueConstraint('org_id', name=op.f('uq_org_webhooks_org_id'))
    )
    op.create_table('announcements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=255), nullable=True),
    sa.Column('audience', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fanout_cursor', sa.Integer(), nullable=False),
    sa.Column('fanout_done', sa.Boolean(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'paused', 'cancelled', 'done')", name=op.f('ck_announcements_status')),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], name=op.f('fk_announcements_created_by_staff')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_announcements_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_announcements'))
    )
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_announcements_org_id'), ['org_id'], unique=False)

    op.create_table('subscribe_consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('long_term', sa.Boolean(), nullable=False),
    sa.Column('rejected', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('remaining >= 0', name=op.f('ck_subscribe_consents_remaining')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_subscribe_consents_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribe_consents')),
    sa.UniqueConstraint('person_id', 'template_id', name=op.f('uq_subscribe_consents_person_id_template_id'))
    )
    op.create_table('announcement_reads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('announcement_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['announcement_id'], ['announcements.id'], name=op.f('fk_announcement_reads_announcement_id_announcements')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_announcement_reads_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_announcement_reads')),
    sa.UniqueConstraint('announcement_id', 'person_id', name=op.f('uq_announcement_reads_announcement_id_person_id'))
    )
    with op.batch_alter_table('announcement_reads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_announcement_reads_person_id'), ['person_id'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('announcement_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_message', sa.String(length=255), nullable=True),
    sa.Column('skip_reason', sa.String(length=64), nullable=True),
    sa.Column('wechat_msgid', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('inbox', 'oa_template', 'mp_subscribe', 'oa_custom', 'wecom_group')", name=op.f('ck_deliveries_channel')),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'delivered', 'blocked', 'failed', 'skipped', 'unknown', 'cancelled')", name=op.f('ck_deliveries_status')),
    sa.CheckConstraint('person_id IS NOT NULL OR org_id IS NOT NULL', name=op.f('ck_deliveries_recipient')),
    sa.ForeignKeyConstraint(['announcement_id'], ['announcements.id'], name=op.f('fk_deliveries_announcement_id_announcements')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_deliveries_org_id_organisations')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_deliveries_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_deliveries_dedup_key'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_announcement_channel_status', ['announcement_id', 'channel', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_person_id'), ['person_id'], unique=False)
        batch_op.create_index('ix_deliveries_status_not_before', ['status', 'not_before'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_wechat_msgid'), ['wechat_msgid'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_wechat_msgid'))
        batch_op.drop_index('ix_deliveries_status_not_before')
        batch_op.drop_index(batch_op.f('ix_deliveries_person_id'))
        batch_op.drop_index('ix_deliveries_announcement_channel_status')

    op.drop_table('deliveries')
    with op.batch_alter_table('announcement_reads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_announcement_reads_person_id'))

    op.drop_table('announcement_reads')
    op.drop_table('subscribe_consents')
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_announcements_org_id'))

    op.drop_table('announcements')
    op.drop_table('org_webhooks')
    
