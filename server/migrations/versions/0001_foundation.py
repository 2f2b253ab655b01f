"""foundation: organisations, people, staff, audit log, programmes, competitions

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 04:32:40.113556
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('organisations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('short_name', sa.String(length=64), nullable=True),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('employer_name', sa.String(length=128), nullable=True),
    sa.Column('employer_credit_code', sa.String(length=18), nullable=True),
    sa.Column('industry', sa.String(length=64), nullable=True),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('contact_name', sa.String(length=64), nullable=True),
    sa.Column('contact_phone', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('city', 'district', 'enterprise')", name=op.f('ck_organisations_kind')),
    sa.ForeignKeyConstraint(['parent_id'], ['organisations.id'], name=op.f('fk_organisations_parent_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations')),
    sa.UniqueConstraint('employer_credit_code', name=op.f('uq_organisations_employer_credit_code')),
    sa.UniqueConstraint('name', name=op.f('uq_organisations_name'))
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisations_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_organisations_path'), ['path'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('from_state', sa.String(length=32), nullable=True),
    sa.Column('to_state', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_audit_log_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_log_entity', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_org_id'), ['org_id'], unique=False)

    op.create_table('competitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('trade', sa.String(length=64), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('organiser_org_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('venue', sa.String(length=255), nullable=True),
    sa.Column('signup_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signup_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('theory_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('practical_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('org_quota', sa.Integer(), nullable=True),
    sa.Column('eligibility', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('entry_mode', sa.String(length=16), nullable=False),
    sa.Column('team_min', sa.Integer(), nullable=True),
    sa.Column('team_max', sa.Integer(), nullable=True),
    sa.Column('needs_approval', sa.Boolean(), nullable=False),
    sa.Column('theory_weight', sa.Integer(), nullable=False),
    sa.Column('practical_weight', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("entry_mode IN ('individual', 'team')", name=op.f('ck_competitions_entry_mode')),
    sa.CheckConstraint("level IN ('enterprise', 'district', 'city')", name=op.f('ck_competitions_level')),
    sa.CheckConstraint("status IN ('draft', 'published', 'cancelled', 'finished')", name=op.f('ck_competitions_status')),
    sa.CheckConstraint('capacity > 0', name=op.f('ck_competitions_capacity')),
    sa.CheckConstraint('signup_start < signup_end', name=op.f('ck_competitions_signup_window')),
    sa.ForeignKeyConstraint(['organiser_org_id'], ['organisations.id'], name=op.f('fk_competitions_organiser_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competitions'))
    )
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competitions_organiser_org_id'), ['organiser_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_competitions_trade'), ['trade'], unique=False)

    op.create_table('people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('oa_openid', sa.String(length=64), nullable=True),
    sa.Column('mp_openid', sa.String(length=64), nullable=True),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('real_name', sa.String(length=64), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('id_number_enc', sa.LargeBinary(), nullable=True),
    sa.Column('id_number_hash', sa.String(length=64), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('gender', sa.String(length=1), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('employer', sa.String(length=128), nullable=True),
    sa.Column('trade', sa.String(length=64), nullable=True),
    sa.Column('skill_level', sa.String(length=32), nullable=True),
    sa.Column('education', sa.String(length=32), nullable=True),
    sa.Column('worker_category', sa.String(length=32), nullable=True),
    sa.Column('is_member', sa.Boolean(), nullable=False),
    sa.Column('member_since', sa.Date(), nullable=True),
    sa.Column('oa_subscribed', sa.Boolean(), nullable=False),
    sa.Column('oa_subscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('oa_unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('oa_last_interaction_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("education IS NULL OR education IN ('junior_high', 'senior_high', 'vocational', 'college', 'bachelor', 'postgraduate')", name=op.f('ck_people_education')),
    sa.CheckConstraint("skill_level IS NULL OR skill_level IN ('apprentice', 'junior', 'intermediate', 'senior', 'technician', 'senior_technician', 'principal_technician', 'chief_technician')", name=op.f('ck_people_skill_level')),
    sa.CheckConstraint("worker_category IS NULL OR worker_category IN ('frontline', 'migrant', 'new_form', 'technical', 'other')", name=op.f('ck_people_worker_category')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_people_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('id_number_hash', name=op.f('uq_people_id_number_hash')),
    sa.UniqueConstraint('mp_openid', name=op.f('uq_people_mp_openid')),
    sa.UniqueConstraint('oa_openid', name=op.f('uq_people_oa_openid')),
    sa.UniqueConstraint('unionid', name=op.f('uq_people_unionid'))
    )
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_people_org_id'), ['org_id'], unique=False)
        batch_op.create_index('ix_people_org_trade', ['org_id', 'trade'], unique=False)
        batch_op.create_index(batch_op.f('ix_people_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_people_trade'), ['trade'], unique=False)

    op.create_table('staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'reviewer', 'finance', 'organiser', 'officer', 'viewer')", name=op.f('ck_staff_role')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_staff_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_username'))
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_org_id'), ['org_id'], unique=False)

    op.create_table('subsidy_programs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('kinds', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('eligibility', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('required_documents', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('per_person_cap_fen', sa.Integer(), nullable=False),
    sa.Column('max_people', sa.Integer(), nullable=False),
    sa.Column('budget_fen', sa.Integer(), nullable=False),
    sa.Column('committed_fen', sa.Integer(), nullable=False),
    sa.Column('approved_people', sa.Integer(), nullable=False),
    sa.Column('paid_fen', sa.Integer(), nullable=False),
    sa.Column('review_levels', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'open', 'closed')", name=op.f('ck_subsidy_programs_status')),
    sa.CheckConstraint('budget_fen >= 0 AND committed_fen >= 0 AND committed_fen <= budget_fen', name=op.f('ck_subsidy_programs_budget')),
    sa.CheckConstraint('max_people >= 0 AND approved_people >= 0 AND approved_people <= max_people', name=op.f('ck_subsidy_programs_places')),
    sa.CheckConstraint('per_person_cap_fen > 0', name=op.f('ck_subsidy_programs_cap_positive')),
    sa.CheckConstraint('review_levels IN (1, 2)', name=op.f('ck_subsidy_programs_review_levels')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_subsidy_programs_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_programs'))
    )
    with op.batch_alter_table('subsidy_programs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subsidy_programs_org_id'), ['org_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('subsidy_programs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subsidy_programs_org_id'))

    op.drop_table('subsidy_programs')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_org_id'))

    op.drop_table('staff')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_people_trade'))
        batch_op.drop_index(batch_op.f('ix_people_phone'))
        batch_op.drop_index('ix_people_org_trade')
        batch_op.drop_index(batch_op.f('ix_people_org_id'))

    op.drop_table('people')
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competitions_trade'))
        batch_op.drop_index(batch_op.f('ix_competitions_organiser_org_id'))

    op.drop_table('competitions')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_org_id'))
        batch_op.drop_index('ix_audit_log_entity')
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisations_path'))
        batch_op.drop_index(batch_op.f('ix_organisations_parent_id'))

    op.drop_table('organisations')
    
