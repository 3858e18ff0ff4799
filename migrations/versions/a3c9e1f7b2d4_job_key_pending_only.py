"""An intent's key is unique among pending jobs only (procrastinate's queueing lock): a job queued
while one under the key runs keeps the key.

Revision ID: a3c9e1f7b2d4
Revises: 2a7d50da62e3
Create Date: 2026-11-30 09:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'a3c9e1f7b2d4'
down_revision = '2a7d50da62e3'
branch_labels = None
depends_on = None


def upgrade():
    # Today's rows satisfy the narrower index (it covers a subset of what the old one did).
    op.drop_index('uq_job_live_key', table_name='job')
    op.create_index('uq_job_pending_key', 'job', ['key'], unique=True,
                    sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))


def downgrade():
    # A claimed job and a pending one may share a key now: the pending one gives its key up, as
    # the old rule had it (queued without a key while its twin ran).
    op.execute("UPDATE job SET key = NULL WHERE state = 'pending' AND key IN "
               "(SELECT key FROM job WHERE state = 'claimed' AND key IS NOT NULL)")
    op.drop_index('uq_job_pending_key', table_name='job')
    op.create_index('uq_job_live_key', 'job', ['key'], unique=True,
                    sqlite_where=sa.text("state IN ('pending', 'claimed')"),
                    postgresql_where=sa.text("state IN ('pending', 'claimed')"))
