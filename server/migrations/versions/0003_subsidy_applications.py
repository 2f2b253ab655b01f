"""subsidy applications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Certificate and invoice numbers are unique among applications in these statuses only.
LIVE = sa.text("status NOT IN ('draft', 'withdrawn', 'rejected', 'expired')")


def upgrade() -> None:
    op.create_table('inbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=255), nullable=True),
    sa.Column('dedup_key', sa.String(length=160), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_inbox_messages_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_messages')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_inbox_messages_dedup_key'))
    )
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_messages_person_created', ['person_id', 'created_at'], unique=False)

    op.create_table('subsidy_allowances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('approved_fen', sa.Integer(), nullable=False),
    sa.CheckConstraint('approved_fen >= 0', name=op.f('ck_subsidy_allowances_approved')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_subsidy_allowances_person_id_people')),
    sa.ForeignKeyConstraint(['program_id'], ['subsidy_programs.id'], name=op.f('fk_subsidy_allowances_program_id_subsidy_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_allowances')),
    sa.UniqueConstraint('program_id', 'person_id', name=op.f('uq_subsidy_allowances_program_id_person_id'))
    )
    with op.batch_alter_table('subsidy_allowances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_allowances_person_id'), ['person_id'], unique=False)

    op.create_table('subsidy_applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('review_level', sa.Integer(), nullable=False),
    sa.Column('school', sa.String(length=128), nullable=True),
    sa.Column('major', sa.String(length=128), nullable=True),
    sa.Column('study_level', sa.String(length=32), nullable=True),
    sa.Column('certificate_name', sa.String(length=128), nullable=True),
    sa.Column('certificate_level', sa.String(length=32), nullable=True),
    sa.Column('certificate_number', sa.String(length=64), nullable=True),
    sa.Column('invoice_number', sa.String(length=64), nullable=True),
    sa.Column('certificate_key', sa.String(length=64), nullable=True),
    sa.Column('invoice_key', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('requested_fen', sa.Integer(), nullable=False),
    sa.Column('recommended_fen', sa.Integer(), nullable=True),
    sa.Column('approved_fen', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('return_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payment_reference', sa.String(length=128), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('degree', 'skill')", name=op.f('ck_subsidy_applications_kind')),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'under_review', 'returned', 'approved', 'rejected', 'withdrawn', 'expired', 'paid', 'payment_failed')", name=op.f('ck_subsidy_applications_status')),
    sa.CheckConstraint('approved_fen IS NULL OR (approved_fen > 0 AND approved_fen <= requested_fen)', name=op.f('ck_subsidy_applications_approved')),
    sa.CheckConstraint('requested_fen >= 0', name=op.f('ck_subsidy_applications_requested')),
    sa.CheckConstraint('review_level IN (1, 2)', name=op.f('ck_subsidy_applications_review_level')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_subsidy_applications_org_id_organisations')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_subsidy_applications_person_id_people')),
    sa.ForeignKeyConstraint(['program_id'], ['subsidy_programs.id'], name=op.f('fk_subsidy_applications_program_id_subsidy_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_applications'))
    )
    with op.batch_alter_table('subsidy_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_applications_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subsidy_applications_person_id'), ['person_id'], unique=False)
        batch_op.create_index('ix_subsidy_applications_program_status', ['program_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_subsidy_applications_return_deadline'), ['return_deadline'], unique=False)
        batch_op.create_index('uq_subsidy_applications_certificate_key', ['certificate_key'], unique=True, sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index('uq_subsidy_applications_invoice_key', ['invoice_key'], unique=True, sqlite_where=LIVE, postgresql_where=LIVE)

    op.create_table('subsidy_application_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('review_level', sa.Integer(), nullable=True),
    sa.Column('amount_fen', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['subsidy_applications.id'], name=op.f('fk_subsidy_application_events_application_id_subsidy_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_application_events'))
    )
    with op.batch_alter_table('subsidy_application_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_application_events_application_id'), ['application_id'], unique=False)

    op.create_table('subsidy_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('doc_type', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_name', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['subsidy_applications.id'], name=op.f('fk_subsidy_attachments_application_id_subsidy_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_attachments')),
    sa.UniqueConstraint('storage_name', name=op.f('uq_subsidy_attachments_storage_name'))
    )
    with op.batch_alter_table('subsidy_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_attachments_application_id'), ['application_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subsidy_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subsidy_attachments_application_id'))

    op.drop_table('subsidy_attachments')
    with op.batch_alter_table('subsidy_application_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subsidy_application_events_application_id'))

    op.drop_table('subsidy_application_events')
    with op.batch_alter_table('subsidy_applications', schema=None) as batch_op:
        batch_op.drop_index('uq_subsidy_applications_invoice_key')
        batch_op.drop_index('uq_subsidy_applications_certificate_key')
        batch_op.drop_index(batch_op.f('ix_subsidy_applications_return_deadline'))
        batch_op.drop_index('ix_subsidy_applications_program_status')
        batch_op.drop_index(batch_op.f('ix_subsidy_applications_person_id'))
        batch_op.drop_index(batch_op.f('ix_subsidy_applications_org_id'))

    op.drop_table('subsidy_applications')
    with op.batch_alter_table('subsidy_allowances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subsidy_allowances_person_id'))

    op.drop_table('subsidy_allowances')
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_messages_person_created')

    op.drop_table('inbox_messages')
