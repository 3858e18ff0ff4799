"""Job lanes, intent keys unique only while a job is still to run, status columns checked

Revision ID: 4b7d2e9a1c30
Revises: c1f70b119836
Create Date: 2026-11-30 08:10:00

- job.lane (interactive | bulk), filled in from each job's kind.
- Intent keys become stable names (`confirm:12` instead of `confirm:12:3`, `add:7` instead of
  `add:7:after:123`), unique among pending and claimed jobs only (a partial unique index); done
  and failed jobs keep theirs for the record. Where two jobs still to run would get the same name,
  the older keeps it and the newer runs without a key.
- job.state, job.lane, registration.status and seminar.state get a CHECK constraint.
"""
from alembic import op
import sqlalchemy as sa


revision = '4b7d2e9a1c30'
down_revision = 'c1f70b119836'
branch_labels = None
depends_on = None

# As kinds.py declared them when this migration was written.
INTERACTIVE = ("mail.confirm_address", "mail.already_registered", "mail.seat_confirmed", "mail.promoted",
               "mail.waitlisted", "mail.registration_cancelled", "mail.password_reset",
               "video.create_meeting", "video.add_attendee")
# How many colon-separated parts of an old key make its stable name (the rest was a version).
NAME_PARTS = {"confirm": 2, "already": 2, "waitlisted": 2, "add": 2, "remove": 2, "cancelled": 2,
              "seminar-cancelled": 2, "changed": 2, "reminder": 3, "digest": 4, "reset": 2,
              "seat-mail": 2, "create-meeting": 2, "update-meeting": 2, "delete-meeting": 2,
              "check": 2, "reconcile": 2, "attendance": 2}
RENAMED = {"purge-remove": "remove"}
LIVE = ("pending", "claimed")

STATES = {
    ("job", "state"): ("pending", "claimed", "done", "failed"),
    ("job", "lane"): ("interactive", "bulk"),
    ("registration", "status"): ("pending", "confirmed", "waitlisted", "cancelled", "lapsed", "purged"),
    ("seminar", "state"): ("draft", "published", "cancelled"),
}


def stable_name(key):
    parts = key.split(":")
    prefix = RENAMED.get(parts[0], parts[0])
    keep = NAME_PARTS.get(prefix)
    if keep is None:
        return key
    return ":".join([prefix] + parts[1:keep])


def _check(table, column, values):
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade():
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lane', sa.String(length=12), nullable=True))
        batch_op.drop_constraint('uq_job_key', type_='unique')

    bind = op.get_bind()
    job = sa.table('job', sa.column('id', sa.Integer), sa.column('kind', sa.String),
                   sa.column('key', sa.String), sa.column('state', sa.String), sa.column('lane', sa.String))
    bind.execute(job.update().values(lane=sa.case((job.c.kind.in_(INTERACTIVE), 'interactive'), else_='bulk')))
    taken = set()
    for job_id, key, state in bind.execute(
            sa.select(job.c.id, job.c.key, job.c.state).where(job.c.key.is_not(None)).order_by(job.c.id)).all():
        name = stable_name(key)
        if state in LIVE:
            if name in taken:
                name = None
            else:
                taken.add(name)
        if name != key:
            bind.execute(job.update().where(job.c.id == job_id).values(key=name))

    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.alter_column('lane', existing_type=sa.String(length=12), nullable=False)
        batch_op.create_index('ix_job_key', ['key'], unique=False)
        batch_op.create_index('uq_job_live_key', ['key'], unique=True,
                              sqlite_where=sa.text("state IN ('pending', 'claimed')"),
                              postgresql_where=sa.text("state IN ('pending', 'claimed')"))
        batch_op.create_check_constraint(op.f('ck_job_state'), _check('job', 'state', STATES[('job', 'state')]))
        batch_op.create_check_constraint(op.f('ck_job_lane'), _check('job', 'lane', STATES[('job', 'lane')]))
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_registration_status'),
                                         _check('registration', 'status', STATES[('registration', 'status')]))
    with op.batch_alter_table('seminar', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_seminar_state'),
                                         _check('seminar', 'state', STATES[('seminar', 'state')]))


def downgrade():
    with op.batch_alter_table('seminar', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_seminar_state'), type_='check')
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_registration_status'), type_='check')
    # Keys were unique for ever before: done jobs that share a name keep it only on the newest.
    bind = op.get_bind()
    job = sa.table('job', sa.column('id', sa.Integer), sa.column('key', sa.String))
    seen = set()
    for job_id, key in bind.execute(
            sa.select(job.c.id, job.c.key).where(job.c.key.is_not(None)).order_by(job.c.id.desc())).all():
        if key in seen:
            bind.execute(job.update().where(job.c.id == job_id).values(key=f"{key}:old{job_id}"))
        seen.add(key)
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_job_lane'), type_='check')
        batch_op.drop_constraint(op.f('ck_job_state'), type_='check')
        batch_op.drop_index('uq_job_live_key')
        batch_op.drop_index('ix_job_key')
        batch_op.create_unique_constraint('uq_job_key', ['key'])
        batch_op.drop_column('lane')
