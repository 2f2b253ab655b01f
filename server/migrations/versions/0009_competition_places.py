"""competition places and counters: sign-ups no longer queue on the competition's row

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 08:00:00

Places become rows (competition_places: exactly ``capacity`` per competition, ``entry_id`` the holder), claimed
with FOR UPDATE SKIP LOCKED; arrival and candidate numbers move to competition_counters (bumped like a
sequence).  The competition's held_count / waitlisted_count / arrival_seq / last_candidate_no counters go:
places left and the waiting list are counted from indexed rows.  Backfilled from the entries: each entry
holding a place (pending_approval, confirmed, offered) gets one, in entry order.
"""

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

HOLDING = "'pending_approval', 'confirmed', 'offered'"
FREE = sa.text("entry_id IS NULL")


def upgrade() -> None:
    op.create_table('competition_counters',
    sa.Column('competition_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_arrival_no', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_candidate_no', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_competition_counters_competition_id_competitions')),
    sa.PrimaryKeyConstraint('competition_id', name=op.f('pk_competition_counters'))
    )
    op.create_table('competition_places',
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('place_no', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_competition_places_competition_id_competitions')),
    sa.ForeignKeyConstraint(['entry_id'], ['competition_entries.id'], name=op.f('fk_competition_places_entry_id_competition_entries')),
    sa.PrimaryKeyConstraint('competition_id', 'place_no', name=op.f('pk_competition_places')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_competition_places_entry_id'))
    )
    with op.batch_alter_table('competition_places', schema=None) as batch_op:
        batch_op.create_index('ix_competition_places_free', ['competition_id', 'place_no'], unique=False,
                              sqlite_where=FREE, postgresql_where=FREE)

    conn = op.get_bind()
    conn.execute(sa.text("INSERT INTO competition_counters (competition_id, last_arrival_no, last_candidate_no) "
                         "SELECT id, arrival_seq, last_candidate_no FROM competitions"))
    places = sa.table('competition_places', sa.column('competition_id', sa.Integer),
                      sa.column('place_no', sa.Integer), sa.column('entry_id', sa.Integer))
    for cid, capacity in conn.execute(sa.text("SELECT id, capacity FROM competitions ORDER BY id")).all():
        holders = [e for (e,) in conn.execute(sa.text(
            f"SELECT id FROM competition_entries WHERE competition_id = :c AND status IN ({HOLDING}) ORDER BY id"),
            {"c": cid})]
        rows = [{"competition_id": cid, "place_no": n, "entry_id": holders[n - 1] if n <= len(holders) else None}
                for n in range(1, capacity + 1)]
        if rows:
            conn.execute(places.insert(), rows)

    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_competitions_waitlisted_count'), type_='check')
        batch_op.drop_constraint(op.f('ck_competitions_held_count'), type_='check')
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.drop_column('arrival_seq')
        batch_op.drop_column('waitlisted_count')
        batch_op.drop_column('held_count')
        batch_op.drop_column('last_candidate_no')


def downgrade() -> None:
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_candidate_no', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('held_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('waitlisted_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('arrival_seq', sa.Integer(), server_default='0', nullable=False))
    op.execute("""UPDATE competitions SET
        held_count = (SELECT count(*) FROM competition_places p
                      WHERE p.competition_id = competitions.id AND p.entry_id IS NOT NULL),
        waitlisted_count = (SELECT count(DISTINCT e.arrival_no) FROM competition_entries e
                            WHERE e.competition_id = competitions.id AND e.status = 'waitlisted'),
        arrival_seq = COALESCE((SELECT c.last_arrival_no FROM competition_counters c
                                WHERE c.competition_id = competitions.id), 0),
        last_candidate_no = COALESCE((SELECT c.last_candidate_no FROM competition_counters c
                                      WHERE c.competition_id = competitions.id), 0)""")
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_competitions_held_count'), 'held_count >= 0 AND held_count <= capacity')
        batch_op.create_check_constraint(op.f('ck_competitions_waitlisted_count'), 'waitlisted_count >= 0')

    with op.batch_alter_table('competition_places', schema=None) as batch_op:
        batch_op.drop_index('ix_competition_places_free', sqlite_where=FREE, postgresql_where=FREE)
    op.drop_table('competition_places')
    op.drop_table('competition_counters')
